//! `harness sweep PLAN.toml`: runs a plan's cells here, `--jobs N` at once with the cores
//! divided between them, each cell a child `harness sweep PLAN --cell K` (what a Slurm array
//! task runs too); `--status` lists where every cell stands.

use crate::sweep::{prepare, run_cell, state, CellState, Plan, Prepared};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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
}

fn describe(p: &Prepared) -> String {
    let c = &p.cell;
    format!(
        "cell {} ({}, seed {}{}{})",
        c.index,
        c.model,
        c.seed,
        if c.assignments.is_empty() { "" } else { ", " },
        c.assignments.join(" ")
    )
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
    run_local(&args, &cells, &out)
}

fn run_one(p: &Prepared, out: &Path) -> Result<u8> {
    let data = crate::datastore::load_verified(&p.data_dir)?;
    let device = crate::device::describe(&crate::device::default_device()?);
    println!(
        "{}: training -> {}",
        describe(p),
        out.join(&p.cell.dir).display()
    );
    match run_cell(p, out, &data, &device) {
        Ok(true) => {
            println!("{}: done", describe(p));
            Ok(0)
        }
        Ok(false) => {
            println!("{}: stopped; run the sweep again to resume it", describe(p));
            Ok(130)
        }
        Err(e) => Err(e.context(describe(p))),
    }
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

/// Children `harness sweep PLAN --cell K`, at most `jobs` at once; a failed cell is reported
/// and the others go on. Exit 0 when every cell is done, 1 when one failed or stopped.
fn run_local(args: &SweepArgs, cells: &[Prepared], out: &Path) -> Result<u8> {
    let exe = std::env::current_exe().context("finding the harness binary")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / args.jobs).max(1);
    let mut todo: Vec<&Prepared> = Vec::new();
    for p in cells {
        match state(out, &p.cell)? {
            CellState::Done => println!("{}: done (reused)", describe(p)),
            CellState::Running(holder) => {
                println!("{}: running elsewhere ({holder}); left to it", describe(p))
            }
            _ => todo.push(p),
        }
    }
    let mut running: Vec<(&Prepared, Child)> = Vec::new();
    let mut unfinished = 0;
    let mut next = todo.into_iter();
    loop {
        while running.len() < args.jobs {
            let Some(p) = next.next() else { break };
            let dir = out.join(&p.cell.dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let log = std::fs::File::create(dir.join("log.txt"))
                .with_context(|| format!("creating {}", dir.join("log.txt").display()))?;
            let child = Command::new(&exe)
                .arg("sweep")
                .arg(&args.plan)
                .arg("--cell")
                .arg(p.cell.index.to_string())
                .arg("--out")
                .arg(out)
                .arg("--data-root")
                .arg(&args.data_root)
                .env("RAYON_NUM_THREADS", threads.to_string())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {}", describe(p)))?;
            println!("{}: started ({threads} threads)", describe(p));
            running.push((p, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (p, _) = running.remove(i);
                match state(out, &p.cell)? {
                    CellState::Done => println!("{}: done", describe(p)),
                    other => {
                        unfinished += 1;
                        println!(
                            "{}: {other} (exit {}; log {})",
                            describe(p),
                            status.code().map_or("by signal".into(), |c| c.to_string()),
                            out.join(&p.cell.dir).join("log.txt").display()
                        );
                    }
                }
            } else {
                i += 1;
            }
        }
    }
    println!(
        "sweep {}: {} cells, {unfinished} not done; `harness collect {}` gathers the finished ones",
        args.plan.display(),
        cells.len(),
        out.display()
    );
    Ok(if unfinished == 0 { 0 } else { 1 })
}
