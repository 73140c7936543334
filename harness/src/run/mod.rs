//! The bottom layer: one run's life. Config resolution, the datasets it builds and reuses,
//! the training loop with its ranks and run directory, evaluation on a split, ARC pooling,
//! the memory plan, the device and the allocator. Imports nothing from the layers above.

pub mod answer_rules;
pub mod bench;
pub mod bits;
pub mod build;
pub mod config;
pub mod csv;
pub mod datastore;
pub mod device;
pub mod eval;
pub mod heap;
pub mod measure;
pub mod memory;
pub mod pooled;
pub mod progress;
pub mod queue;
pub mod ranks;
pub mod resolve;
pub mod run_dir;
pub mod scores;
pub mod signals;
pub mod state;
pub mod train;
