//! `harness compare`: every model on the same dataset (one directory, one manifest hash),
//! under the same budget and evaluation protocol; then the table, result records, plots and
//! the report.

use crate::report::comparison::write_outputs;
use crate::run::config::{Preset, RunConfig};
use crate::run::datastore::ensure_dataset;
use crate::run::queue::{train_all, Job, Parallelism};
use crate::run::resolve::{resolve_run, TrainOptions};
use crate::science::record::ResultRecord;
use anyhow::{bail, Result};
use clap::ValueEnum;
use models::flops::step_flops;
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum BudgetMatch {
    /// Every model takes the first model's number of optimizer steps.
    Steps,
    /// Every model gets the first model's training FLOPs (steps scaled by cost per step).
    Flops,
    /// Each model keeps its own recipe's budget (as the papers ran them).
    Recipe,
}

impl BudgetMatch {
    pub fn name(self) -> &'static str {
        match self {
            BudgetMatch::Steps => "steps",
            BudgetMatch::Flops => "flops",
            BudgetMatch::Recipe => "recipe",
        }
    }
}

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
    /// models for the statistics. 6 is the fewest on which a verdict can rest (the exact
    /// sign-flip test cannot reach p < 0.05 with fewer); the default 3 keeps the README's
    /// main job within 15 minutes on 2 cores, and then counts the seeds favouring each model.
    #[arg(long, default_value_t = 3)]
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
    let preset_name = args
        .preset
        .clone()
        .unwrap_or_else(|| default_preset().to_string());
    let preset = Preset::load(&preset_name)?;
    if args.models.is_empty() {
        bail!("--models is empty");
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let mut configs: Vec<RunConfig> = Vec::new();
    for model in &args.models {
        let cfg = preset.resolve(&args.task, model, &args.overrides)?;
        if configs.iter().any(|c| c.model == cfg.model) {
            bail!("--models names {model} twice");
        }
        configs.push(cfg);
    }
    for c in &configs[1..] {
        if c.data != configs[0].data {
            bail!(
                "preset {} gives {} other data than {}; a comparison needs one dataset",
                preset.name,
                c.model,
                configs[0].model
            );
        }
    }
    let first = &configs[0];
    println!(
        "comparing {} on {} with preset {}: {}",
        args.models.join(", "),
        args.task,
        preset.name,
        first.label
    );
    if (args.seeds as usize) < crate::science::stats::MIN_SEEDS_FOR_VERDICT {
        println!(
            "{} paired seed{}: too few for a verdict (the exact sign-flip test needs {} to reach p < {}); the outputs count the seeds favouring each model instead (--seeds {} for a verdict)",
            args.seeds,
            if args.seeds == 1 { "" } else { "s" },
            crate::science::stats::MIN_SEEDS_FOR_VERDICT,
            crate::science::stats::ALPHA,
            crate::science::stats::MIN_SEEDS_FOR_VERDICT
        );
    }
    if args.preset.is_none() && !cfg!(feature = "cuda") {
        println!(
            "no GPU build: using the scaled-down `cpu` preset (a small generated task and small models); its numbers are not the papers' setting"
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("compare").join(format!("{}-{}", args.task, preset.name)));
    // One comparison at a time in a folder: a second waits, then reuses the finished runs.
    let _lock = datasets::fsio::DirLock::acquire(
        &out.join(".lock"),
        &format!("the comparison folder {}", out.display()),
    )?;
    let data = ensure_dataset(&args.data_root, &args.task, &first.data)?;
    let hash = data
        .manifest
        .as_ref()
        .map_or("none".to_string(), |m| m.dataset_hash.clone());
    println!("dataset {} (hash {hash})", data.dir.display());

    // The budget: the first model's steps, or its training FLOPs.
    let resolved: Vec<_> = configs
        .iter()
        .map(|c| resolve_run(c, &data))
        .collect::<Result<_>>()?;
    let reference_steps = resolved[0].total_steps;
    let flops_per_step = |r: &crate::run::resolve::ResolvedRun| {
        step_flops(&r.model_config, r.config.kind()).train_step
            * r.config.train.global_batch_size as f64
    };
    let reference_flops = reference_steps as f64 * flops_per_step(&resolved[0]);
    for (cfg, run) in configs.iter_mut().zip(&resolved) {
        let steps = match args.budget {
            BudgetMatch::Steps => reference_steps,
            BudgetMatch::Flops => ((reference_flops / flops_per_step(run)).round() as u64).max(1),
            BudgetMatch::Recipe => run.total_steps,
        };
        cfg.train.steps = Some(steps);
        cfg.train.epochs = None;
        cfg.train.eval_interval = cfg.train.eval_interval.min(steps);
    }

    let device = crate::run::device::default_device()?;
    let device_name = crate::run::device::describe(&device);
    // Seed by seed, every model: the order of the records and the table.
    let runs = out.join("runs");
    let jobs: Vec<Job> = (0..args.seeds)
        .flat_map(|s| {
            let runs = &runs;
            configs.iter().map(move |base| {
                let mut cfg = base.clone();
                cfg.seed = base.seed + s;
                let run_dir = runs.join(format!("{}-seed{}", cfg.model, cfg.seed));
                Job { cfg, run_dir }
            })
        })
        .collect();
    let parallelism = Parallelism::of(args.jobs.unwrap_or_else(|| default_jobs(&device)));
    if parallelism.workers > 1 {
        println!(
            "{} runs at a time, {} thread{} each",
            parallelism.workers,
            parallelism.threads,
            if parallelism.threads == 1 { "" } else { "s" }
        );
    }
    let opts = TrainOptions {
        resume: true,
        verbose: true,
        progress_bar: parallelism.workers == 1,
        device: device.clone(),
        stop_after: None,
        device_memory: None,
        gpus: 1,
    };
    let outcomes = train_all(&jobs, &data, &opts, parallelism, |job| {
        println!(
            "training {} (seed {}) for {} steps -> {}",
            job.cfg.model,
            job.cfg.seed,
            job.cfg.train.steps.unwrap_or(0),
            job.run_dir.display()
        )
    })?;
    let mut records: Vec<ResultRecord> = Vec::new();
    for (position, (job, outcome)) in jobs.iter().zip(outcomes).enumerate() {
        let Some(outcome) = outcome else {
            println!(
                "stopped before the comparison was complete; run the same command again to continue"
            );
            return Ok(130);
        };
        records.push(ResultRecord {
            position,
            ..ResultRecord::new(
                &outcome,
                &job.run_dir,
                args.budget.name(),
                &device_name,
                &data,
            )?
        });
    }

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
