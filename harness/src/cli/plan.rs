//! `harness plan`: the analytic peak memory of one training step and the micro-batches that
//! fit a device, part by part; `--measure` checks the estimate against two real steps.

use crate::run::config::{Preset, RunConfig};
use crate::run::measure::measure;
use crate::run::memory::{data_shape, gb, layer_path, parse_bytes, plan, DataShape, Plan};
use crate::run::ranks::refuse_uneven_ranks;
use anyhow::{bail, Result};
use candle_core::Device;
use models::memory::LayerPath;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PlanArgs {
    #[arg(long)]
    model: String,
    #[arg(long)]
    task: String,
    #[arg(long, default_value = "paper")]
    preset: String,
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// The device's memory, e.g. 80GB or 141GiB: plans the micro-batches that fit it.
    #[arg(long, value_parser = parse_bytes)]
    device_memory: Option<u64>,
    /// The layers of the device: `gpu` (candle compositions, chunked attention; the default
    /// with --device-memory) or `cpu` (the fused f32 kernels; the default without).
    #[arg(long, value_parser = ["cpu", "gpu"])]
    layers: Option<String>,
    /// Data-parallel ranks sharing the global batch.
    #[arg(long, default_value_t = 1)]
    gpus: usize,
    /// Where datasets are built: a built one gives the exact puzzle count.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
    /// Also run two training steps on this CPU at the plan's shape (random tokens) and
    /// compare the estimate with their peak resident memory.
    #[arg(long)]
    measure: bool,
}

pub fn run(args: PlanArgs) -> Result<u8> {
    if args.gpus == 0 {
        bail!("--gpus must be at least 1");
    }
    let run_cfg = Preset::load(&args.preset)?.resolve(&args.task, &args.model, &args.overrides)?;
    // The plan of a run that `train` would refuse would only mislead.
    if args.gpus > 1 {
        refuse_uneven_ranks(run_cfg.train.global_batch_size, args.gpus)?;
    }
    let shape = data_shape(&run_cfg, &args.data_root)?;
    let cfg = run_cfg.model_config(shape.seq_len, shape.vocab_size, shape.puzzles)?;
    let path = match (args.layers.as_deref(), args.device_memory) {
        (Some("gpu"), _) | (None, Some(_)) => LayerPath::Composed,
        _ => layer_path(&Device::Cpu, &cfg),
    };
    let p = plan(&cfg, &run_cfg, path, args.gpus, args.device_memory);
    print_plan(&run_cfg, &shape, &p, path, args.gpus, args.device_memory);
    if args.measure {
        if path != LayerPath::FusedCpu {
            bail!("--measure runs on this CPU in float32: use --layers cpu and a float32 config");
        }
        measure(&run_cfg, &p)?;
    }
    Ok(if p.fits { 0 } else { 1 })
}

fn print_plan(
    run: &RunConfig,
    shape: &DataShape,
    p: &Plan,
    path: LayerPath,
    ranks: usize,
    budget: Option<u64>,
) {
    let cfg = &p.model_config;
    println!(
        "{} / {} / {}: batch {} over {ranks} rank(s), {} positions, width {}, {}, {:?} layers",
        run.preset,
        run.task,
        run.model,
        cfg.batch_size,
        cfg.full_seq_len(),
        cfg.hidden_size,
        cfg.forward_dtype,
        path
    );
    println!(
        "  data: {} puzzle ids, from {}",
        shape.puzzles, shape.source
    );
    for (what, bytes) in &p.memory.fixed {
        println!("  {what:<44} {:>12}", gb(*bytes));
    }
    let slots = p.rank_slots.div_ceil(p.micro_batches);
    println!(
        "  {:<44} {:>12}",
        format!("carry ({} slots)", p.rank_slots),
        gb(p.memory.carry_per_slot * p.rank_slots as u64)
    );
    println!(
        "  {:<44} {:>12}",
        format!("graph activations ({slots} slots per micro-batch)"),
        gb(p.memory.per_slot * slots as u64)
    );
    println!(
        "  {:<44} {:>12}",
        "backward working set",
        gb(p.memory.workspace_per_slot * slots as u64 + p.memory.score_blocks(slots))
    );
    println!("  {:<44} {:>12}", "peak of a training step", gb(p.peak));
    match budget {
        Some(b) if p.fits => println!(
            "fits in {} (90% usable) with {} micro-batch(es) of {slots} slots",
            gb(b),
            p.micro_batches
        ),
        Some(b) => println!(
            "does NOT fit in {}: even one slot per micro-batch needs {}",
            gb(b),
            gb(p.peak)
        ),
        None => println!("(give --device-memory to plan the micro-batches of a GPU)"),
    }
}
