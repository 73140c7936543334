//! What a run saves to continue exactly where it stopped: the sampler's and random streams'
//! positions, its evaluations, the training metrics not yet logged, the logs' lengths.

use crate::run::eval::EvalPoint;
use datasets::loader::SamplerState;
use datasets::sample::RngState;
use serde::{Deserialize, Serialize};

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
