//! `harness plan`: the analytic peak memory of one training step of a (preset, task, model)
//! (`models::memory`), the micro-batch count that fits a device, and, with `--measure`, the
//! estimate against the peak resident memory of two real steps on this CPU.

use crate::config::{Preset, RunConfig};
use crate::datastore::dataset_dir;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use models::config::ModelConfig;
use models::memory::{micro_batches_to_fit, step_memory, LayerPath, StepMemory};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct PlanArgs {
    #[arg(long)]
    model: String,
    #[arg(long)]
    task: String,
    #[arg(long, default_value = "paper")]
    preset: String,
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// The device's memory, e.g. 80GB or 141GiB: plans the micro-batches that fit it.
    #[arg(long, value_parser = parse_bytes)]
    device_memory: Option<u64>,
    /// The layers of the device: `gpu` (candle compositions, chunked attention; the default
    /// with --device-memory) or `cpu` (the fused f32 kernels; the default without).
    #[arg(long, value_parser = ["cpu", "gpu"])]
    layers: Option<String>,
    /// Data-parallel ranks sharing the global batch.
    #[arg(long, default_value_t = 1)]
    gpus: usize,
    /// Where datasets are built: a built one gives the exact puzzle count.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
    /// Also run two training steps on this CPU at the plan's shape (random tokens) and
    /// compare the estimate with their peak resident memory.
    #[arg(long)]
    measure: bool,
}

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

fn gb(bytes: u64) -> String {
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
        for entry in
            walk(&dir).with_context(|| format!("counting ARC tasks in {}", dir.display()))?
        {
            if entry.extension().is_some_and(|e| e == "json") {
                count += 1;
            }
        }
    }
    Ok(count)
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
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

pub fn run(args: PlanArgs) -> Result<u8> {
    if args.gpus == 0 {
        bail!("--gpus must be at least 1");
    }
    let run_cfg = Preset::load(&args.preset)?.resolve(&args.task, &args.model, &args.overrides)?;
    let shape = data_shape(&run_cfg, &args.data_root)?;
    let cfg = run_cfg.model_config(shape.seq_len, shape.vocab_size, shape.puzzles)?;
    let path = match (args.layers.as_deref(), args.device_memory) {
        (Some("gpu"), _) | (None, Some(_)) => LayerPath::Composed,
        _ => layer_path(&Device::Cpu, &cfg),
    };
    let p = plan(&cfg, &run_cfg, path, args.gpus, args.device_memory);
    print_plan(&run_cfg, &shape, &p, path, args.gpus, args.device_memory);
    if args.measure {
        if path != LayerPath::FusedCpu {
            bail!("--measure runs on this CPU in float32: use --layers cpu and a float32 config");
        }
        measure(&run_cfg, &p)?;
    }
    Ok(if p.fits { 0 } else { 1 })
}

fn print_plan(
    run: &RunConfig,
    shape: &DataShape,
    p: &Plan,
    path: LayerPath,
    ranks: usize,
    budget: Option<u64>,
) {
    let cfg = &p.model_config;
    println!(
        "{} / {} / {}: batch {} over {ranks} rank(s), {} positions, width {}, {}, {:?} layers",
        run.preset,
        run.task,
        run.model,
        cfg.batch_size,
        cfg.full_seq_len(),
        cfg.hidden_size,
        cfg.forward_dtype,
        path
    );
    println!(
        "  data: {} puzzle ids, from {}",
        shape.puzzles, shape.source
    );
    for (what, bytes) in &p.memory.fixed {
        println!("  {what:<44} {:>12}", gb(*bytes));
    }
    let slots = p.rank_slots.div_ceil(p.micro_batches);
    println!(
        "  {:<44} {:>12}",
        format!("carry ({} slots)", p.rank_slots),
        gb(p.memory.carry_per_slot * p.rank_slots as u64)
    );
    println!(
        "  {:<44} {:>12}",
        format!("graph activations ({slots} slots per micro-batch)"),
        gb(p.memory.per_slot * slots as u64)
    );
    println!(
        "  {:<44} {:>12}",
        "backward working set",
        gb(p.memory.workspace_per_slot * slots as u64 + p.memory.score_blocks(slots))
    );
    println!("  {:<44} {:>12}", "peak of a training step", gb(p.peak));
    match budget {
        Some(b) if p.fits => println!(
            "fits in {} (90% usable) with {} micro-batch(es) of {slots} slots",
            gb(b),
            p.micro_batches
        ),
        Some(b) => println!(
            "does NOT fit in {}: even one slot per micro-batch needs {}",
            gb(b),
            gb(p.peak)
        ),
        None => println!("(give --device-memory to plan the micro-batches of a GPU)"),
    }
}

/// `mi_option_purge_delay` (`mimalloc.h`), as `main` sets it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Peak resident memory of this process so far (`VmHWM`), and now (`VmRSS`), in bytes.
fn resident() -> Result<(u64, u64)> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("/proc/self/status has no {name}"))?;
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("/proc/self/status: unreadable {name}"))?;
        Ok(kb * 1024)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Two training steps at the plan's shape on the CPU: the peak of the bytes live on the
/// heap over what was live before the model existed, and the growth of the peak resident
/// memory (with freed pages returned at once), against the estimate. Returns (estimate,
/// peak live, resident growth).
pub fn measure(run: &RunConfig, p: &Plan) -> Result<(u64, u64, u64)> {
    // Freed pages go back to the kernel at once while measuring, so that the resident size
    // follows what is live (`main` otherwise keeps them for speed).
    // SAFETY: sets a process-wide allocator option; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let (_, rss_before) = resident()?;
    let (live_before, _) = crate::heap::live_and_peak();
    crate::heap::reset_peak();
    measured_steps(run, p)?;
    let (_, peak_live) = crate::heap::live_and_peak();
    let (peak_rss, _) = resident()?;
    let live = peak_live.saturating_sub(live_before);
    let rss = peak_rss.saturating_sub(rss_before);
    println!(
        "measured over two steps: peak live heap {} (estimate / measured = {:.2}); peak resident memory grew by {} (estimate / resident = {:.2})",
        gb(live),
        p.peak as f64 / live.max(1) as f64,
        gb(rss),
        p.peak as f64 / rss.max(1) as f64
    );
    Ok((p.peak, live, rss))
}

fn measured_steps(run: &RunConfig, p: &Plan) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let cfg = &p.model_config;
    let device = Device::Cpu;
    let mut trainer = models::trainer::Trainer::new(
        cfg,
        run.kind(),
        crate::train::optim_config(run)?,
        run.seed,
        &device,
    )?;
    trainer.micro_batches = p.micro_batches;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(run.seed);
    let (b, s) = (cfg.batch_size, cfg.seq_len);
    for _ in 0..2 {
        let tokens: Vec<u32> = (0..b * s)
            .map(|_| rng.random_range(1..cfg.vocab_size as u32))
            .collect();
        let labels: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let ids: Vec<u32> = (0..b)
            .map(|_| rng.random_range(0..cfg.num_puzzle_identifiers as u32))
            .collect();
        let batch = models::act::Batch {
            inputs: candle_core::Tensor::from_vec(tokens, (b, s), &device)?,
            labels: candle_core::Tensor::from_vec(labels, (b, s), &device)?,
            puzzle_identifiers: candle_core::Tensor::from_vec(ids, b, &device)?,
        };
        trainer.train_step(&batch, 1.0, &mut rng)?;
    }
    Ok(())
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
