//! `scores.json` and `predictions.npy`: one checkpoint's evaluation on the test split, in one
//! schema whether a run's final evaluation wrote it or `harness eval` did.

use crate::run::eval::{evaluate_checkpoint, EvalOutput, Evaluation};
use crate::run::pooled::{arc_pooled, PooledArc};
use crate::run::resolve::ResolvedRun;
use crate::run::run_dir::{ArcPredictionsFile, RunDir, PREDICTIONS_FILE, SCORES_FILE};
use anyhow::Result;
use candle_core::Device;
use datasets::format::LoadedDataset;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoresFile {
    /// The checkpoint evaluated.
    pub checkpoint: String,
    pub dataset_dir: String,
    pub dataset_hash: String,
    pub task: String,
    pub model: String,
    /// Whether the EMA weights were evaluated.
    pub ema: bool,
    pub scores: Evaluation,
    /// ARC, for a run's checkpoint: the votes of its eval-interval checkpoints pooled, each
    /// on the whole test split (`pooled::arc_pooled`), labelled apart from this checkpoint's.
    pub arc_pooled_over_checkpoints: Option<PooledArc>,
}

impl ScoresFile {
    pub fn new(run: &ResolvedRun, checkpoint: &Path, ema: bool, scores: Evaluation) -> Self {
        ScoresFile {
            checkpoint: checkpoint.display().to_string(),
            dataset_dir: run.dataset_dir.display().to_string(),
            dataset_hash: run.dataset_hash.clone(),
            task: run.config.task.clone(),
            model: run.config.model.clone(),
            ema,
            scores,
            arc_pooled_over_checkpoints: None,
        }
    }
}

/// Writes `scores.json` and `predictions.npy` (`u8 [examples, seq_len]`) into `dir`.
pub fn write(dir: &Path, file: &ScoresFile, predictions: &[Vec<u8>], seq_len: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    datasets::npy::write(
        &dir.join(PREDICTIONS_FILE),
        &[predictions.len(), seq_len],
        &predictions.concat(),
    )?;
    Ok(datasets::format::write_json(&dir.join(SCORES_FILE), file)?)
}

/// A checkpoint of `run` on the whole test split at the test-time budgets `steps`; for ARC
/// with its run directory, also the run's pooled votes (this checkpoint's, if it is one of
/// the run's, saved for the pool rather than computed twice).
pub fn score_checkpoint(
    run: &ResolvedRun,
    data: &LoadedDataset,
    (checkpoint, run_dir): (&Path, Option<&RunDir>),
    device: &Device,
    steps: &[usize],
) -> Result<(EvalOutput, ScoresFile)> {
    let (out, ema) = evaluate_checkpoint(run, data, checkpoint, device, steps)?;
    let mut file = ScoresFile::new(run, checkpoint, ema, out.evaluation.clone());
    if let (Some(dir), true) = (run_dir, run.config.task.starts_with("arc-")) {
        if let Some((step, _)) = dir
            .checkpoints()?
            .into_iter()
            .find(|(_, p)| p == checkpoint)
        {
            let votes = ArcPredictionsFile {
                examples: out.evaluation.examples,
                predictions: out.arc_predictions.clone(),
            };
            dir.save_arc_predictions(step, &votes)?;
        }
        file.arc_pooled_over_checkpoints = Some(arc_pooled(dir, run, data, device)?);
    }
    Ok((out, file))
}
