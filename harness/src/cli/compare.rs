//! `harness compare`: every model on the same dataset (one directory, one manifest hash),
//! under the same budget and evaluation protocol; then the table, result records, plots and
//! the report.

use crate::report::comparison::write_outputs;
use crate::run::config::{Preset, RunConfig};
use crate::run::datastore::ensure_dataset;
use crate::run::queue::{train_all, Job, Parallelism};
use crate::run::resolve::TrainOptions;
use crate::science::comparison::{match_budgets, model_configs, records, seed_jobs, BudgetMatch};
use crate::science::stats::{ALPHA, MIN_SEEDS_FOR_VERDICT};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// sudoku-extreme, sudoku-small, maze-hard, arc-agi-1 or arc-agi-2.
    #[arg(long)]
    pub task: String,
    /// A built-in preset (paper, cpu, smoke) or a TOML file; default: paper with a GPU build,
    /// cpu otherwise.
    #[arg(long)]
    pub preset: Option<String>,
    /// Models to compare (comma-separated); the first sets the budget.
    #[arg(long, value_delimiter = ',', default_value = "trm-att,hrm")]
    pub models: Vec<String>,
    /// Training seeds per model (0, 1, ...; added to the preset's seed), paired across
    /// models for the statistics. The default 6 is the fewest on which a verdict can rest
    /// (the exact sign-flip test cannot reach p < 0.05 with fewer); with fewer, the outputs
    /// count the seeds favouring each model instead.
    #[arg(long, default_value_t = 6)]
    pub seeds: u64,
    /// How the training budget is matched across models (default: training FLOPs, the cost
    /// that matters; `steps` gives the dearer model more compute).
    #[arg(long = "match", value_enum, default_value = "flops")]
    pub budget: BudgetMatch,
    /// Runs trained at once, the cores divided between them (default: one per core on the
    /// CPU, one on a GPU).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override any key of every model's config, e.g. `train.steps=500` (repeatable).
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Output folder (default: compare/<task>-<preset>): runs, results, plots, report.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where datasets are built and reused.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// Table of every result row, appended to (one file per task and preset), and one JSON
    /// record per run under `records/`. The committed reference runs live in
    /// `results/reference/`; this default is kept out of git.
    #[arg(long, default_value = "results/local")]
    pub results: PathBuf,
}

/// One run per core on the CPU, where small shapes gain more from runs side by side than
/// from threads inside a step (`run_queue`); one on a GPU.
fn default_jobs(device: &candle_core::Device) -> usize {
    match device {
        candle_core::Device::Cpu => std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => 1,
    }
}

pub fn default_preset() -> &'static str {
    if cfg!(feature = "cuda") {
        "paper"
    } else {
        "cpu"
    }
}

pub fn run(args: CompareArgs) -> Result<u8> {
    let started = std::time::Instant::now();
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    if args.jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let preset_name = args.preset.clone().unwrap_or(default_preset().to_string());
    let preset = Preset::load(&preset_name)?;
    let mut configs = model_configs(&preset, &args.task, &args.models, &args.overrides)?;
    say_what_runs(&args, &preset, &configs[0]);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("compare").join(format!("{}-{}", args.task, preset.name)));
    // One comparison at a time in a folder: a second waits, then reuses the finished runs.
    let _lock = datasets::fsio::DirLock::acquire(
        &out.join(".lock"),
        &format!("the comparison folder {}", out.display()),
    )?;
    let data = ensure_dataset(&args.data_root, &args.task, &configs[0].data)?;
    let hash = data
        .manifest
        .as_ref()
        .map_or("none", |m| m.dataset_hash.as_str());
    println!("dataset {} (hash {hash})", data.dir.display());
    match_budgets(&mut configs, &data, args.budget)?;

    let device = crate::run::device::default_device()?;
    let jobs = seed_jobs(&configs, args.seeds, &out.join("runs"));
    let parallelism = Parallelism::of(args.jobs.unwrap_or_else(|| default_jobs(&device)));
    if parallelism.workers > 1 {
        println!(
            "{} runs at a time, {} thread{} each",
            parallelism.workers,
            parallelism.threads,
            if parallelism.threads == 1 { "" } else { "s" }
        );
    }
    let side_by_side = parallelism.workers.min(jobs.len());
    let opts = TrainOptions {
        resume: true,
        verbose: true,
        progress_bar: parallelism.workers == 1,
        device: device.clone(),
        stop_after: None,
        // Runs side by side share the machine's memory; a run alone asks for it when it starts.
        device_memory: (side_by_side > 1)
            .then(|| crate::run::device::free_memory(&device))
            .flatten()
            .map(|free| free / side_by_side as u64),
        gpus: 1,
    };
    let outcomes = train_all(&jobs, &data, &opts, parallelism, announce)?;
    let device_name = crate::run::device::describe(&device);
    let Some(records) = records(&jobs, outcomes, (args.budget, &device_name), &data)? else {
        println!(
            "stopped before the comparison was complete; run the same command again to continue"
        );
        return Ok(130);
    };
    let table = write_outputs(&out, &args.results, &records, &data.dir)?;
    println!("{table}");
    println!(
        "compare finished in {:.1} s: {}/report.html, {}/results.json, plots in {}/plots",
        started.elapsed().as_secs_f64(),
        out.display(),
        out.display(),
        out.display()
    );
    Ok(0)
}

/// What is compared, and what its seeds and preset can and cannot say.
fn say_what_runs(args: &CompareArgs, preset: &Preset, first: &RunConfig) {
    println!(
        "comparing {} on {} with preset {}: {}",
        args.models.join(", "),
        args.task,
        preset.name,
        first.label
    );
    if (args.seeds as usize) < MIN_SEEDS_FOR_VERDICT {
        println!(
            "{} paired seed{}: too few for a verdict (the exact sign-flip test needs {MIN_SEEDS_FOR_VERDICT} to reach p < {ALPHA}); the outputs count the seeds favouring each model instead (--seeds {MIN_SEEDS_FOR_VERDICT} for a verdict)",
            args.seeds,
            if args.seeds == 1 { "" } else { "s" },
        );
    }
    if args.preset.is_none() && !cfg!(feature = "cuda") {
        println!(
            "no GPU build: using the scaled-down `cpu` preset (a small generated task and small models); its numbers are not the papers' setting"
        );
    }
}

fn announce(job: &Job) {
    println!(
        "training {} (seed {}) for {} steps -> {}",
        job.cfg.model,
        job.cfg.seed,
        job.cfg.train.steps.unwrap_or(0),
        job.run_dir.display()
    );
}
