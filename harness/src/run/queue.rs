//! Several training runs at once on one machine: `workers` threads, each with its own rayon
//! pool of `threads` threads, taking the runs in order. At the cpu preset's shapes a step is
//! thousands of operations of a few microseconds, so a run of several threads splits its
//! batch into shards (`models::trainer::cpu_batch_shards`); two runs of one thread each still
//! get through about as many steps or a little more (`harness bench --preset cpu --task
//! maze-hard`, on the 2-core machine: one run of two threads 0.105 s a step for TRM-Att and
//! HRM, two runs at once of one thread 0.18 and 0.20 s each). A run's numbers depend on its
//! thread count, which its record names.

use crate::run::resolve::TrainOptions;
use crate::run::signals::interrupted;
use crate::run::train::{train, TrainOutcome};
use anyhow::{Context, Result};
use datasets::format::LoadedDataset;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One run to train.
pub struct Job {
    pub cfg: crate::run::config::RunConfig,
    pub run_dir: PathBuf,
}

/// How many runs at once, each on how many threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    pub workers: usize,
    pub threads: usize,
}

impl Parallelism {
    /// `jobs` runs at once on this machine's cores, divided evenly (at least one each).
    pub fn of(jobs: usize) -> Parallelism {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = jobs.max(1);
        Parallelism {
            workers,
            threads: (cores / workers).max(1),
        }
    }
}

/// Trains every job (resuming finished and interrupted ones), `parallelism.workers` at a
/// time. The outcomes come back in the jobs' order; a job is `None` when an interruption
/// stopped the queue before it finished. The first error stops the queue and is returned
/// once the running jobs end.
pub fn train_all(
    jobs: &[Job],
    data: &LoadedDataset,
    opts: &TrainOptions,
    parallelism: Parallelism,
    announce: impl Fn(&Job) + Sync,
) -> Result<Vec<Option<TrainOutcome>>> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let outcomes: Mutex<Vec<Option<TrainOutcome>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let worker = || -> Result<()> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(parallelism.threads)
            .build()
            .context("starting a worker's thread pool")?;
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= jobs.len() || stop.load(Ordering::SeqCst) || interrupted() {
                return Ok(());
            }
            announce(&jobs[i]);
            let outcome = pool.install(|| train(&jobs[i].cfg, data, &jobs[i].run_dir, opts))?;
            if !outcome.completed {
                stop.store(true, Ordering::SeqCst);
                return Ok(());
            }
            lock(&outcomes)[i] = Some(outcome);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..parallelism.workers.min(jobs.len()) {
            s.spawn(|| {
                if let Err(e) = worker() {
                    stop.store(true, Ordering::SeqCst);
                    lock(&first_error).get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = lock(&first_error).take() {
        return Err(e);
    }
    let outcomes = outcomes
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(outcomes)
}

/// A lock whose holder cannot have panicked mid-update (the scoped threads propagate panics).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
