//! The `harness` command line end to end: build every task, inspect, audit; bad input ends
//! in a clear error with no output directory left behind.

use std::path::{Path, PathBuf};

fn harness(args: &[&str]) -> anyhow_free::Outcome {
    let mut full = vec!["harness"];
    full.extend_from_slice(args);
    match harness::run(full) {
        Ok(code) => anyhow_free::Outcome::Code(code),
        Err(e) => anyhow_free::Outcome::Error(format!("{e:#}")),
    }
}

mod anyhow_free {
    #[derive(Debug, PartialEq)]
    pub enum Outcome {
        Code(u8),
        Error(String),
    }
    impl Outcome {
        pub fn error(self) -> String {
            match self {
                Outcome::Error(e) => e,
                other => panic!("expected an error, got {other:?}"),
            }
        }
    }
}
use anyhow_free::Outcome;

/// `harness data build --task TASK --out OUT EXTRA...`
fn build(task: &str, out: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["data", "build", "--task", task, "--out", out];
    args.extend_from_slice(extra);
    harness(&args)
}

/// A small seeded Sudoku build, made twice to check that equal seeds give equal hashes.
const SMALL_SUDOKU: [&str; 8] = [
    "--train-size",
    "40",
    "--test-size",
    "40",
    "--num-aug",
    "5",
    "--seed",
    "1",
];

fn shared_data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    p.is_dir().then_some(p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Only the finished directory may exist: no staging leftovers beside it.
fn no_leftovers(parent: &Path) {
    for entry in std::fs::read_dir(parent).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            !name.contains(".partial"),
            "staging directory {name} left behind"
        );
    }
}

#[test]
fn help_lists_the_subcommands() {
    assert_eq!(harness(&["--help"]), Outcome::Code(0));
    assert!(harness(&["frobnicate"])
        .error()
        .contains("unrecognized subcommand"));
}

#[test]
fn build_inspect_and_audit_generated_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let sudoku = tmp.path().join("sudoku");
    let maze = tmp.path().join("maze");
    assert_eq!(
        build("sudoku-extreme", s(&sudoku), &SMALL_SUDOKU),
        Outcome::Code(0)
    );
    assert_eq!(
        build(
            "maze-hard",
            s(&maze),
            &[
                "--side",
                "12",
                "--min-path",
                "20",
                "--train-size",
                "30",
                "--test-size",
                "30",
                "--augment"
            ]
        ),
        Outcome::Code(0)
    );
    let m = datasets::format::load_dataset(&maze).unwrap();
    assert_eq!(
        (
            m.data.train.num_examples(),
            m.data.test.num_examples(),
            m.train_metadata.seq_len
        ),
        (240, 30, 144)
    );
    assert_eq!(harness(&["data", "inspect", s(&sudoku)]), Outcome::Code(0));
    assert_eq!(harness(&["data", "inspect", s(&maze)]), Outcome::Code(0));
    let json = tmp.path().join("audit.json");
    assert_eq!(
        harness(&["audit", s(&sudoku), s(&maze), "--json", s(&json)]),
        Outcome::Code(0)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 2);
    assert_eq!(report[0]["task"], "sudoku-extreme");
    assert_eq!(report[1]["splits"][0]["examples"], 240);

    // Same seed, same bytes: the manifest's dataset hash is reproducible.
    let again = tmp.path().join("sudoku2");
    build("sudoku-extreme", s(&again), &SMALL_SUDOKU);
    let hash = |d: &Path| {
        datasets::format::load_dataset(d)
            .unwrap()
            .manifest
            .unwrap()
            .dataset_hash
    };
    assert_eq!(hash(&sudoku), hash(&again));

    // An existing directory is not replaced without --force.
    assert!(build("sudoku-extreme", s(&sudoku), &[])
        .error()
        .contains("--force"));
    no_leftovers(tmp.path());
}

#[test]
fn audit_fails_on_a_changed_file() {
    let tmp = tempfile::tempdir().unwrap();
    let maze = tmp.path().join("maze");
    build(
        "maze-hard",
        s(&maze),
        &[
            "--side",
            "8",
            "--min-path",
            "10",
            "--train-size",
            "10",
            "--test-size",
            "10",
        ],
    );
    std::fs::write(maze.join("identifiers.json"), "[\"<blank>\", \"x\"]").unwrap();
    assert_eq!(harness(&["audit", s(&maze)]), Outcome::Code(1));
}

#[test]
fn bad_input_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("puzzles.txt");
    std::fs::write(&list, "# one good, one with two solutions\n.5..83.17...1..4..3.4..56.8....3...9.9.8245....6....7...9....5...729..861.36.72.4\n.................................................................................\n").unwrap();
    let out = tmp.path().join("out");
    let e = build(
        "sudoku-extreme",
        s(&out),
        &["--source", "lists", "--from", s(&list)],
    )
    .error();
    assert!(
        e.contains("puzzles.txt") && e.contains("line 3") && e.contains("more than one solution"),
        "{e}"
    );
    assert!(!out.exists());

    let arc = tmp.path().join("arc");
    std::fs::create_dir_all(arc.join("training")).unwrap();
    std::fs::create_dir_all(arc.join("evaluation")).unwrap();
    let task = r#"{"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]], "output": [[4]]}]}"#;
    std::fs::write(arc.join("training/aaaa0000.json"), task).unwrap();
    std::fs::write(
        arc.join("evaluation/bbbb0000.json"),
        task.replace("[[3]]", "[[3, 4], [5]]"),
    )
    .unwrap();
    let e = build("arc-agi-1", s(&out), &["--from", s(&arc)]).error();
    assert!(e.contains("bbbb0000") && e.contains("ragged"), "{e}");
    assert!(!out.exists());

    let e = build("maze-hard", s(&out), &["--min-path", "200", "--side", "10"]).error();
    assert!(e.contains("cannot fit"), "{e}");
    let e = build("sudoku-extreme", s(&out), &["--source", "official"]).error();
    assert!(e.contains("--from is required"), "{e}");
    assert!(harness(&["data", "inspect", s(&out)])
        .error()
        .contains("not found"));
    assert!(!out.exists());
    no_leftovers(tmp.path());
}

#[test]
fn arc_from_shared_data() {
    let Some(data) = shared_data() else {
        eprintln!("SKIPPED arc_from_shared_data: ../shared/data is not present in this checkout");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("arc2");
    let kaggle = data.join("trm-kaggle-combined");
    assert_eq!(
        build(
            "arc-agi-2",
            s(&out),
            &["--source", "kaggle", "--from", s(&kaggle), "--num-aug", "1"]
        ),
        Outcome::Code(0)
    );
    assert_eq!(
        harness(&["data", "inspect", s(&out), "--examples", "1"]),
        Outcome::Code(0)
    );
    assert_eq!(harness(&["audit", s(&out)]), Outcome::Code(0));
}

#[test]
fn parity_against_the_golden_folders() {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    if !golden.is_dir() {
        eprintln!("SKIPPED parity_against_the_golden_folders: ../shared/golden is not present in this checkout");
        return;
    }
    let hrm = golden.join("hrm");
    assert_eq!(
        harness(&["parity", "--golden", s(&hrm), "--weights", "weights.pt"]),
        Outcome::Code(0)
    );
    // An absurd tolerance turns the same comparison into a failure: the check can fail.
    assert_eq!(
        harness(&["parity", "--golden", s(&hrm), "--forward-rtol", "1e-12"]),
        Outcome::Code(1)
    );
    let e = harness(&["parity", "--golden", s(&golden.join("missing"))]).error();
    assert!(e.contains("missing"), "{e}");
}
