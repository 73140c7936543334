//! A run directory: the one owner of a run's files. It is locked while a process uses it,
//! created with its `config.json`, rewound on resume to the last saved state (so rows logged
//! after that save, before a crash, are not repeated), and every file in it is written
//! atomically or appended whole.
//!
//! ```text
//! config.json              the resolved run (config, architecture, steps, data, code version)
//! state.json               sampler and random streams, evaluations, log lengths at the save
//! metrics.csv, eval.csv    one row per logged step / per evaluation
//! checkpoints/step_N.safetensors   weights, moments, EMA, carry
//! arc_predictions/step_N.json      ARC: every test prediction of checkpoint N (full split)
//! scores.json, predictions.npy     the final evaluation
//! ```

use crate::run::resolve::ResolvedRun;
use crate::run::state::RunState;
use anyhow::{bail, Context, Result};
use datasets::format::{read_json, write_json};
use datasets::fsio::{self, DirLock};
use datasets::score::ArcPrediction;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
/// `run::scores` writes these, in a run directory or in `harness eval`'s output folder.
pub const SCORES_FILE: &str = "scores.json";
pub const PREDICTIONS_FILE: &str = "predictions.npy";
const STATE_FILE: &str = "state.json";
const METRICS_FILE: &str = "metrics.csv";
const EVAL_FILE: &str = "eval.csv";
const CHECKPOINTS_DIR: &str = "checkpoints";
const ARC_PREDICTIONS_DIR: &str = "arc_predictions";
const LOCK_FILE: &str = ".lock";

/// ARC predictions of one checkpoint, with the size of the split they cover (pooling uses
/// only files that cover the whole test split).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArcPredictionsFile {
    pub examples: usize,
    pub predictions: Vec<ArcPrediction>,
}

pub struct RunDir {
    path: PathBuf,
    _lock: DirLock,
}

impl RunDir {
    /// Opens and locks the run directory for `run`, creating it (with `config.json`) when
    /// new. An existing run needs `resume`, must have the same config and data, and is rewound
    /// to its saved state, which is returned; one with a config but no saved state starts
    /// again from nothing.
    pub fn open(
        path: &Path,
        run: &ResolvedRun,
        resume: bool,
    ) -> Result<(RunDir, Option<RunState>)> {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        let lock = DirLock::acquire(&path.join(LOCK_FILE), &format!("run {}", path.display()))?;
        let dir = RunDir {
            path: path.to_path_buf(),
            _lock: lock,
        };
        let config = path.join(CONFIG_FILE);
        if !config.exists() {
            dir.clear_progress()?;
            write_json(&config, run)?;
            return Ok((dir, None));
        }
        if !resume {
            bail!(
                "{} already holds a run (pass --resume to continue it, or choose another --run)",
                path.display()
            );
        }
        let saved: ResolvedRun = read_json(&config)?;
        if saved.config != run.config || saved.dataset_hash != run.dataset_hash {
            bail!(
                "{} was started with another config or dataset; resume it with the same preset, --set values and data",
                path.display()
            );
        }
        let state_path = path.join(STATE_FILE);
        if !state_path.exists() {
            dir.clear_progress()?;
            return Ok((dir, None));
        }
        let state: RunState = read_json(&state_path)?;
        dir.rewind_to(&state)?;
        Ok((dir, Some(state)))
    }

    /// Locks an existing run directory (to evaluate it), which must hold a `config.json`.
    pub fn open_existing(path: &Path) -> Result<RunDir> {
        if !path.join(CONFIG_FILE).exists() {
            bail!(
                "{} is not a run directory (no {CONFIG_FILE})",
                path.display()
            );
        }
        let lock = DirLock::acquire(&path.join(LOCK_FILE), &format!("run {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run as `config.json` records it.
    pub fn resolved(&self) -> Result<ResolvedRun> {
        Ok(read_json(&self.path.join(CONFIG_FILE))?)
    }

    /// Removes everything a run writes while it trains (a fresh start).
    fn clear_progress(&self) -> Result<()> {
        for file in [
            STATE_FILE,
            METRICS_FILE,
            EVAL_FILE,
            SCORES_FILE,
            PREDICTIONS_FILE,
        ] {
            remove_if_present(&self.path.join(file))?;
        }
        for dir in [CHECKPOINTS_DIR, ARC_PREDICTIONS_DIR] {
            let dir = self.path.join(dir);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        Ok(())
    }

    /// Undoes what happened after `state` was saved: log rows cut back, later checkpoints
    /// and their predictions removed.
    fn rewind_to(&self, state: &RunState) -> Result<()> {
        fsio::truncate_to(&self.path.join(METRICS_FILE), state.metrics_bytes)?;
        fsio::truncate_to(&self.path.join(EVAL_FILE), state.eval_bytes)?;
        for (step, path) in self.checkpoints()? {
            if step > state.step {
                remove_if_present(&path)?;
                remove_if_present(&self.arc_predictions_path(step))?;
            }
        }
        Ok(())
    }

    pub fn append_metrics(&self, header: &str, row: Vec<String>) -> Result<()> {
        crate::run::csv::append(&self.path.join(METRICS_FILE), header, &[row]).map(|_| ())
    }

    pub fn append_eval(&self, header: &str, row: Vec<String>) -> Result<()> {
        crate::run::csv::append(&self.path.join(EVAL_FILE), header, &[row]).map(|_| ())
    }

    fn log_bytes(&self, file: &str) -> u64 {
        std::fs::metadata(self.path.join(file)).map_or(0, |m| m.len())
    }

    /// Saves a checkpoint, then the state that points to it (with the logs' lengths now):
    /// a crash between the two leaves the previous state in charge, and a resume removes
    /// the orphaned checkpoint.
    pub fn save(
        &self,
        tensors: &[(String, candle_core::Tensor)],
        state: &mut RunState,
        retention: &Retention,
    ) -> Result<()> {
        let path = self.checkpoint_path(state.step);
        std::fs::create_dir_all(path.parent().expect("in the checkpoints folder"))
            .with_context(|| format!("creating {}", path.display()))?;
        fsio::write_atomic_with(&path, |tmp| {
            models::checkpoint::write(tmp, tensors)
                .map_err(|e| datasets::DataError::format(tmp, e.to_string()))
        })?;
        state.metrics_bytes = self.log_bytes(METRICS_FILE);
        state.eval_bytes = self.log_bytes(EVAL_FILE);
        write_json(&self.path.join(STATE_FILE), state)?;
        // Only now: until the state points to the new checkpoint, the old ones are the run.
        let saved = self.checkpoints()?;
        for (newer, (step, path)) in saved.iter().rev().enumerate() {
            if !retention.keeps(*step, newer) {
                remove_if_present(path)?;
            }
        }
        Ok(())
    }

    /// Where the checkpoint of `step` is (or will be) saved.
    pub fn checkpoint_path(&self, step: u64) -> PathBuf {
        self.path
            .join(CHECKPOINTS_DIR)
            .join(format!("step_{step}.safetensors"))
    }

    /// The run's checkpoints, by step.
    pub fn checkpoints(&self) -> Result<Vec<(u64, PathBuf)>> {
        checkpoints(&self.path)
    }

    fn arc_predictions_path(&self, step: u64) -> PathBuf {
        self.path
            .join(ARC_PREDICTIONS_DIR)
            .join(format!("step_{step}.json"))
    }

    /// ARC: the predictions of checkpoint `step`, if saved.
    pub fn arc_predictions(&self, step: u64) -> Result<Option<ArcPredictionsFile>> {
        let path = self.arc_predictions_path(step);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(read_json(&path)?))
    }

    pub fn save_arc_predictions(&self, step: u64, file: &ArcPredictionsFile) -> Result<()> {
        let path = self.arc_predictions_path(step);
        std::fs::create_dir_all(path.parent().expect("in the predictions folder"))
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(write_json(&path, file)?)
    }
}

/// Which checkpoints a run keeps after each save (`train.keep_checkpoints`): the last k,
/// to continue from and evaluate, and on ARC every scheduled one, whose votes pooling reads
/// (an ARC checkpoint at the paper's shape is a few GB, so an unpruned 50k-epoch run fills
/// a disk).
pub struct Retention {
    last: usize,
    pooled: Option<(u64, u64)>,
}

impl Retention {
    pub fn of(run: &ResolvedRun) -> Retention {
        let t = &run.config.train;
        Retention {
            last: t.keep_checkpoints.max(1),
            pooled: run
                .config
                .task
                .starts_with("arc-")
                .then_some((t.eval_interval, run.total_steps)),
        }
    }

    /// Whether the checkpoint of `step`, with `newer` checkpoints after it, stays.
    fn keeps(&self, step: u64, newer: usize) -> bool {
        newer < self.last
            || self
                .pooled
                .is_some_and(|(interval, total)| pooled_checkpoint(step, interval, total))
    }
}

/// Whether pooling counts the checkpoint of `step`: the eval-interval ones and the last,
/// never one saved off the schedule by a signal or `--stop-after`.
pub fn pooled_checkpoint(step: u64, eval_interval: u64, total_steps: u64) -> bool {
    step.is_multiple_of(eval_interval.max(1)) || step == total_steps
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Checkpoints of a run directory, by step.
pub fn checkpoints(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = run_dir.join(CHECKPOINTS_DIR);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step_"))
            .and_then(|n| n.strip_suffix(".safetensors"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}
