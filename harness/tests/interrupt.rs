//! A signal is honoured across runs: once SIGTERM (or Ctrl-C, or Slurm's SIGUSR1) has
//! arrived, a compare starts no further run and a sweep no further cell, wherever the signal
//! landed (between runs, or during an evaluation, where no training loop was there to see
//! it). Its own test binary: the flag it sets is process-wide.

#[cfg(unix)]
#[test]
fn after_a_signal_no_compare_run_and_no_sweep_cell_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let data = s(&root.join("data"));
    // One finished run installs the handler, as the first run of a compare would.
    let first = [
        "harness",
        "train",
        "--model",
        "trm-att",
        "--task",
        "maze-hard",
        "--preset",
        "smoke",
        "--set",
        "train.steps=2",
        "--run",
        &s(&root.join("first")),
        "--data-root",
        &data,
    ];
    assert_eq!(harness::run(first).unwrap(), 0);
    // SAFETY: raises a signal whose handler only sets an atomic flag.
    unsafe { libc::raise(libc::SIGTERM) };

    let compare = [
        "harness",
        "compare",
        "--task",
        "maze-hard",
        "--preset",
        "smoke",
        "--seeds",
        "2",
        "--out",
        &s(&root.join("compare")),
        "--data-root",
        &data,
        "--results",
        &s(&root.join("results")),
    ];
    assert_eq!(harness::run(compare).unwrap(), 130);
    assert!(
        !root.join("compare/runs").exists(),
        "a run started after the signal"
    );

    let plan = root.join("plan.toml");
    std::fs::write(
        &plan,
        "task = \"maze-hard\"\npreset = \"smoke\"\nmodels = [\"trm-att\"]\nseeds = 2\n",
    )
    .unwrap();
    let out = root.join("sweep");
    let sweep = [
        "harness",
        "sweep",
        &s(&plan),
        "--out",
        &s(&out),
        "--data-root",
        &data,
    ];
    assert_eq!(harness::run(sweep).unwrap(), 130);
    let started = std::fs::read_dir(out.join("cells"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(started, 0, "a cell started after the signal");
}
