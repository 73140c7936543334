//! `harness eval`: the evaluation protocol on a run directory's checkpoints or on one
//! checkpoint file (ours, or an official PyTorch state dict), writing predictions and scores.

use crate::config::Preset;
use crate::datastore::{ensure_dataset, load_verified};
use crate::eval::{evaluate, Evaluation};
use crate::train::{checkpoints, new_trainer, resolve_run, ResolvedRun, CONFIG_FILE};
use anyhow::{bail, Context, Result};
use datasets::format::{read_json, write_json};
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
}

#[derive(serde::Serialize)]
struct EvalRecord {
    checkpoint: String,
    dataset_dir: String,
    dataset_hash: String,
    task: String,
    model: String,
    /// Whether the EMA weights were evaluated.
    ema: bool,
    scores: Evaluation,
    /// ARC: votes pooled over every checkpoint of the run (the official evaluator's way),
    /// labelled apart from the single checkpoint's scores.
    arc_pooled_over_checkpoints: Option<datasets::score::ArcScores>,
    pooled_checkpoints: Vec<String>,
}

pub fn run(args: EvalArgs) -> Result<u8> {
    let device = crate::device::default_device()?;
    let (run, data, checkpoint, all_checkpoints) = match &args.run {
        Some(dir) => {
            let saved: ResolvedRun = read_json(&dir.join(CONFIG_FILE))
                .with_context(|| format!("{} is not a run directory", dir.display()))?;
            let data = load_verified(args.data.as_ref().unwrap_or(&saved.dataset_dir))?;
            let run = resolve_run(&saved.config, &data)?;
            let all = checkpoints(dir)?;
            let checkpoint = match &args.checkpoint {
                Some(c) => c.clone(),
                None => match all.last() {
                    Some((_, p)) => p.clone(),
                    None => bail!("{} holds no checkpoint", dir.display()),
                },
            };
            (
                run,
                data,
                checkpoint,
                all.into_iter().map(|(_, p)| p).collect(),
            )
        }
        None => {
            let (Some(task), Some(model), Some(checkpoint)) =
                (&args.task, &args.model, &args.checkpoint)
            else {
                bail!("give --run DIR, or --checkpoint FILE with --task and --model");
            };
            let cfg = Preset::load(&args.preset)?.resolve(task, model, &args.overrides)?;
            let data = match &args.data {
                Some(d) => load_verified(d)?,
                None => ensure_dataset(&args.data_root, task, &cfg.data)?,
            };
            let run = resolve_run(&cfg, &data)?;
            (run, data, checkpoint.clone(), vec![checkpoint.clone()])
        }
    };
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
    let kind = run.config.kind();
    let evaluate_checkpoint = |path: &PathBuf| -> Result<(crate::eval::EvalOutput, bool)> {
        let state = models::checkpoint::load_state_dict(path, &device)?;
        let mut trainer = new_trainer(&run, &device)?;
        // Our checkpoints carry the optimiser and EMA; an official one is the (EMA) model.
        let ours = state.contains_key("optim.step");
        if ours {
            trainer
                .restore(&state)
                .with_context(|| format!("restoring {}", path.display()))?;
        } else {
            trainer
                .load_weights(&state)
                .with_context(|| format!("loading {}", path.display()))?;
        }
        let use_ema = ours && run.config.train.ema;
        let model = trainer.inference_model(&run.model_config, kind, use_ema)?;
        let out = evaluate(
            &trainer,
            model.as_ref(),
            &data,
            &run.config.task,
            run.config.eval.batch_size,
            None,
        )?;
        Ok((out, use_ema))
    };
    let (main, ema) = evaluate_checkpoint(&checkpoint)?;
    let mut pooled_checkpoints = Vec::new();
    let arc_pooled = if run.config.task.starts_with("arc-") && all_checkpoints.len() > 1 {
        let mut pooled = main.arc_predictions.clone();
        pooled_checkpoints.push(checkpoint.display().to_string());
        for path in all_checkpoints.iter().filter(|p| **p != checkpoint) {
            pooled.extend(evaluate_checkpoint(path)?.0.arc_predictions);
            pooled_checkpoints.push(path.display().to_string());
        }
        let solutions = crate::eval::arc_solutions(&data)?;
        Some(datasets::score::score_arc(&pooled, &solutions, &[1, 2]))
    } else {
        None
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    datasets::npy::write(
        &out.join("predictions.npy"),
        &[main.predictions.len(), data.data.test.seq_len],
        &main.predictions.concat(),
    )?;
    let e = &main.evaluation;
    let record = EvalRecord {
        checkpoint: checkpoint.display().to_string(),
        dataset_dir: data.dir.display().to_string(),
        dataset_hash: run.dataset_hash.clone(),
        task: run.config.task.clone(),
        model: run.config.model.clone(),
        ema,
        scores: e.clone(),
        arc_pooled_over_checkpoints: arc_pooled,
        pooled_checkpoints,
    };
    write_json(&out.join("scores.json"), &record)?;
    println!(
        "{} on {} ({}): exact {:.4} [{:.4}, {:.4}] on {} examples, token {:.4}, mean halting step {:.2}",
        run.config.model,
        run.config.task,
        checkpoint.display(),
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
    if let Some(a) = &record.arc_pooled_over_checkpoints {
        println!(
            "  pooled over {} checkpoints: pass@2 {:.4} (strict), {:.4} (ARC rule)",
            record.pooled_checkpoints.len(),
            a.strict[&2].value,
            a.fractional[&2]
        );
    }
    let steps: Vec<String> = e
        .exact_by_step
        .iter()
        .map(|p| format!("{:.3}", p.value))
        .collect();
    println!("  exact after each supervision step: {}", steps.join(" "));
    println!("  -> {}", out.display());
    Ok(0)
}
