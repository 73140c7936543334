//! Ctrl-C on a real `harness train` process: it saves the full state, says how to resume,
//! and exits with 130; `--resume` continues from that step.

#[cfg(unix)]
#[test]
fn ctrl_c_saves_the_state_and_resume_continues() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let data = tmp.path().join("data");
    let train = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args(["train", "--model", "trm-att", "--task", "maze-hard"])
            .args(["--preset", "smoke", "--set", "train.steps=1000000"])
            .args(["--set", "train.eval_interval=1000000"])
            .arg("--run")
            .arg(&run)
            .arg("--data-root")
            .arg(&data)
            .args(extra)
            .current_dir(tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let child = train(&[]).spawn().unwrap();
    // Wait until a few steps are logged, then press Ctrl-C.
    let started = Instant::now();
    let metrics = run.join("metrics.csv");
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no training progress"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sends SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted at step"), "{stdout}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    let step = state["step"].as_u64().unwrap();
    assert!(step >= 3, "stopped at step {step}");
    assert!(run
        .join(format!("checkpoints/step_{step}.safetensors"))
        .exists());

    // Resume for two more steps.
    let until = (step + 2).to_string();
    let out = train(&["--resume", "--stop-after", &until])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.contains(&format!("resuming {}", run.display())),
        "{stdout}"
    );
    assert!(run
        .join(format!("checkpoints/step_{until}.safetensors"))
        .exists());
    let log = std::fs::read_to_string(&metrics).unwrap();
    let last_step: u64 = log
        .lines()
        .last()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        last_step,
        step + 2,
        "one metrics row per step, none repeated"
    );
}
