//! `harness bench`: wall time of one training step (ACT call + backward + AdamATan2 +
//! sign-SGD) and one evaluation step, against the f32 GEMM rate measured in the same run and
//! the official PyTorch code's times on this machine class (DESIGN.md: PyTorch 2.15 eager, f32,
//! 2 threads, Sudoku shape, batch 64).

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use models::act::{initial_carry, Batch};
use models::config::ModelConfig;
use models::flops::step_flops;
use models::loss::LossType;
use models::model::ModelKind;
use models::optim::AdamAtan2Config;
use models::trainer::{OptimConfig, Trainer};
use rand::{Rng, SeedableRng};
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Hidden sizes to time (paper size 512; 128 for a quick run).
    #[arg(long, value_delimiter = ',', default_values_t = vec![128, 512])]
    hidden: Vec<usize>,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed repetitions after one warm-up step.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    /// Also write the rows as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Seconds per step of the official code (DESIGN.md), keyed by (model, hidden).
fn pytorch_seconds(kind: ModelKind, hidden: usize) -> Option<(f64, f64)> {
    match (kind, hidden) {
        (ModelKind::Trm, 512) => Some((15.7, 8.8)),
        (ModelKind::Hrm, 512) => Some((11.9, 4.1)),
        (ModelKind::Trm, 128) => Some((1.95, 0.99)),
        (ModelKind::Hrm, 128) => Some((1.40, 0.48)),
        _ => None,
    }
}

fn sudoku_config(kind: ModelKind, hidden: usize, batch: usize) -> ModelConfig {
    ModelConfig {
        batch_size: batch,
        forward_dtype: "float32".into(),
        ..ModelConfig::sudoku_paper(kind, false, hidden)
    }
}

/// GFLOP/s of f32 matmuls shaped like the models' projections (batch * seq x D x 3D).
fn gemm_rate(hidden: usize, rows: usize) -> Result<f64> {
    let device = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (rows, hidden), &device)?;
    let b = Tensor::randn(0f32, 1.0, (hidden, 3 * hidden), &device)?;
    a.matmul(&b)?;
    let flops_each = 2.0 * rows as f64 * hidden as f64 * 3.0 * hidden as f64;
    let reps = ((4e10 / flops_each).ceil() as usize).max(3);
    let t = Instant::now();
    for _ in 0..reps {
        a.matmul(&b)?;
    }
    Ok(flops_each * reps as f64 / t.elapsed().as_secs_f64() / 1e9)
}

#[derive(serde::Serialize)]
struct Row {
    model: &'static str,
    hidden: usize,
    batch: usize,
    gemm_gflops: f64,
    train_seconds: f64,
    train_gflop: f64,
    eval_seconds: f64,
    eval_gflop: f64,
    pytorch_train_seconds: Option<f64>,
    pytorch_eval_seconds: Option<f64>,
}

pub fn run(args: BenchArgs) -> Result<u8> {
    let device = Device::Cpu;
    let mut rows = Vec::new();
    println!(
        "{:<8} {:>6} {:>9} | {:>9} {:>8} {:>7} {:>6} {:>8} | {:>9} {:>8} {:>7} {:>6} {:>8}",
        "model",
        "hidden",
        "GEMM GF/s",
        "train s",
        "GFLOP",
        "GF/s",
        "/GEMM",
        "/PyTorch",
        "eval s",
        "GFLOP",
        "GF/s",
        "/GEMM",
        "/PyTorch"
    );
    for &hidden in &args.hidden {
        let gemm = gemm_rate(hidden, args.batch * 97)?;
        for (name, kind) in [("trm-att", ModelKind::Trm), ("hrm", ModelKind::Hrm)] {
            let cfg = sudoku_config(kind, hidden, args.batch);
            let optim = OptimConfig {
                adam: AdamAtan2Config {
                    lr: 1e-4,
                    weight_decay: 1.0,
                    beta1: 0.9,
                    beta2: 0.95,
                },
                puzzle_emb_lr: 1e-4,
                puzzle_emb_weight_decay: 1.0,
                loss: LossType::StablemaxCrossEntropy,
                ema: (kind == ModelKind::Trm).then_some(0.999),
            };
            let mut trainer = Trainer::new(&cfg, kind, optim, 0, &device)?;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let tokens: Vec<u32> = (0..args.batch * 81)
                .map(|_| rng.random_range(1..11))
                .collect();
            let labels: Vec<i64> = (0..args.batch * 81)
                .map(|_| rng.random_range(2..11))
                .collect();
            let batch = Batch {
                inputs: Tensor::from_vec(tokens, (args.batch, 81), &device)?,
                labels: Tensor::from_vec(labels, (args.batch, 81), &device)?,
                puzzle_identifiers: Tensor::zeros(args.batch, DType::U32, &device)?,
            };
            trainer.train_step(&batch, 1.0, &mut rng)?;
            let t = Instant::now();
            for _ in 0..args.repeats {
                trainer.train_step(&batch, 1.0, &mut rng)?;
            }
            let train_seconds = t.elapsed().as_secs_f64() / args.repeats as f64;
            let inference = trainer.inference_model(&cfg, kind, true)?;
            let carry = initial_carry(inference.as_ref(), &batch)?;
            trainer.eval_step(inference.as_ref(), &carry, &batch, &mut rng)?;
            let t = Instant::now();
            for _ in 0..args.repeats {
                trainer.eval_step(inference.as_ref(), &carry, &batch, &mut rng)?;
            }
            let eval_seconds = t.elapsed().as_secs_f64() / args.repeats as f64;
            let f = step_flops(&cfg, kind);
            let (train_gflop, eval_gflop) = (
                f.train_step * args.batch as f64 / 1e9,
                f.eval_step * args.batch as f64 / 1e9,
            );
            let reference = pytorch_seconds(kind, hidden).filter(|_| args.batch == 64);
            let ratio = |ours: f64, theirs: Option<f64>| {
                theirs.map_or("-".to_string(), |p| format!("{:.2}x", ours / p))
            };
            println!(
                "{name:<8} {hidden:>6} {gemm:>9.1} | {train_seconds:>9.2} {train_gflop:>8.0} {:>7.1} {:>6.2} {:>8} | {eval_seconds:>9.2} {eval_gflop:>8.0} {:>7.1} {:>6.2} {:>8}",
                train_gflop / train_seconds,
                train_gflop / train_seconds / gemm,
                ratio(train_seconds, reference.map(|r| r.0)),
                eval_gflop / eval_seconds,
                eval_gflop / eval_seconds / gemm,
                ratio(eval_seconds, reference.map(|r| r.1)),
            );
            rows.push(Row {
                model: name,
                hidden,
                batch: args.batch,
                gemm_gflops: gemm,
                train_seconds,
                train_gflop,
                eval_seconds,
                eval_gflop,
                pytorch_train_seconds: reference.map(|r| r.0),
                pytorch_eval_seconds: reference.map(|r| r.1),
            });
        }
    }
    println!("/GEMM: fraction of the measured f32 GEMM rate; /PyTorch: our time over the official code's (DESIGN.md), below 1 is faster");
    if let Some(path) = &args.json {
        datasets::format::write_json(path, &rows)?;
    }
    Ok(0)
}
