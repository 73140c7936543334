//! What a crash, a NaN, a second process or a half-made run directory does to a run, on the
//! real `harness` binary with the `smoke` preset: the outputs stay whole and the run
//! continues as if nothing happened.

mod common;

use common::{steps_logged, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Folder {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Folder {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Folder { _tmp: tmp, root }
    }

    /// `harness train --model trm-att --task maze-hard --preset smoke` on `run`, with the data
    /// under this folder.
    fn train(&self, run: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args(["train", "--model", "trm-att", "--task", "maze-hard"])
            .args(["--preset", "smoke", "--set", "train.steps=300"])
            .args(["--set", "train.eval_interval=100"])
            .arg("--run")
            .arg(self.root.join(run))
            .arg("--data-root")
            .arg(self.root.join("data"))
            .args(extra)
            .current_dir(&self.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

fn output(mut cmd: Command) -> Output {
    cmd.output().unwrap()
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut all: Vec<(String, Vec<f32>)> =
        candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .unwrap()
            .into_iter()
            .filter(|(_, t)| t.dtype() == candle_core::DType::F32)
            .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[cfg(unix)]
#[test]
fn a_run_killed_with_sigkill_resumes_with_one_row_per_step_and_the_same_weights() {
    let f = Folder::new();
    let whole = output(f.train("whole", &[]));
    assert!(whole.status.success(), "{}", text(&whole));

    let mut child = f.train("killed", &[]).spawn().unwrap();
    let run = f.root.join("killed");
    let started = Instant::now();
    // Past the checkpoint of step 100, with rows logged after it: those must not be repeated.
    while steps_logged(&run).len() < 150 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs, nothing is saved.
    child.wait().unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert!(
        state["step"].as_u64().unwrap() < 300,
        "killed before the end"
    );
    assert!(steps_logged(&run).len() as u64 > state["step"].as_u64().unwrap());
    let resumed = output(f.train("killed", &["--resume"]));
    assert!(resumed.status.success(), "{}", text(&resumed));

    assert_eq!(steps_logged(&run), (1..=300).collect::<Vec<u64>>());
    // Validation at steps 100 and 200, and at the end validation, then test: once each.
    let evals = std::fs::read_to_string(run.join("eval.csv")).unwrap();
    assert_eq!(evals.lines().count(), 1 + 4, "{evals}");
    let last = |dir: &str| f.root.join(dir).join("checkpoints/step_300.safetensors");
    assert_eq!(tensors(&last("killed")), tensors(&last("whole")));
}

#[test]
fn a_run_with_a_config_but_no_saved_state_starts_again_cleanly() {
    let f = Folder::new();
    let first = output(f.train("run", &["--stop-after", "30"]));
    assert_eq!(first.status.code(), Some(130), "{}", text(&first));
    // As if the process died before its first save: config.json and rows, no state.
    let run = f.root.join("run");
    std::fs::remove_file(run.join("state.json")).unwrap();
    let again = output(f.train("run", &["--resume"]));
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(steps_logged(&run), (1..=300).collect::<Vec<u64>>());
}

#[test]
fn a_nan_stops_the_run_at_its_step_and_keeps_the_last_good_state() {
    let f = Folder::new();
    let first = output(f.train("run", &["--stop-after", "100"]));
    assert_eq!(first.status.code(), Some(130), "{}", text(&first));
    let run = f.root.join("run");
    let checkpoint = run.join("checkpoints/step_100.safetensors");
    let mut state =
        models::checkpoint::load_state_dict(&checkpoint, &candle_core::Device::Cpu).unwrap();
    let name = "model.inner.lm_head.weight";
    let poisoned = (state[name].clone() * f64::NAN).unwrap();
    state.insert(name.to_string(), poisoned);
    let tensors: Vec<_> = state.into_iter().collect();
    models::checkpoint::write(&checkpoint, &tensors).unwrap();
    let before = std::fs::read(&checkpoint).unwrap();

    let out = output(f.train("run", &["--resume"]));
    let message = text(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("training step 101") && message.contains("not finite"),
        "{message}"
    );
    // Nothing after step 100 was saved or logged; the checkpoint is the one it was.
    assert_eq!(steps_logged(&run), (1..=100).collect::<Vec<u64>>());
    assert_eq!(std::fs::read(&checkpoint).unwrap(), before);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 100);
}

fn compare(f: &Folder) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args([
        "compare",
        "--task",
        "maze-hard",
        "--preset",
        "smoke",
        "--seeds",
        "1",
    ])
    .args(["--set", "train.steps=60", "--set", "train.eval_interval=30"])
    .arg("--out")
    .arg(f.root.join("out"))
    .arg("--data-root")
    .arg(f.root.join("data"))
    .arg("--results")
    .arg(f.root.join("results"))
    .current_dir(&f.root)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[test]
fn two_compares_in_one_folder_take_turns_and_both_outputs_are_whole() {
    let f = Folder::new();
    let a = compare(&f).spawn().unwrap();
    let b = compare(&f).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    let said = format!("{}{}", text(&a), text(&b));
    assert!(
        said.contains("waiting for"),
        "one waited for the other: {said}"
    );
    assert!(said.contains("reusing the finished run"), "{said}");

    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(f.root.join("out/results.json")).unwrap())
            .unwrap();
    assert_eq!(records.len(), 2);
    let report = std::fs::read_to_string(f.root.join("out/report.html")).unwrap();
    assert!(report.trim_end().ends_with("</html>"));
    // Both appended their rows whole: a header and four complete rows.
    let table = f.root.join("results/maze-hard-smoke.csv");
    let mut reader = csv::Reader::from_path(&table).unwrap();
    let columns = reader.headers().unwrap().len();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.len() == columns));
    for (run, record) in ["trm-att-seed0", "hrm-seed0"].iter().zip(&records) {
        let steps = steps_logged(&f.root.join("out/runs").join(run));
        let total = record["train_steps"].as_u64().unwrap();
        assert_eq!(steps, (1..=total).collect::<Vec<u64>>(), "{run}");
    }
}

#[test]
fn a_reused_run_keeps_the_code_version_that_trained_it() {
    let f = Folder::new();
    let first = output(compare(&f));
    assert!(first.status.success(), "{}", text(&first));
    // Stamp the runs as made by another commit; the rerun reuses them and must say so.
    for run in ["trm-att-seed0", "hrm-seed0"] {
        let path = f.root.join("out/runs").join(run).join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["code_version"] = "0123456789abcdef0123456789abcdef01234567".into();
        std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    }
    let again = output(compare(&f));
    assert!(again.status.success(), "{}", text(&again));
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(f.root.join("out/results.json")).unwrap())
            .unwrap();
    for r in records {
        assert_eq!(r["git_commit"], "0123456789abcdef0123456789abcdef01234567");
    }
}
