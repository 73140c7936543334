//! The timing behind `harness bench`: wall time of one training step (ACT call + backward + AdamATan2 +
//! sign-SGD) and one evaluation step (one supervision step without a graph), beside the f32
//! GEMM rate measured in the same run at the models' projection shape and the step's matmul
//! FLOPs. Either a preset's shape on its own data (`--preset cpu --task maze-hard`) or the
//! Sudoku shape at given widths (`--hidden 128,512`). The official PyTorch code is timed
//! beside it by `bench/side_by_side.py`, which calls this command with `--json`.

use crate::run::config::Preset;
use crate::run::datastore::ensure_dataset;
use crate::run::eval::to_batch;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use datasets::loader::TrainSampler;
use datasets::sample::stream_rng;
use models::act::{initial_carry, Batch};
use models::config::ModelConfig;
use models::flops::step_flops;
use models::loss::LossType;
use models::model::ModelKind;
use models::optim::AdamAtan2Config;
use models::trainer::{OptimConfig, Trainer};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Time this preset's shape (architecture, batch, data) instead of the Sudoku shape.
    #[arg(long)]
    pub preset: Option<String>,
    /// The preset's task (with --preset).
    #[arg(long)]
    pub task: Option<String>,
    /// Overrides of the preset (with --preset), e.g. `arch.hidden_size=128`.
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Models to time (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "trm-att,hrm")]
    pub models: Vec<String>,
    /// Without --preset: hidden sizes of the Sudoku shape (paper size 512).
    #[arg(long, value_delimiter = ',', default_values_t = vec![128, 512])]
    pub hidden: Vec<usize>,
    /// Batch size (default: the preset's, or 64 for the Sudoku shape).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Without --preset: the forward dtype of the Sudoku shape (the paper's is bfloat16).
    #[arg(long, default_value = "float32", value_parser = ["float32", "bfloat16"])]
    pub forward_dtype: String,
    /// Timed repetitions after one warm-up step (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Where the preset's data is built and reused.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// Also write the rows as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Shards of the batch run at once on the CPU (default: `cpu_batch_shards`, one per
    /// thread); 1 runs the batch whole with threaded ops, for the crossover measurement.
    #[arg(long)]
    pub batch_shards: Option<usize>,
}

/// One shape to time: a model's architecture, optimiser and a batch of its data.
pub struct Case {
    pub model: String,
    pub shape: String,
    kind: ModelKind,
    cfg: ModelConfig,
    optim: OptimConfig,
    pub batch: Batch,
}

#[derive(serde::Serialize)]
pub struct Row {
    pub model: String,
    pub shape: String,
    pub hidden: usize,
    pub batch: usize,
    pub seq_len: usize,
    /// f32 GEMM rate at the models' projection shape (tokens x D x 3D).
    pub gemm_gflops: f64,
    /// f32 GEMM rate at 2048^3 (the shape PyTorch's rate is quoted at).
    pub gemm_2048_gflops: f64,
    /// Shards of the batch run at once (1: the whole batch, threaded ops).
    pub batch_shards: usize,
    pub train_seconds: f64,
    pub train_gflop: f64,
    pub eval_seconds: f64,
    pub eval_gflop: f64,
    /// The process's peak resident memory after this row (getrusage).
    pub peak_rss_mb: f64,
    /// The architecture under the official names (what the side-by-side script builds).
    pub model_config: ModelConfig,
}

fn paper_optim(kind: ModelKind) -> OptimConfig {
    OptimConfig {
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
        halt_early: true,
    }
}

fn kind_of(model: &str) -> Result<(ModelKind, bool)> {
    Ok(match model {
        "trm-att" => (ModelKind::Trm, false),
        "trm-mlp" => (ModelKind::Trm, true),
        "hrm" => (ModelKind::Hrm, false),
        other => bail!("unknown model {other:?} (bench times trm-att, trm-mlp or hrm)"),
    })
}

/// The Sudoku shape (paper architecture at width `hidden`) with random tokens.
pub fn sudoku_cases(args: &BenchArgs, device: &Device) -> Result<Vec<Case>> {
    let batch = args.batch.unwrap_or(64);
    let mut cases = Vec::new();
    for &hidden in &args.hidden {
        for model in &args.models {
            let (kind, mlp_t) = kind_of(model)?;
            let cfg = ModelConfig {
                batch_size: batch,
                forward_dtype: args.forward_dtype.clone(),
                ..ModelConfig::sudoku_paper(kind, mlp_t, hidden)
            };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let tokens: Vec<u32> = (0..batch * 81).map(|_| rng.random_range(1..11)).collect();
            let labels: Vec<i64> = (0..batch * 81).map(|_| rng.random_range(2..11)).collect();
            cases.push(Case {
                model: model.clone(),
                shape: match args.forward_dtype.as_str() {
                    "float32" => format!("sudoku d={hidden}"),
                    other => format!("sudoku d={hidden} {other}"),
                },
                kind,
                cfg,
                optim: paper_optim(kind),
                batch: Batch {
                    inputs: Tensor::from_vec(tokens, (batch, 81), device)?,
                    labels: Tensor::from_vec(labels, (batch, 81), device)?,
                    puzzle_identifiers: Tensor::zeros(batch, DType::U32, device)?,
                },
            });
        }
    }
    Ok(cases)
}

/// A preset's architecture and optimiser for each model, with a batch drawn from its data.
pub fn preset_cases(args: &BenchArgs, preset: &str, device: &Device) -> Result<Vec<Case>> {
    let Some(task) = &args.task else {
        bail!("--preset needs --task");
    };
    let preset = Preset::load(preset)?;
    let mut cases = Vec::new();
    for model in &args.models {
        let mut overrides = args.overrides.clone();
        if let Some(b) = args.batch {
            overrides.push(format!("train.global_batch_size={b}"));
        }
        let cfg = preset.resolve(task, model, &overrides)?;
        let data = ensure_dataset(&args.data_root, task, &cfg.data)?;
        let run = crate::run::resolve::resolve_run(&cfg, &data)?;
        let meta = data.metadata("train");
        let batch_size = cfg.train.global_batch_size;
        let mut sampler =
            TrainSampler::new(&data.data.train, meta, batch_size, stream_rng(cfg.seed, 1))
                .map_err(|e| anyhow::anyhow!("{}: {e}", data.dir.display()))?;
        cases.push(Case {
            model: model.clone(),
            shape: format!("{} {task}", preset.name),
            kind: cfg.kind(),
            optim: crate::run::resolve::optim_config(&cfg)?,
            cfg: run.model_config,
            batch: to_batch(&sampler.next_batch(), device)?,
        });
    }
    Ok(cases)
}

/// GFLOP/s of f32 `[m, k] @ [k, n]` through the models' linear layer (the GEMM a step runs
/// on this device), the median of several timings.
fn gemm_rate((m, k, n): (usize, usize, usize), device: &Device) -> Result<f64> {
    let x = Tensor::randn(0f32, 1.0, (m, k), device)?;
    let linear = models::layers::Linear {
        weight: Tensor::randn(0f32, 1.0, (n, k), device)?,
        bias: None,
    };
    let flops_each = 2.0 * m as f64 * k as f64 * n as f64;
    let reps = ((2e10 / flops_each).ceil() as usize).clamp(5, 50);
    let seconds = median_seconds(reps, synchronizer(device), || {
        linear.forward(&x).map(|_| ()).map_err(Into::into)
    })?;
    Ok(flops_each / seconds / 1e9)
}

fn peak_rss_mb() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            return usage.ru_maxrss as f64 / 1024.0;
        }
    }
    0.0
}

/// The median seconds of `repeats` calls of `f`, after one warm-up call (the median, not the
/// mean: a virtual machine's occasional stalls would otherwise decide the figure). `sync`
/// waits for the device: CUDA queues work and returns at once, so each timed interval starts
/// and ends with it, or the figure would measure kernel launches.
fn median_seconds(
    repeats: usize,
    sync: impl Fn() -> Result<()>,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    f()?;
    sync()?;
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        sync()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Waits until `device` has finished the work queued on it.
fn synchronizer(device: &Device) -> impl Fn() -> Result<()> + '_ {
    move || device.synchronize().map_err(Into::into)
}

pub fn time_case(
    case: &Case,
    (repeats, batch_shards): (usize, Option<usize>),
    device: &Device,
) -> Result<Row> {
    let (batch, seq) = case.batch.inputs.dims2()?;
    let d = case.cfg.hidden_size;
    let gemm = gemm_rate((batch * case.cfg.full_seq_len(), d, 3 * d), device)?;
    let mut trainer = Trainer::new(&case.cfg, case.kind, case.optim, 0, device)?;
    if let Some(shards) = batch_shards {
        trainer.batch_shards = shards.max(1);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let train_seconds = median_seconds(repeats, synchronizer(device), || {
        trainer.train_step(&case.batch, 1.0, &mut rng)?;
        Ok(())
    })?;
    let inference = trainer.inference_model(&case.cfg, case.kind, case.optim.ema.is_some())?;
    let carry = initial_carry(inference.as_ref(), &case.batch)?;
    let eval_seconds = median_seconds(repeats, synchronizer(device), || {
        trainer.eval_step(inference.as_ref(), &carry, &case.batch)?;
        Ok(())
    })?;
    let f = step_flops(&case.cfg, case.kind);
    Ok(Row {
        model: case.model.clone(),
        shape: case.shape.clone(),
        hidden: case.cfg.hidden_size,
        batch,
        seq_len: seq,
        gemm_gflops: gemm,
        batch_shards: trainer.batch_shards,
        train_seconds,
        train_gflop: f.train_step * batch as f64 / 1e9,
        eval_seconds,
        eval_gflop: f.eval_step * batch as f64 / 1e9,
        peak_rss_mb: peak_rss_mb(),
        model_config: case.cfg.clone(),
        gemm_2048_gflops: gemm_rate((2048, 2048, 2048), device)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn every_timed_call_waits_for_the_device_before_its_timer_stops() {
        let events = RefCell::new(Vec::new());
        let sync = || {
            events.borrow_mut().push("sync");
            Ok(())
        };
        let call = || {
            events.borrow_mut().push("call");
            Ok(())
        };
        median_seconds(3, sync, call).unwrap();
        // The warm-up, then three timed calls, each followed by a wait.
        assert_eq!(events.into_inner(), ["call", "sync"].repeat(4));
    }
}
