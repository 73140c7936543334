//! The Slurm executor against real daemons (`scripts/slurm-local.sh` starts a single-node
//! cluster; `.ci/run` does so before the tests): a 4-cell smoke sweep submitted as one array
//! job, every cell finished by Slurm, and `collect` drawing the charts. Where no Slurm
//! answers, the test says SKIPPED, and under `HARNESS_REQUIRE_SLURM=1` (CI) it fails instead.

mod common;

use common::text;
use std::process::Command;
use std::time::{Duration, Instant};

const PLAN: &str = r#"
task = "maze-hard"
preset = "smoke"
models = ["trm-att", "hrm"]
seeds = 2
set = ["train.steps=20", "train.eval_interval=10"]
"#;

fn slurm_is_up() -> bool {
    Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| {
            let states = String::from_utf8_lossy(&o.stdout);
            o.status.success() && (states.contains("idle") || states.contains("mix"))
        })
}

#[test]
fn a_sweep_submitted_to_slurm_finishes_every_cell_and_collects() {
    if !slurm_is_up() {
        let required = std::env::var("HARNESS_REQUIRE_SLURM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "no Slurm answers (sinfo), and HARNESS_REQUIRE_SLURM=1 says one must: run scripts/slurm-local.sh"
        );
        eprintln!("SKIPPED a_sweep_submitted_to_slurm: no Slurm cluster answers here (scripts/slurm-local.sh starts one)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("plan.toml"), PLAN).unwrap();
    let sweep = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("sweep")
            .arg(root.join("plan.toml"))
            .arg("--out")
            .arg(root.join("out"))
            .arg("--data-root")
            .arg(root.join("data"))
            .args(extra)
            .output()
            .unwrap()
    };
    let submitted = sweep(&["--slurm", "--time", "00:10:00"]);
    let said = text(&submitted);
    assert!(submitted.status.success(), "{said}");
    assert!(
        said.contains("submitted 4 cells as Slurm array job"),
        "{said}"
    );
    let script = std::fs::read_to_string(root.join("out/sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0,1,2,3"), "{script}");

    let started = Instant::now();
    let status = loop {
        let status = text(&sweep(&["--status"]));
        if status.contains("4 cells: 4 done") || !status.contains(" 0 failed,") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "Slurm did not finish the cells: {status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(status.contains("4 cells: 4 done"), "{status}");

    let collected = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("collect")
        .arg(root.join("out"))
        .output()
        .unwrap();
    assert!(collected.status.success(), "{}", text(&collected));
    assert!(text(&collected).contains("collected 4 of 4 cells"));
    assert!(root
        .join("out/plots/sweep_exact_vs_train_flops.png")
        .is_file());
    assert!(root.join("out/report.html").is_file());

    let again = sweep(&["--slurm"]);
    assert!(
        text(&again).contains("nothing to submit"),
        "{}",
        text(&again)
    );
}
