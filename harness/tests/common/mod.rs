//! What the tests of the real `harness` binary share: its output as text and the steps a
//! run's `metrics.csv` logged.
// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn steps_logged(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}
