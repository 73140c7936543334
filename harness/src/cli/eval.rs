//! `harness eval`: the evaluation protocol on a run directory's checkpoints or on one
//! checkpoint file (ours, or an official PyTorch state dict), writing predictions and scores.

use crate::run::config::Preset;
use crate::run::datastore::{ensure_dataset, load_verified};
use crate::run::resolve::{resolve_run, ResolvedRun};
use crate::run::run_dir::RunDir;
use crate::run::scores::{self, score_checkpoint, ScoresFile};
use anyhow::{bail, Result};
use datasets::format::LoadedDataset;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A run directory written by `harness train` or `harness compare`.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// A checkpoint: ours (full training state) or an official state dict (.pt or
    /// .safetensors, official names). With --run, defaults to the run's last checkpoint.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Without --run: the task, model, preset and overrides that describe the checkpoint.
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value = "cpu")]
    pub preset: String,
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// The dataset directory (default: the run's, or the preset's data under --data-root).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// Output folder (default: <run>/eval, or eval-<checkpoint name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Test-time compute: budgets of supervision steps to score, with halting off and on,
    /// e.g. `1,2,4,8,16,32` (default: the config's `eval.test_time_steps`).
    #[arg(long, value_delimiter = ',')]
    pub steps: Option<Vec<usize>>,
}

/// What `--run` or `--checkpoint` names: the run it belongs to, its data, the checkpoint
/// file, and the run directory (locked) when there is one.
type Target = (ResolvedRun, LoadedDataset, PathBuf, Option<RunDir>);

fn target(args: &EvalArgs) -> Result<Target> {
    if let Some(dir) = &args.run {
        // Locked while its checkpoints are read and its predictions files written.
        let run_dir = RunDir::open_existing(dir)?;
        let saved = run_dir.resolved()?;
        let data = load_verified(args.data.as_ref().unwrap_or(&saved.dataset_dir))?;
        let run = ResolvedRun {
            code_version: saved.code_version,
            ..resolve_run(&saved.config, &data)?
        };
        let checkpoint = match (&args.checkpoint, run_dir.checkpoints()?.last()) {
            (Some(c), _) => c.clone(),
            (None, Some((_, p))) => p.clone(),
            (None, None) => bail!("{} holds no checkpoint", dir.display()),
        };
        return Ok((run, data, checkpoint, Some(run_dir)));
    }
    let (Some(task), Some(model), Some(checkpoint)) = (&args.task, &args.model, &args.checkpoint)
    else {
        bail!("give --run DIR, or --checkpoint FILE with --task and --model");
    };
    let cfg = Preset::load(&args.preset)?.resolve(task, model, &args.overrides)?;
    let data = match &args.data {
        Some(d) => load_verified(d)?,
        None => ensure_dataset(&args.data_root, task, &cfg.data)?,
    };
    Ok((resolve_run(&cfg, &data)?, data, checkpoint.clone(), None))
}

pub fn run(args: EvalArgs) -> Result<u8> {
    let device = crate::run::device::default_device()?;
    let (run, data, checkpoint, run_dir) = target(&args)?;
    let out = args.out.clone().unwrap_or_else(|| match &args.run {
        Some(dir) => dir.join("eval"),
        None => PathBuf::from(format!(
            "eval-{}",
            checkpoint
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        )),
    });
    let steps = args
        .steps
        .clone()
        .unwrap_or_else(|| run.config.eval.test_time_steps.clone());
    if steps.contains(&0) {
        bail!("--steps: a budget is at least 1 supervision step");
    }
    let target = (checkpoint.as_path(), run_dir.as_ref());
    let (main, file) = score_checkpoint(&run, &data, target, &device, &steps)?;
    scores::write(&out, &file, &main.predictions, data.data.test.seq_len)?;
    print_scores(&file);
    println!("  -> {}", out.display());
    Ok(0)
}

fn print_scores(file: &ScoresFile) {
    let e = &file.scores;
    println!(
        "{} on {} ({}): exact {:.4} [{:.4}, {:.4}] on {} examples, token {:.4}, mean halting step {:.2}",
        file.model,
        file.task,
        file.checkpoint,
        e.exact.value,
        e.exact.low,
        e.exact.high,
        e.examples,
        e.token.value,
        e.mean_halting_step
    );
    if let Some(v) = e.maze_valid_path {
        println!(
            "  valid shortest path {:.4} [{:.4}, {:.4}]",
            v.value, v.low, v.high
        );
    }
    if let Some(a) = &e.arc {
        println!(
            "  this checkpoint: pass@1 {:.4}, pass@2 {:.4} (strict), pass@2 {:.4} (ARC rule)",
            a.strict[&1].value, a.strict[&2].value, a.fractional[&2]
        );
    }
    if let Some(p) = &file.arc_pooled_over_checkpoints {
        println!(
            "  pooled over {} eval-interval checkpoints (steps {:?}), each on all {} test inputs: pass@2 {:.4} (strict), {:.4} (ARC rule)",
            p.checkpoints.len(),
            p.checkpoints,
            e.examples,
            p.scores.strict[&2].value,
            p.scores.fractional[&2]
        );
    }
    println!("  test-time compute (supervision steps: exact with every step run / with halting, mean steps used):");
    for p in &e.test_time {
        println!(
            "    {:>4} steps: {:.4} / {:.4}, {:.2} steps",
            p.steps, p.exact.value, p.exact_halting.value, p.mean_steps_halting
        );
    }
}
