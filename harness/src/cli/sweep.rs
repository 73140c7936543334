//! `harness sweep PLAN.toml`: runs a plan's cells here, `--jobs N` at once with the cores
//! divided between them, each cell a child `harness sweep PLAN --cell K`; or `--slurm`
//! submits them as one Slurm array job whose tasks run the same command; `--status` lists
//! where every cell stands.

use crate::science::executor::{describe, run_local, run_one, submit_slurm, SlurmOptions, Sweep};
use crate::science::sweep::{prepare, state, CellState, Plan, Prepared};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct SweepArgs {
    /// The plan: task, preset, models, seeds, axes (see results/README.md).
    pub plan: PathBuf,
    /// Output folder (default: sweeps/<plan file name without .toml>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where datasets are built and reused.
    #[arg(long, default_value = "data")]
    pub data_root: PathBuf,
    /// List done / running / failed / pending cells, and exit.
    #[arg(long)]
    pub status: bool,
    /// Run this one cell (by index) in this process.
    #[arg(long)]
    pub cell: Option<usize>,
    /// Cells at once on this machine; the cores are divided between them.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Submit the cells not done as one Slurm array job (`sbatch`), a task per cell.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: the partition (default: the cluster's).
    #[arg(long)]
    pub partition: Option<String>,
    /// With --slurm: each task's time limit.
    #[arg(long, default_value = "24:00:00")]
    pub time: String,
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    #[arg(long)]
    pub gpus_per_task: Option<usize>,
}

pub fn run(args: SweepArgs) -> Result<u8> {
    let plan = Plan::load(&args.plan)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .plan
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("sweeps").join(stem)
    });
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if args.cpus_per_task == 0 {
        bail!("--cpus-per-task must be at least 1");
    }
    let cells = prepare(&plan, &out, &args.data_root)?;
    if args.status {
        return print_status(&cells, &out);
    }
    if let Some(k) = args.cell {
        let p = cells.iter().find(|p| p.cell.index == k).with_context(|| {
            format!(
                "{} has {} cells (0..{}); there is no cell {k}",
                args.plan.display(),
                cells.len(),
                cells.len()
            )
        })?;
        return run_one(p, &out);
    }
    let sweep = Sweep {
        plan: &args.plan,
        out: &out,
        data_root: &args.data_root,
        cells: &cells,
    };
    if args.slurm {
        let opts = SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            cpus_per_task: args.cpus_per_task,
            gpus_per_task: args.gpus_per_task,
        };
        return submit_slurm(&sweep, &opts);
    }
    run_local(&sweep, args.jobs)
}

fn print_status(cells: &[Prepared], out: &Path) -> Result<u8> {
    let mut counts = [0usize; 4];
    for p in cells {
        let s = state(out, &p.cell)?;
        counts[match s {
            CellState::Done => 0,
            CellState::Running(_) => 1,
            CellState::Failed(_) => 2,
            CellState::Pending(_) => 3,
        }] += 1;
        println!("{}: {s} [{}]", describe(p), p.cell.dir.display());
    }
    println!(
        "{} cells: {} done, {} running, {} failed, {} pending",
        cells.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3]
    );
    Ok(0)
}
