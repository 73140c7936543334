//! A run resolved for its data and this machine: the architecture and step count its config
//! gives on the dataset built (`ResolvedRun`, what `config.json` records), the options of
//! one training process, and the trainer they make (micro-batches from the memory plan).

use crate::run::config::RunConfig;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use datasets::format::LoadedDataset;
use models::config::ModelConfig;
use models::optim::AdamAtan2Config;
use models::trainer::{OptimConfig, Trainer};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The commit (and `-dirty`) of the code this binary was built from.
pub const CODE_VERSION: &str = env!("HARNESS_CODE_VERSION");

/// What a run directory records about its setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedRun {
    pub config: RunConfig,
    pub model_config: ModelConfig,
    pub total_steps: u64,
    pub dataset_dir: PathBuf,
    pub dataset_hash: String,
    /// The code version that created the run (`CODE_VERSION` then).
    pub code_version: String,
}

pub struct TrainOptions {
    pub resume: bool,
    /// Print one line per evaluation (besides the progress bar).
    pub verbose: bool,
    /// Draw a progress bar (off when several runs share the terminal).
    pub progress_bar: bool,
    pub device: Device,
    /// Save and stop after this step, as Ctrl-C would (to train in chunks, or to test resume).
    pub stop_after: Option<u64>,
    /// The memory a step may use (default: a GPU's free memory; none on the CPU): the step
    /// runs in as many micro-batches as `harness plan` says it needs.
    pub device_memory: Option<u64>,
    /// Data-parallel ranks (`--gpus`); `device` is rank 0's.
    pub gpus: usize,
}

pub fn optim_config(cfg: &RunConfig) -> Result<OptimConfig> {
    let t = &cfg.train;
    Ok(OptimConfig {
        adam: AdamAtan2Config {
            lr: t.lr,
            weight_decay: t.weight_decay,
            beta1: t.beta1,
            beta2: t.beta2,
        },
        puzzle_emb_lr: t.puzzle_emb_lr,
        puzzle_emb_weight_decay: t.puzzle_emb_weight_decay,
        loss: cfg.loss()?,
        ema: t.ema.then_some(t.ema_rate),
        halt_early: t.act,
    })
}

/// The run's architecture and step count for this dataset.
pub fn resolve_run(cfg: &RunConfig, data: &LoadedDataset) -> Result<ResolvedRun> {
    let meta = data.metadata("train");
    let model_config =
        cfg.model_config(meta.seq_len, meta.vocab_size, meta.num_puzzle_identifiers)?;
    let dataset_hash = match &data.manifest {
        Some(m) => m.dataset_hash.clone(),
        None => "none (no manifest.json)".into(),
    };
    Ok(ResolvedRun {
        config: cfg.clone(),
        model_config,
        total_steps: cfg.total_steps(meta.total_groups, meta.mean_puzzle_examples),
        dataset_dir: data.dir.clone(),
        dataset_hash,
        code_version: CODE_VERSION.to_string(),
    })
}

/// A trainer for a resolved run, freshly initialised from the run's seed.
pub fn new_trainer(run: &ResolvedRun, device: &Device) -> Result<Trainer> {
    Trainer::new(
        &run.model_config,
        run.config.kind(),
        optim_config(&run.config)?,
        run.config.seed,
        device,
    )
    .context("building the model")
}

/// The memory plan of a training step of `run` on the device, with the budget it fits (none
/// when no budget is known); an error when even one slot at a time does not fit. `train`
/// asks it before it creates the run directory, so a step that cannot fit is refused before
/// anything is written.
pub fn fitting_plan(
    run: &ResolvedRun,
    opts: &TrainOptions,
    device: &Device,
) -> Result<Option<(crate::run::memory::Plan, u64)>> {
    let Some(budget) = opts
        .device_memory
        .or_else(|| crate::run::device::free_memory(device))
    else {
        return Ok(None);
    };
    let path = crate::run::memory::layer_path(device, &run.model_config);
    let ranks = opts.gpus.max(1);
    let p = crate::run::memory::plan(&run.model_config, &run.config, path, ranks, Some(budget));
    if !p.fits {
        bail!(
            "a training step needs {:.2} GB even one slot at a time, more than the {:.2} GB available (harness plan shows the parts)",
            p.peak as f64 / 1e9,
            budget as f64 / 1e9
        );
    }
    Ok(Some((p, budget)))
}

/// `new_trainer` with the micro-batches that fit the device's memory.
pub fn planned_trainer(run: &ResolvedRun, opts: &TrainOptions, device: &Device) -> Result<Trainer> {
    // Before the model exists: the plan counts its weights and state itself.
    let plan = fitting_plan(run, opts, device)?;
    let mut trainer = new_trainer(run, device)?;
    if let Some((p, budget)) = plan {
        if p.micro_batches > 1 && opts.verbose && device.same_device(&opts.device) {
            println!(
                "{} micro-batches of {} slots per step fit {:.2} GB (peak {:.2} GB)",
                p.micro_batches,
                p.rank_slots.div_ceil(p.micro_batches),
                budget as f64 / 1e9,
                p.peak as f64 / 1e9
            );
        }
        trainer.micro_batches = p.micro_batches;
    }
    Ok(trainer)
}

/// The processor, kernel path, threads and dtype this process trains `run` with.
pub fn this_provenance(run: &ResolvedRun, opts: &TrainOptions) -> crate::run::device::Provenance {
    let mut p = crate::run::device::Provenance::of(&opts.device, &run.model_config.forward_dtype);
    if opts.gpus > 1 {
        p.kernel_path = format!("{}, {} ranks", p.kernel_path, opts.gpus);
    }
    // The shard count fixes the order of the step's sums: the bits follow it.
    let shards = models::trainer::cpu_batch_shards(&run.model_config, p.threads);
    if opts.device.is_cpu() && shards > 1 {
        p.kernel_path = format!("{}, {shards} batch shards", p.kernel_path);
    }
    p
}
