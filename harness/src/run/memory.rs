//! The memory plan of a run: the analytic peak memory of one training step of a (preset,
//! task, model) on its data's shape (`models::memory`), and the micro-batch count that fits
//! a device.

use crate::run::config::RunConfig;
use crate::run::datastore::dataset_dir;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use models::config::ModelConfig;
use models::memory::{micro_batches_to_fit, step_memory, LayerPath, StepMemory};
use std::path::{Path, PathBuf};

/// `80GB` (10^9), `141GiB` (2^30), `512MB`, `512MiB`, or bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" | "g" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        other => return Err(format!("{text}: unknown unit {other:?} (GB, GiB, MB, MiB)")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text}: not a size such as 80GB"))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("{text}: a size must be positive"));
    }
    Ok((value * scale) as u64)
}

pub fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// Sequence length, vocabulary and puzzle count of a config's data: from the built dataset
/// when there is one, else from the task's geometry (ARC: an upper bound on the puzzles).
pub struct DataShape {
    pub seq_len: usize,
    pub vocab_size: usize,
    pub puzzles: usize,
    pub source: String,
}

pub fn data_shape(cfg: &RunConfig, data_root: &Path) -> Result<DataShape> {
    let dir = dataset_dir(data_root, &cfg.task, &cfg.data)?;
    let meta_path = dir.join("train").join("dataset.json");
    if meta_path.exists() {
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("reading {}", meta_path.display()))?;
        let meta: datasets::format::Metadata = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a dataset.json", meta_path.display()))?;
        return Ok(DataShape {
            seq_len: meta.seq_len,
            vocab_size: meta.vocab_size,
            puzzles: meta.num_puzzle_identifiers,
            source: format!("the built dataset {}", dir.display()),
        });
    }
    let int = |key: &str| {
        cfg.data
            .get(key)
            .and_then(|v| v.as_integer())
            .map(|v| v as usize)
    };
    let geometry = |seq_len, vocab_size| DataShape {
        seq_len,
        vocab_size,
        puzzles: 1,
        source: format!(
            "the {} geometry (no built dataset in {})",
            cfg.task,
            data_root.display()
        ),
    };
    Ok(match cfg.task.as_str() {
        "sudoku-extreme" => geometry(81, 11),
        "sudoku-small" => {
            let side = int("side").unwrap_or(4);
            geometry(side * side, 11)
        }
        "maze-hard" => {
            let side = int("side").unwrap_or(30);
            geometry(side * side, 6)
        }
        "arc-agi-1" | "arc-agi-2" => {
            let tasks = arc_task_files(cfg)?;
            let versions = int("num-aug").unwrap_or(1000) + 1;
            DataShape {
                seq_len: 900,
                vocab_size: 12,
                puzzles: 1 + tasks * versions,
                source: format!(
                    "at most {tasks} tasks x {versions} versions + the blank id (duplicates not removed; build the data for the exact count)"
                ),
            }
        }
        other => bail!("plan: unknown task {other}"),
    })
}

/// Task files (`*.json`) under the ARC data section's `from` folders and `concept`.
fn arc_task_files(cfg: &RunConfig) -> Result<usize> {
    let mut dirs: Vec<PathBuf> = cfg
        .data
        .get("from")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(c) = cfg.data.get("concept").and_then(|v| v.as_str()) {
        dirs.push(PathBuf::from(c));
    }
    let mut count = 0;
    for dir in dirs {
        for entry in datasets::fsio::files_below(&dir)
            .with_context(|| format!("counting ARC tasks in {}", dir.display()))?
        {
            if entry.extension().is_some_and(|e| e == "json") {
                count += 1;
            }
        }
    }
    Ok(count)
}

/// What a plan says, for the command and for `train`.
pub struct Plan {
    pub model_config: ModelConfig,
    pub memory: StepMemory,
    pub rank_slots: usize,
    pub micro_batches: usize,
    pub peak: u64,
    pub fits: bool,
}

/// The layers a device runs.
pub fn layer_path(device: &Device, cfg: &ModelConfig) -> LayerPath {
    match (device.is_cpu(), cfg.forward_dtype.as_str()) {
        (true, "float32") | (true, "float64") => LayerPath::FusedCpu,
        _ => LayerPath::Composed,
    }
}

/// The fewest micro-batches that fit `budget` (10% kept back for the allocator and the
/// CUDA context), or one when no budget is given.
pub fn plan(
    cfg: &ModelConfig,
    run: &RunConfig,
    path: LayerPath,
    ranks: usize,
    budget: Option<u64>,
) -> Plan {
    let kind = run.kind();
    let ranks = ranks.max(1);
    let rank_slots = cfg.batch_size.div_ceil(ranks);
    let usable = budget.map(|b| b / 10 * 9);
    let fit = |b| micro_batches_to_fit(cfg, kind, run.train.ema, path, (rank_slots, ranks), b);
    let (micro_batches, peak, fits) = match usable.and_then(fit) {
        Some((k, peak)) => (k, peak, true),
        None => {
            let k = if usable.is_some() { rank_slots } else { 1 };
            let m = step_memory(cfg, kind, run.train.ema, (k, ranks), path);
            let peak = m.peak(rank_slots, rank_slots.div_ceil(k));
            (k, peak, usable.is_none())
        }
    };
    Plan {
        model_config: cfg.clone(),
        memory: step_memory(cfg, kind, run.train.ema, (micro_batches, ranks), path),
        rank_slots,
        micro_batches,
        peak,
        fits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_their_units_and_bad_ones_are_named() {
        assert_eq!(parse_bytes("80GB"), Ok(80_000_000_000));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512 MiB"), Ok(512 << 20));
        assert!(parse_bytes("80XB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("-3GB").is_err());
        assert!(parse_bytes("GB").is_err());
    }
}
