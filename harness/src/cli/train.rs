//! `harness train`: one model on one task under a preset.

use crate::run::config::Preset;
use crate::run::datastore::ensure_dataset;
use crate::run::resolve::TrainOptions;
use crate::run::train::train;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// trm-att, trm-mlp or hrm; or an official ablation variant: trm-singlez, trm-hier6,
    /// transformer.
    #[arg(long)]
    pub model: String,
    /// sudoku-extreme, sudoku-small, maze-hard, arc-agi-1 or arc-agi-2.
    #[arg(long)]
    pub task: String,
    /// A built-in preset (paper, cpu, smoke) or a TOML file.
    #[arg(long, default_value = "cpu")]
    pub preset: String,
    /// Override any key of the resolved config, e.g. `train.steps=500` (repeatable).
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// The run directory (default: runs/<task>-<model>-<preset>-seed<seed>).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Where datasets are built and reused.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// Continue the run in --run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Save and stop after this optimizer step (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// The memory a step may use, e.g. 80GB (default: a GPU's free memory): the step runs in
    /// the micro-batches `harness plan` says fit it, with the same update.
    #[arg(long, value_parser = crate::run::memory::parse_bytes)]
    pub device_memory: Option<u64>,
    /// Data-parallel ranks, one per GPU (0..N; without CUDA, N ranks on this CPU, a
    /// simulation): the global batch is split across them and their gradients summed, so
    /// the update does not depend on N. It resumes on N ranks, or on any count that divides
    /// the batch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub gpus: u64,
}

pub fn run(args: TrainArgs) -> Result<u8> {
    let preset = Preset::load(&args.preset)?;
    let cfg = preset.resolve(&args.task, &args.model, &args.overrides)?;
    let run_dir = args.run.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "{}-{}-{}-seed{}",
            cfg.task, cfg.model, cfg.preset, cfg.seed
        ))
    });
    println!(
        "{}: {} on {} ({})",
        cfg.preset, cfg.model, cfg.task, cfg.label
    );
    let data = ensure_dataset(&args.data_root, &cfg.task, &cfg.data)?;
    let outcome = train(
        &cfg,
        &data,
        &run_dir,
        &TrainOptions {
            progress_bar: true,
            resume: args.resume,
            verbose: true,
            device: crate::run::device::default_device()?,
            stop_after: args.stop_after,
            device_memory: args.device_memory,
            gpus: args.gpus as usize,
        },
    )?;
    if let Some(e) = &outcome.final_eval {
        println!(
            "{} steps in {:.1} s; final exact accuracy {:.4} [{:.4}, {:.4}] on {} test examples -> {}",
            outcome.steps,
            outcome.wall_seconds,
            e.exact.value,
            e.exact.low,
            e.exact.high,
            e.examples,
            run_dir.display()
        );
    }
    Ok(if outcome.completed { 0 } else { 130 })
}
