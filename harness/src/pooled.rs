//! ARC votes pooled over every checkpoint of a run, as the official evaluator pools the
//! votes of successive evaluations (`aggregated_voting`). One definition, one code path for
//! `train`, `compare` and `eval`: every checkpoint is scored on the whole test split (a
//! checkpoint whose saved predictions cover less is evaluated again), and all their votes
//! are counted together.

use crate::eval::{arc_solutions, evaluate_checkpoint};
use crate::run_dir::{ArcPredictionsFile, RunDir};
use crate::train::ResolvedRun;
use anyhow::{bail, Result};
use candle_core::Device;
use datasets::format::LoadedDataset;
use datasets::score::{score_arc, ArcScores};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PooledArc {
    pub scores: ArcScores,
    /// The checkpoints whose votes were pooled, by step.
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
    for (step, path) in dir.checkpoints()? {
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
        bail!("{} holds no checkpoint to pool", dir.path().display());
    }
    Ok(PooledArc {
        scores: score_arc(&pooled, &arc_solutions(data)?, &[1, 2]),
        checkpoints,
        predictions: pooled.len(),
    })
}
