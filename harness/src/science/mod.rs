//! What the runs mean: result records, the statistics of every verdict, paired comparisons,
//! comparisons at equal compute, sweeps and their collection, the audit of a comparison's
//! setup and the setting label. Imports from `run` only.

pub mod ablation;
pub mod collect;
pub mod comparison;
pub mod executor;
pub mod facts;
pub mod iso_compute;
pub mod paired;
pub mod record;
pub mod setting;
pub mod setup_audit;
pub mod stats;
pub mod sweep;
