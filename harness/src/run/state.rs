//! What a run saves to continue exactly where it stopped: the sampler's and random streams'
//! positions, its evaluations, the training metrics not yet logged, the logs' lengths.

use crate::run::eval::EvalPoint;
use anyhow::{bail, Context, Result};
use datasets::loader::{SamplerState, TrainSampler};
use datasets::sample::RngState;
use models::trainer::Trainer;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Training metrics summed since the last `metrics.csv` row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetricSums {
    pub steps: u64,
    pub count: f64,
    pub accuracy: f64,
    pub exact: f64,
    pub halt_steps: f64,
    pub lm_loss: f64,
    pub q_halt_loss: f64,
}

/// Everything a run needs to continue exactly where it was saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub step: u64,
    pub sampler: SamplerState,
    pub exploration: RngState,
    pub wall_seconds: f64,
    pub evals: Vec<EvalPoint>,
    /// Training metrics summed since the last `metrics.csv` row.
    pub pending: MetricSums,
    /// Lengths of `metrics.csv` and `eval.csv` at this save.
    pub metrics_bytes: u64,
    pub eval_bytes: u64,
    /// Every code version (`config.json`'s first, then any that resumed the run).
    pub code_versions: Vec<String>,
    /// Every processor setup that trained the run (none recorded before schema 4).
    #[serde(default)]
    pub provenance: Vec<crate::run::device::Provenance>,
}

impl RunState {
    /// What every rank restores: its trainer from `checkpoint` (this state's), and the sampler
    /// and exploration streams at their saved positions, which every rank draws alike. The
    /// checkpoint's carry must hold the whole batch of `global_batch` slots (each rank takes
    /// its own), so any rank count that divides the batch continues the run.
    pub fn restore_rank(
        &self,
        checkpoint: &Path,
        (trainer, global_batch): (&mut Trainer, usize),
        sampler: &mut TrainSampler,
        exploration: &mut ChaCha8Rng,
    ) -> Result<()> {
        let device = trainer.puzzle_table().as_tensor().device().clone();
        let tensors = models::checkpoint::load_state_dict(checkpoint, &device)?;
        if let Some(steps) = tensors.get("carry.steps") {
            let slots = steps.dim(0)?;
            if slots != global_batch {
                bail!(
                    "{}: the carry holds {slots} slots, not the batch of {global_batch}: it was saved by one rank of several before checkpoints held every rank's slots, and cannot continue (it can still be evaluated)",
                    checkpoint.display()
                );
            }
        }
        trainer
            .restore(&tensors)
            .with_context(|| format!("restoring {}", checkpoint.display()))?;
        let here = checkpoint.display();
        sampler
            .restore(&self.sampler)
            .map_err(|e| anyhow::anyhow!("{here}: {e}"))?;
        *exploration = self
            .exploration
            .rebuild()
            .map_err(|e| anyhow::anyhow!("{here}: {e}"))?;
        Ok(())
    }
}
