//! `harness sweep PLAN.toml`: runs a plan's cells here, `--jobs N` at once with the cores
//! divided between them, each cell a child `harness sweep PLAN --cell K`; or `--slurm`
//! submits them as one Slurm array job whose tasks run the same command; `--status` lists
//! where every cell stands.

use crate::run::signals::{install_interrupt_handler, interrupted};
use crate::science::sweep::{prepare, run_cell, state, CellState, Plan, Prepared};
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
    if args.slurm {
        return submit_slurm(&args, &cells, &out);
    }
    run_local(&args, &cells, &out)
}

/// The array job's script: each task runs its cell. Slurm signals the batch shell (`B:`)
/// two minutes before the time limit, and a preemption sends SIGTERM; the shell passes
/// either on, the cell saves and stops (exit 130), and the task requeues itself so that
/// the next start resumes the cell.
pub fn sbatch_script(args: &SweepArgs, indices: &[usize], paths: [&Path; 4]) -> String {
    let [exe, plan, out, data_root] = paths.map(|p| p.display().to_string());
    let mut s = format!(
        "#!/bin/bash\n#SBATCH --job-name=harness-sweep\n#SBATCH --array={}\n#SBATCH --output={out}/slurm-%A_%a.log\n#SBATCH --time={}\n#SBATCH --cpus-per-task={}\n#SBATCH --open-mode=append\n#SBATCH --requeue\n#SBATCH --signal=B:USR1@120\n",
        indices.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        args.time,
        args.cpus_per_task
    );
    if let Some(p) = &args.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(g) = args.gpus_per_task {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    s.push_str(&format!(
        r#"export RAYON_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-1}}"
"{exe}" sweep "{plan}" --cell "$SLURM_ARRAY_TASK_ID" --out "{out}" --data-root "{data_root}" &
cell=$!
trap 'kill -USR1 "$cell"' USR1 TERM
status=0
wait "$cell" || status=$?
# A trapped signal ends `wait` early: wait for the cell to save and stop.
while kill -0 "$cell" 2>/dev/null; do wait "$cell" || status=$?; done
if [ "$status" = 130 ]; then
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$status"
"#
    ));
    s
}

fn submit_slurm(args: &SweepArgs, cells: &[Prepared], out: &Path) -> Result<u8> {
    let mut indices = Vec::new();
    for p in cells {
        match state(out, &p.cell)? {
            CellState::Done | CellState::Running(_) => {}
            _ => indices.push(p.cell.index),
        }
    }
    if indices.is_empty() {
        println!("every cell is done or running; nothing to submit");
        return Ok(0);
    }
    let absolute =
        |p: &Path| std::fs::canonicalize(p).with_context(|| format!("resolving {}", p.display()));
    let exe = std::env::current_exe().context("finding the harness binary")?;
    let (plan, out_abs, data) = (
        absolute(&args.plan)?,
        absolute(out)?,
        absolute(&args.data_root)?,
    );
    let script = out.join("sweep.sbatch");
    datasets::fsio::write_atomic(
        &script,
        sbatch_script(args, &indices, [&exe, &plan, &out_abs, &data]).as_bytes(),
    )?;
    let submitted = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script)
        .output()
        .context("running sbatch (is Slurm installed and on PATH?)")?;
    if !submitted.status.success() {
        bail!(
            "sbatch refused {}: {}",
            script.display(),
            String::from_utf8_lossy(&submitted.stderr).trim()
        );
    }
    let job = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .to_string();
    println!(
        "submitted {} cells as Slurm array job {job} ({}); `harness sweep {} --status` follows them",
        indices.len(),
        script.display(),
        args.plan.display()
    );
    Ok(0)
}

fn run_one(p: &Prepared, out: &Path) -> Result<u8> {
    let data = crate::run::datastore::load_verified(&p.data_dir)?;
    let device = crate::run::device::describe(&crate::run::device::default_device()?);
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
    // A signal to this process stops it starting cells and is passed on to the running ones,
    // which save and stop; the children would otherwise go on as orphans.
    install_interrupt_handler();
    let mut forwarded = false;
    loop {
        if interrupted() && !forwarded {
            forwarded = true;
            running.iter_mut().for_each(|(_, child)| ask_to_stop(child));
        }
        while running.len() < args.jobs && !interrupted() {
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
    if interrupted() {
        println!("interrupted: run the same command again to resume");
        return Ok(130);
    }
    Ok(if unfinished == 0 { 0 } else { 1 })
}

/// SIGTERM to a cell's process: it saves and stops, as under Slurm's warning.
#[cfg(unix)]
fn ask_to_stop(child: &mut Child) {
    // SAFETY: kill() only sends a signal to our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

#[cfg(not(unix))]
fn ask_to_stop(child: &mut Child) {
    let _ = child.kill();
}
