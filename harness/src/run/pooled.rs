//! ARC votes pooled over the eval-interval checkpoints of a run, as the official evaluator
//! pools the votes of successive evaluations (`aggregated_voting`). One definition, one code
//! path for `train`, `compare` and `eval`: the checkpoints the schedule saves (every
//! `eval_interval` steps and the last), never those saved because a run was interrupted
//! (Ctrl-C, SIGTERM, `--stop-after`), so an interrupted run pools the same votes as an
//! uninterrupted one. Each is scored on the whole test split (a checkpoint whose saved
//! predictions cover less is evaluated again), all their votes are counted together, and the
//! pool is written to the run directory as `arc_pooled.json`.

use crate::run::eval::{arc_solutions, evaluate_checkpoint, EvalSplit};
use crate::run::resolve::ResolvedRun;
use crate::run::run_dir::{pooled_checkpoint, ArcPredictionsFile, RunDir};
use anyhow::{bail, Result};
use candle_core::Device;
use datasets::format::LoadedDataset;
use datasets::score::{score_arc, ArcScores};
use serde::{Deserialize, Serialize};

/// The pool of a run, in its directory.
pub const POOLED_FILE: &str = "arc_pooled.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PooledArc {
    pub scores: ArcScores,
    /// The eval-interval checkpoints whose votes were pooled, by step.
    pub checkpoints: Vec<u64>,
    /// Predictions counted: checkpoints x test examples.
    pub predictions: usize,
}

pub fn arc_pooled(
    dir: &RunDir,
    run: &ResolvedRun,
    data: &LoadedDataset,
    device: &Device,
) -> Result<PooledArc> {
    let examples = data.data.test.num_examples();
    let mut pooled = Vec::new();
    let mut checkpoints = Vec::new();
    let interval = run.config.train.eval_interval;
    let scheduled = |step: u64| pooled_checkpoint(step, interval, run.total_steps);
    for (step, path) in dir
        .checkpoints()?
        .into_iter()
        .filter(|(s, _)| scheduled(*s))
    {
        let file = match dir.arc_predictions(step)? {
            Some(file) if file.examples == examples => file,
            _ => {
                let (out, _) = evaluate_checkpoint(run, data, &path, device, &[])?;
                let file = ArcPredictionsFile {
                    examples,
                    predictions: out.arc_predictions,
                };
                dir.save_arc_predictions(step, &file)?;
                file
            }
        };
        pooled.extend(file.predictions);
        checkpoints.push(step);
    }
    if checkpoints.is_empty() {
        bail!(
            "{} holds no eval-interval checkpoint to pool",
            dir.path().display()
        );
    }
    let result = PooledArc {
        scores: score_arc(&pooled, &arc_solutions(data, EvalSplit::Test)?, &[1, 2]),
        checkpoints,
        predictions: pooled.len(),
    };
    datasets::format::write_json(&dir.path().join(POOLED_FILE), &result)?;
    Ok(result)
}
