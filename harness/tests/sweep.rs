//! `harness sweep` and `harness collect` on the real binary with the `smoke` preset: a plan
//! with a cell that fails and a cell interrupted by SIGTERM (what Slurm sends before a kill),
//! the local executor, `--status`, and `collect` naming what it skips.

mod common;

use common::{steps_logged, text};

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = r#"
task = "maze-hard"
preset = "smoke"
models = ["trm-att", "hrm"]
seeds = 1
set = ["train.steps=300", "train.eval_interval=100"]
# An absurd learning rate: HRM's weights overflow at once and the run stops on a
# non-finite loss, so that cell fails while the others finish.
[model_axes.hrm]
"train.lr" = [1e-4, 1e30]
"#;

struct Sweep {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Sweep {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::write(root.join("plan.toml"), PLAN).unwrap();
        Sweep { _tmp: tmp, root }
    }

    fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    fn sweep(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.arg("sweep")
            .arg(self.root.join("plan.toml"))
            .arg("--out")
            .arg(self.out())
            .arg("--data-root")
            .arg(self.root.join("data"))
            .args(extra)
            .current_dir(&self.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn collect(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("collect")
            .arg(self.out())
            .output()
            .unwrap()
    }

    fn cell_dir(&self, index: usize) -> PathBuf {
        let cells: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.out().join("cells.json")).unwrap())
                .unwrap();
        self.out().join(cells[index]["dir"].as_str().unwrap())
    }
}

#[test]
fn a_sweep_survives_a_failed_and_an_interrupted_cell_and_collect_names_what_it_skips() {
    let s = Sweep::new();
    let status = s.sweep(&["--status"]).output().unwrap();
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("3 cells: 0 done, 0 running, 0 failed, 3 pending"),
        "{}",
        text(&status)
    );

    // Cell 0 interrupted as Slurm would before a preemption: it saves and stops.
    let child = s.sweep(&["--cell", "0"]).spawn().unwrap();
    let run = s.cell_dir(0);
    let started = Instant::now();
    while steps_logged(&run).len() < 120 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped));
    let status = text(&s.sweep(&["--status"]).output().unwrap());
    assert!(status.contains("pending (stopped at step"), "{status}");

    let none = s.collect();
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(
        text(&none).contains("no cell has finished yet"),
        "{}",
        text(&none)
    );

    // The local executor: the interrupted cell resumes, the healthy one runs, the broken one
    // fails with its error and stops nothing else.
    let ran = s.sweep(&["--jobs", "2"]).output().unwrap();
    let said = text(&ran);
    assert_eq!(ran.status.code(), Some(1), "{said}");
    assert!(said.contains("cell 0 (trm-att, seed 0): done"), "{said}");
    assert!(
        said.contains("cell 1 (hrm, seed 0, train.lr=1e-4): done"),
        "{said}"
    );
    assert!(
        said.contains("cell 2 (hrm, seed 0, train.lr=1e30): failed:"),
        "{said}"
    );
    assert_eq!(steps_logged(&run), (1..=300).collect::<Vec<u64>>());
    let failure = std::fs::read_to_string(s.cell_dir(2).join("failed.txt")).unwrap();
    assert!(failure.contains("not finite"), "{failure}");
    let status = text(&s.sweep(&["--status"]).output().unwrap());
    assert!(
        status.contains("3 cells: 2 done, 0 running, 1 failed, 0 pending"),
        "{status}"
    );

    // A record cut short (as by a full disk) is skipped and named, as is the failed cell.
    let record = s.cell_dir(1).join("record.json");
    let whole = std::fs::read(&record).unwrap();
    std::fs::write(&record, &whole[..whole.len() / 2]).unwrap();
    let collected = s.collect();
    let said = text(&collected);
    assert!(collected.status.success(), "{said}");
    assert!(
        said.contains("skipped cell 1 (hrm, seed 0, train.lr=1e-4): unreadable record"),
        "{said}"
    );
    assert!(
        said.contains("skipped cell 2 (hrm, seed 0, train.lr=1e30): failed:"),
        "{said}"
    );
    assert!(said.contains("collected 1 of 3 cells"), "{said}");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(records.len(), 1);
    for metric in ["exact", "valid_path"] {
        for cost in ["parameters", "train_flops", "inference_flops"] {
            let png = s.out().join(format!("plots/sweep_{metric}_vs_{cost}.png"));
            assert!(png.is_file(), "{}", png.display());
        }
    }
    assert!(s.out().join("iso_compute.json").is_file());
    let report = std::fs::read_to_string(s.out().join("report.html")).unwrap();
    assert!(report.contains("Cells not collected") && report.contains("unreadable record"));

    // Run again: the finished cells are reused, not retrained.
    std::fs::write(&record, &whole).unwrap();
    let again = text(&s.sweep(&[]).output().unwrap());
    assert!(
        again.contains("cell 0 (trm-att, seed 0): done (reused)"),
        "{again}"
    );
}

/// An ablation plan: a reference and one variant per family, two seeds; `collect` writes
/// each variant's paired effect against its family's reference, and the records carry the
/// switches they ran with.
#[test]
fn an_ablation_plan_measures_each_variant_against_its_familys_reference() {
    let s = Sweep::new();
    std::fs::write(
        s.root.join("plan.toml"),
        r#"
task = "maze-hard"
preset = "smoke"
models = ["trm-att", "hrm"]
seeds = 2
set = ["train.steps=4", "train.eval_interval=2"]
[[variants]]
name = "reference"
[[variants]]
name = "one-step gradient"
set = ["arch.gradient=one-step"]
models = ["trm-att"]
[[variants]]
name = "no continue loss"
set = ["arch.no_ACT_continue=true"]
models = ["hrm"]
"#,
    )
    .unwrap();
    let out = s.sweep(&["--jobs", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let collected = s.collect();
    assert!(collected.status.success(), "{}", text(&collected));
    let effects: Vec<harness::science::ablation::Effect> =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("ablations.json")).unwrap())
            .unwrap();
    let rows: Vec<(&str, &str, &str)> = effects
        .iter()
        .map(|e| {
            (
                e.model.as_str(),
                e.variant.as_str(),
                e.reference.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("trm-att", "one-step gradient", "reference"),
            ("hrm", "no continue loss", "reference")
        ]
    );
    for e in &effects {
        let d = e.difference.as_ref().expect("paired seeds");
        assert_eq!(d.seeds, [0, 1], "{e:?}");
        assert!((d.mean() - (e.variant_mean.unwrap() - e.reference_mean.unwrap())).abs() < 1e-12);
    }
    let md = std::fs::read_to_string(s.out().join("ablations.md")).unwrap();
    assert!(
        md.contains("| trm-att | one-step gradient | arch.gradient=one-step | 2 |"),
        "{md}"
    );
    let report = std::fs::read_to_string(s.out().join("report.html")).unwrap();
    assert!(report.contains("<h2>Ablations</h2>"));
    // Each record names the switches it ran with.
    let records: Vec<harness::science::record::ResultRecord> =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("results.json")).unwrap())
            .unwrap();
    let switches: Vec<(String, String, bool)> = records
        .iter()
        .map(|r| {
            let a = r.controls.ablation.as_ref().unwrap();
            (r.model.clone(), a.gradient.clone(), a.act_continue_loss)
        })
        .collect();
    let count = |m: &str, g: &str, c: bool| {
        switches
            .iter()
            .filter(|s| **s == (m.to_string(), g.to_string(), c))
            .count()
    };
    assert_eq!(count("trm-att", "last-cycle", false), 2);
    assert_eq!(count("trm-att", "one-step", false), 2);
    assert_eq!(count("hrm", "one-step", true), 2);
    assert_eq!(count("hrm", "one-step", false), 2);
}
