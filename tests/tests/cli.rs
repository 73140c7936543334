//! The `harness` command line end to end: build every task, inspect, audit; bad input ends
//! in a clear error with no output directory left behind.

use std::path::Path;

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
fn small_sudoku_builds_inspects_audits_and_trains_for_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    for side in ["4", "6"] {
        let dir = tmp.path().join(format!("sudoku{side}"));
        let extra = [
            "--side",
            side,
            "--train-size",
            "30",
            "--test-size",
            "10",
            "--num-aug",
            "3",
        ];
        assert_eq!(build("sudoku-small", s(&dir), &extra), Outcome::Code(0));
        let d = datasets::format::load_dataset(&dir).unwrap();
        let n: usize = side.parse().unwrap();
        assert_eq!(
            (d.train_metadata.seq_len, d.train_metadata.vocab_size),
            (n * n, n + 2)
        );
        assert_eq!(d.manifest.as_ref().unwrap().task, "sudoku-small");
        assert_eq!(harness(&["data", "inspect", s(&dir)]), Outcome::Code(0));
        assert_eq!(harness(&["audit", s(&dir)]), Outcome::Code(0));
    }
    // A side with no box shape, 9x9 under the small task, and a small side under the 9x9 task.
    let bad = tmp.path().join("bad");
    for (task, side, needle) in [
        ("sudoku-small", "5", "4, 6 or 9"),
        ("sudoku-small", "9", "sudoku-extreme"),
        ("sudoku-extreme", "6", "sudoku-small"),
    ] {
        let e = build(
            task,
            s(&bad),
            &["--side", side, "--train-size", "5", "--test-size", "5"],
        )
        .error();
        assert!(e.contains(needle), "{task} --side {side}: {e}");
        assert!(!bad.exists());
    }
    let run = tmp.path().join("run");
    let data_root = tmp.path().join("data");
    let args = [
        "train",
        "--model",
        "trm-att",
        "--task",
        "sudoku-small",
        "--preset",
        "smoke",
        "--run",
        s(&run),
        "--data-root",
        s(&data_root),
    ];
    assert_eq!(harness(&args), Outcome::Code(0));
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

/// A count of zero where the command needs at least one is refused by its flag's name before
/// anything is built, never quietly taken as one.
#[test]
fn counts_of_zero_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, data) = (tmp.path().join("out"), tmp.path().join("data"));
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/maze-cpu.toml");
    let preset = ["--preset", "cpu", "--task", "maze-hard"];
    let (data_root, to) = (["--data-root", s(&data)], ["--out", s(&out)]);
    let cases: [(&str, Vec<&str>); 4] = [
        ("--repeats", [&["bench"][..], &preset, &data_root].concat()),
        (
            "--batch-shards",
            [&["bench"][..], &preset, &data_root].concat(),
        ),
        (
            "--jobs",
            [&["compare"][..], &preset, &data_root, &to].concat(),
        ),
        (
            "--cpus-per-task",
            [&["sweep", s(&plan), "--slurm"][..], &data_root, &to].concat(),
        ),
    ];
    for (flag, mut args) in cases {
        args.extend_from_slice(&[flag, "0"]);
        let e = harness(&args).error();
        assert!(e.contains(&format!("{flag} must be at least 1")), "{e}");
    }
    assert!(!out.exists() && !data.exists());
}

#[test]
fn arc_from_shared_data() {
    let Some(data) = datasets::shared::shared_dir("data", "arc_from_shared_data") else {
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
    let Some(golden) = datasets::shared::shared_dir("golden", "parity_against_the_golden_folders")
    else {
        return;
    };
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

/// The fields of the official `PuzzleDatasetMetadata`: TRM's (`dataset/common.py`), which
/// HRM's (the same without `total_puzzles`) is a subset of.
const TRM_METADATA_FIELDS: [&str; 10] = [
    "pad_id",
    "ignore_label_id",
    "blank_identifier_id",
    "vocab_size",
    "seq_len",
    "num_puzzle_identifiers",
    "total_groups",
    "mean_puzzle_examples",
    "total_puzzles",
    "sets",
];

/// The field names of the pydantic class `PuzzleDatasetMetadata` in the official source.
fn official_metadata_fields(common_py: &str) -> Vec<String> {
    common_py
        .split("class PuzzleDatasetMetadata(pydantic.BaseModel):")
        .nth(1)
        .expect("the class is defined")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .filter_map(|l| l.trim().split_once(':').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn every_task_writes_the_fields_both_official_loaders_require() {
    if let Some(reference) =
        datasets::shared::shared_dir("reference/trm-official", "official metadata fields")
    {
        let text = std::fs::read_to_string(reference.join("dataset/common.py")).unwrap();
        assert_eq!(official_metadata_fields(&text), TRM_METADATA_FIELDS);
    }
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("arc-src");
    for (dir, name, input) in [
        ("training", "aaaa0001", 1),
        ("training", "aaaa0002", 2),
        ("evaluation", "bbbb0001", 3),
    ] {
        std::fs::create_dir_all(arc.join(dir)).unwrap();
        let pair = format!(r#"{{"input": [[{input}, 0]], "output": [[0, {input}]]}}"#);
        let task = format!(r#"{{"train": [{pair}, {pair}], "test": [{pair}]}}"#);
        std::fs::write(arc.join(dir).join(format!("{name}.json")), task).unwrap();
    }
    let builds: [(&str, Vec<&str>, usize); 3] = [
        ("sudoku-extreme", SMALL_SUDOKU.to_vec(), 40),
        (
            "maze-hard",
            vec![
                "--side",
                "5",
                "--min-path",
                "3",
                "--train-size",
                "6",
                "--test-size",
                "4",
            ],
            6,
        ),
        ("arc-agi-1", vec!["--from", s(&arc), "--num-aug", "1"], 0),
    ];
    for (task, args, groups) in builds {
        let out = tmp.path().join(task);
        assert_eq!(build(task, s(&out), &args), Outcome::Code(0), "{task}");
        let meta: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(out.join("train/dataset.json")).unwrap())
                .unwrap();
        let mut keys: Vec<&str> = meta.keys().map(String::as_str).collect();
        let mut expected = TRM_METADATA_FIELDS.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{task}");
        // The official builders' value: groups for Sudoku and Maze, puzzles for ARC.
        let total = meta["total_puzzles"].as_u64().unwrap() as usize;
        if groups > 0 {
            assert_eq!(total, groups, "{task}");
        } else {
            let puzzles = datasets::format::load_dataset(&out)
                .unwrap()
                .data
                .train
                .num_puzzles();
            assert_eq!(total, puzzles, "{task}");
        }
    }
}

/// `report` refuses records that are not one comparison, where the pairing by seed would
/// pair runs across settings or count a run twice, and names what differs.
#[test]
fn report_refuses_records_of_two_settings_or_a_run_twice() {
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference/maze-hard-cpu/records");
    let mut files: Vec<_> = std::fs::read_dir(reference)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let records: Vec<serde_json::Value> = files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    // A seed the others lack, so only its setting keeps it out.
    let mut other = records[0].clone();
    other["seed"] = serde_json::json!(6);
    other["setting"]["overrides"] = serde_json::json!(["train.steps=1200"]);
    other["run_dir"] = serde_json::json!("elsewhere/runs/hrm-seed6");
    for (name, extra, expected) in [
        ("two-settings", other, "train.steps=1200"),
        ("twice", records[0].clone(), "twice"),
    ] {
        let list = tmp.path().join(format!("{name}.json"));
        let all: Vec<_> = records.iter().cloned().chain([extra]).collect();
        std::fs::write(&list, serde_json::to_string(&all).unwrap()).unwrap();
        let out = tmp.path().join(name);
        let e = harness(&["report", s(&list), "--out", s(&out)]).error();
        assert!(
            e.contains("not one comparison") && e.contains(expected),
            "{e}"
        );
        assert!(
            !out.exists(),
            "{name}: a refused report wrote {}",
            out.display()
        );
    }
    // Another seed base is the same setting: a later run of seed 6 reports with seeds 0-5.
    let mut later = records[0].clone();
    later["seed"] = serde_json::json!(6);
    later["setting"]["overrides"] = serde_json::json!(["seed=6"]);
    let list = tmp.path().join("later.json");
    let all: Vec<_> = records.iter().cloned().chain([later]).collect();
    std::fs::write(&list, serde_json::to_string(&all).unwrap()).unwrap();
    let out = tmp.path().join("later");
    assert_eq!(
        harness(&["report", s(&list), "--out", s(&out)]),
        Outcome::Code(0)
    );
}

/// The committed reference comparisons come back byte for byte from their records alone
/// (`harness report`), and the reference sweep's comparison at equal compute from its
/// collected records (`harness collect` on a copy without run directories).
#[test]
fn the_committed_references_are_recomputed_from_their_records() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "maze-hard-cpu",
        "maze-hard-cpu-12-seeds",
        "maze-hard-cpu-xeon",
        "maze-hard-cpu-6000-steps-6-seeds",
        "sudoku-small-cpu",
    ] {
        let out = tmp.path().join(name);
        let records = reference.join(name).join("records");
        assert_eq!(
            harness(&["report", s(&records), "--out", s(&out)]),
            Outcome::Code(0)
        );
        for file in [
            "table.md",
            "paired.csv",
            "test_time.csv",
            "answer_rules.csv",
        ] {
            let committed =
                std::fs::read_to_string(reference.join(name).join("comparison").join(file));
            let recomputed = std::fs::read_to_string(out.join(file));
            assert_eq!(recomputed.unwrap(), committed.unwrap(), "{name}/{file}");
        }
    }
    let sweep = tmp.path().join("sweep");
    std::fs::create_dir_all(&sweep).unwrap();
    for file in ["cells.json", "results.json"] {
        std::fs::copy(
            reference.join("maze-cpu-sweep").join(file),
            sweep.join(file),
        )
        .unwrap();
    }
    assert_eq!(harness(&["collect", s(&sweep)]), Outcome::Code(0));
    let iso = |dir: &Path| std::fs::read_to_string(dir.join("iso_compute.json")).unwrap();
    assert_eq!(iso(&sweep), iso(&reference.join("maze-cpu-sweep")));
    // The ablation plans' effects, recomputed from their cells and records.
    for name in ["trm-ablations", "hrm-ablations"] {
        let committed = reference.join(name);
        let sweep = tmp.path().join(name);
        std::fs::create_dir_all(&sweep).unwrap();
        for file in ["cells.json", "results.json"] {
            std::fs::copy(committed.join(file), sweep.join(file)).unwrap();
        }
        assert_eq!(harness(&["collect", s(&sweep)]), Outcome::Code(0));
        let md = |dir: &Path| std::fs::read_to_string(dir.join("ablations.md")).unwrap();
        assert_eq!(md(&sweep), md(&committed), "{name}");
    }
}
