//! Where a sweep's cells run: here, `jobs` at once as child processes `harness sweep PLAN
//! --cell K` with the cores divided between them (a signal to the parent passes on to the
//! children, which save and stop); or on Slurm, as one array job whose tasks run the same
//! command and requeue themselves on a time limit or a preemption; or one cell in this
//! process.

use crate::run::signals::{install_interrupt_handler, interrupted};
use crate::science::sweep::{run_cell, state, CellState, Prepared};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A prepared sweep: its plan file, output folder, data root and cells.
pub struct Sweep<'a> {
    pub plan: &'a Path,
    pub out: &'a Path,
    pub data_root: &'a Path,
    pub cells: &'a [Prepared],
}

/// What each Slurm task asks for.
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: String,
    pub cpus_per_task: usize,
    pub gpus_per_task: Option<usize>,
}

pub fn describe(p: &Prepared) -> String {
    p.cell.describe()
}

/// The array job's script: each task runs its cell. Slurm signals the batch shell (`B:`)
/// two minutes before the time limit, and a preemption sends SIGTERM; the shell passes
/// either on, the cell saves and stops (exit 130), and the task requeues itself so that
/// the next start resumes the cell.
pub fn sbatch_script(opts: &SlurmOptions, indices: &[usize], paths: [&Path; 4]) -> String {
    let [exe, plan, out, data_root] = paths.map(|p| p.display().to_string());
    let mut s = format!(
        "#!/bin/bash\n#SBATCH --job-name=harness-sweep\n#SBATCH --array={}\n#SBATCH --output={out}/slurm-%A_%a.log\n#SBATCH --time={}\n#SBATCH --cpus-per-task={}\n#SBATCH --open-mode=append\n#SBATCH --requeue\n#SBATCH --signal=B:USR1@120\n",
        indices.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        opts.time,
        opts.cpus_per_task
    );
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(g) = opts.gpus_per_task {
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

pub fn submit_slurm(sweep: &Sweep, opts: &SlurmOptions) -> Result<u8> {
    let (cells, out) = (sweep.cells, sweep.out);
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
        absolute(sweep.plan)?,
        absolute(out)?,
        absolute(sweep.data_root)?,
    );
    let script = out.join("sweep.sbatch");
    datasets::fsio::write_atomic(
        &script,
        sbatch_script(opts, &indices, [&exe, &plan, &out_abs, &data]).as_bytes(),
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
        sweep.plan.display()
    );
    Ok(0)
}

pub fn run_one(p: &Prepared, out: &Path) -> Result<u8> {
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

/// Children `harness sweep PLAN --cell K`, at most `jobs` at once; a failed cell is reported
/// and the others go on. Exit 0 when every cell is done, 1 when one failed or stopped.
pub fn run_local(sweep: &Sweep, jobs: usize) -> Result<u8> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let mut next = cells_to_run(sweep)?.into_iter();
    let mut running: Vec<(&Prepared, Child)> = Vec::new();
    let mut unfinished = 0;
    // A signal to this process stops it starting cells and is passed on to the running ones,
    // which save and stop; the children would otherwise go on as orphans.
    install_interrupt_handler();
    let mut forwarded = false;
    loop {
        if interrupted() && !forwarded {
            forwarded = true;
            running.iter_mut().for_each(|(_, child)| ask_to_stop(child));
        }
        while running.len() < jobs && !interrupted() {
            let Some(p) = next.next() else { break };
            running.push((p, start_cell(sweep, p, threads)?));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        unfinished += reap_cells(sweep.out, &mut running)?;
    }
    println!(
        "sweep {}: {} cells, {unfinished} not done; `harness collect {}` gathers the finished ones",
        sweep.plan.display(),
        sweep.cells.len(),
        sweep.out.display()
    );
    if interrupted() {
        println!("interrupted: run the same command again to resume");
        return Ok(130);
    }
    Ok(if unfinished == 0 { 0 } else { 1 })
}

/// The cells neither done nor running elsewhere, saying which are which.
fn cells_to_run<'a>(sweep: &Sweep<'a>) -> Result<Vec<&'a Prepared>> {
    let mut todo = Vec::new();
    for p in sweep.cells {
        match state(sweep.out, &p.cell)? {
            CellState::Done => println!("{}: done (reused)", describe(p)),
            CellState::Running(holder) => {
                println!("{}: running elsewhere ({holder}); left to it", describe(p))
            }
            _ => todo.push(p),
        }
    }
    Ok(todo)
}

/// A child `harness sweep PLAN --cell K` on `threads` threads, its output in the cell's
/// `log.txt`.
fn start_cell(sweep: &Sweep, p: &Prepared, threads: usize) -> Result<Child> {
    let exe = std::env::current_exe().context("finding the harness binary")?;
    let dir = sweep.out.join(&p.cell.dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = std::fs::File::create(dir.join("log.txt"))
        .with_context(|| format!("creating {}", dir.join("log.txt").display()))?;
    let child = Command::new(&exe)
        .arg("sweep")
        .arg(sweep.plan)
        .arg("--cell")
        .arg(p.cell.index.to_string())
        .arg("--out")
        .arg(sweep.out)
        .arg("--data-root")
        .arg(sweep.data_root)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {}", describe(p)))?;
    println!("{}: started ({threads} threads)", describe(p));
    Ok(child)
}

/// Removes the cells whose process ended, saying how each ended; the count of those that
/// did not finish.
fn reap_cells(out: &Path, running: &mut Vec<(&Prepared, Child)>) -> Result<usize> {
    let mut unfinished = 0;
    let mut i = 0;
    while i < running.len() {
        let Some(status) = running[i].1.try_wait()? else {
            i += 1;
            continue;
        };
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
    }
    Ok(unfinished)
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
