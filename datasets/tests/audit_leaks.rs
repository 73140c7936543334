//! The audit catches planted leaks of every kind it promises to check, and passes clean data.

use datasets::arc::augment::ArcAugmentation;
use datasets::arc::build::{ArcConfig, ArcProtocol, ArcSource, ArcVersion};
use datasets::arc::encode::{decode, encode};
use datasets::audit::{audit_dir, AuditReport};
use datasets::format::{write_dataset, Dataset};
use datasets::grid::Grid;
use datasets::manifest::Manifest;
use datasets::maze::build::{MazeConfig, MazeSource};
use datasets::maze::generate::MazeSpec;
use datasets::sudoku::augment::SudokuTransform;
use datasets::sudoku::build::{SudokuConfig, SudokuSource};
use datasets::sudoku::{from_tokens, to_tokens, Shape};
use rand::{Rng, SeedableRng};
use std::path::Path;

fn audited(dataset: &Dataset, manifest: &Manifest) -> AuditReport {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    write_dataset(&dir, dataset, manifest.clone(), false).unwrap();
    audit_dir(&dir).unwrap()
}

fn failed(report: &AuditReport) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.violation)
        .map(|f| f.check.clone())
        .collect()
}

fn sudoku(shape: Shape) -> (Dataset, Manifest) {
    let cfg = SudokuConfig {
        shape,
        source: SudokuSource::Generator { min_rating: 0 },
        seed: 5,
        train_size: Some(30),
        test_size: Some(30),
        test_fraction: 0.5,
        num_aug: 2,
        min_rating: 0,
    };
    datasets::sudoku::build::build(&cfg).unwrap()
}

#[test]
fn sudoku_leaks_are_caught_for_every_shape() {
    for side in [9, 6, 4] {
        let shape = Shape::from_side(side).unwrap();
        let (clean, manifest) = sudoku(shape);
        assert_eq!(clean.vocab_size, side + 2);
        assert_eq!(clean.test.input(0).len(), side * side);
        let task = if side == 9 {
            "sudoku-extreme"
        } else {
            "sudoku-small"
        };
        assert_eq!(manifest.task, task);
        assert!(
            failed(&audited(&clean, &manifest)).is_empty(),
            "side {side}"
        );

        let mut exact = clean.clone();
        let (input, label) = (exact.test.input(3).to_vec(), exact.test.label(3).to_vec());
        exact.train.add_puzzle(0, [(&input[..], &label[..])]);
        exact.train.close_group();
        let f = failed(&audited(&exact, &manifest));
        assert!(
            f.contains(&"exact_test_pairs_in_train".into())
                && f.contains(&"sudoku_test_equivalent_to_train".into()),
            "side {side}: {f:?}"
        );

        // A transform of a test puzzle planted in training: only the equivalence check sees it.
        let mut transformed = clean.clone();
        let t = SudokuTransform::random(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1), shape);
        let puzzle = to_tokens(&t.apply(&from_tokens(clean.test.input(7))), shape);
        let solution = to_tokens(&t.apply(&from_tokens(clean.test.label(7))), shape);
        assert_ne!(
            &puzzle[..],
            clean.test.input(7),
            "side {side}: the transform moved cells"
        );
        transformed
            .train
            .add_puzzle(0, [(&puzzle[..], &solution[..])]);
        transformed.train.close_group();
        assert_eq!(
            failed(&audited(&transformed, &manifest)),
            vec!["sudoku_test_equivalent_to_train".to_string()],
            "side {side}"
        );
    }
}

#[test]
fn maze_layout_reuse_is_caught() {
    let cfg = MazeConfig {
        source: MazeSource::Generator(MazeSpec {
            side: 10,
            min_path_moves: 14,
            ..MazeSpec::default()
        }),
        seed: 2,
        train_size: Some(20),
        test_size: Some(20),
        augment: true,
    };
    let (clean, manifest) = datasets::maze::build::build(&cfg).unwrap();
    assert_eq!(clean.train.num_examples(), 20 * 8);
    assert!(failed(&audited(&clean, &manifest)).is_empty());
    let mut leaked = clean.clone();
    let rotate = |t: &[u8]| Grid::new(10, 10, t.to_vec()).dihedral(3).cells;
    let (input, label) = (rotate(clean.test.input(4)), rotate(clean.test.label(4)));
    leaked.train.add_puzzle(0, [(&input[..], &label[..])]);
    leaked.train.close_group();
    assert_eq!(
        failed(&audited(&leaked, &manifest)),
        vec!["maze_test_layout_in_train".to_string()]
    );
}

/// Writes small ARC-format task folders: `training/` and `evaluation/`.
fn arc_fixture(root: &Path) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for (set, n) in [("training", 5), ("evaluation", 4)] {
        std::fs::create_dir_all(root.join(set)).unwrap();
        for t in 0..n {
            let mut pair = || {
                let (h, w) = (rng.random_range(2..6), rng.random_range(2..6));
                let input: Vec<Vec<u8>> = (0..h)
                    .map(|_| (0..w).map(|_| rng.random_range(0..10)).collect())
                    .collect();
                let output: Vec<Vec<u8>> = input.iter().rev().cloned().collect();
                serde_json::json!({ "input": input, "output": output })
            };
            let task = serde_json::json!({ "train": [pair(), pair()], "test": [pair()] });
            std::fs::write(
                root.join(set).join(format!("{set}{t:03}.json")),
                task.to_string(),
            )
            .unwrap();
        }
    }
}

fn arc(root: &Path, protocol: ArcProtocol) -> (Dataset, Manifest) {
    let cfg = ArcConfig {
        version: ArcVersion::Arc1,
        source: ArcSource::PublicDirs {
            root: root.to_path_buf(),
            concept: None,
        },
        protocol,
        num_aug: 3,
        seed: 9,
        translate: true,
        max_train_tasks: None,
        max_eval_tasks: None,
    };
    datasets::arc::build::build(&cfg).unwrap()
}

#[test]
fn arc_leaks_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    arc_fixture(tmp.path());
    let (clean, manifest) = arc(tmp.path(), ArcProtocol::Transductive);
    let report = audited(&clean, &manifest);
    assert!(failed(&report).is_empty(), "{:?}", report.violations());
    let demos = report
        .findings
        .iter()
        .find(|f| f.check == "arc_eval_demonstrations_in_train")
        .unwrap();
    assert_eq!(
        demos.count,
        4 * 4 * 2,
        "4 tasks x 4 versions x 2 demonstrations"
    );

    // A test pair copied verbatim into training.
    let mut exact = clean.clone();
    let (i, o) = (clean.test.input(0).to_vec(), clean.test.label(0).to_vec());
    exact.train.add_puzzle(1, [(&i[..], &o[..])]);
    exact.train.close_group();
    let f = failed(&audited(&exact, &manifest));
    assert!(
        f.contains(&"arc_test_outputs_in_train".into())
            && f.contains(&"arc_test_inputs_in_train".into()),
        "{f:?}"
    );

    // The same pair under another augmentation and offset: only the group-aware checks see it.
    let mut augmented = clean.clone();
    let aug = ArcAugmentation::random(&mut rand_chacha::ChaCha8Rng::seed_from_u64(4));
    let (gi, go) = (
        aug.apply(&decode(&i).unwrap()),
        aug.apply(&decode(&o).unwrap()),
    );
    let (ei, eo) = (encode(&gi, 3, 2), encode(&go, 3, 2));
    augmented.train.add_puzzle(1, [(&ei[..], &eo[..])]);
    augmented.train.close_group();
    let f = failed(&audited(&augmented, &manifest));
    assert_eq!(
        f,
        vec![
            "arc_test_inputs_in_train".to_string(),
            "arc_test_outputs_in_train".to_string()
        ]
    );

    // Only the test input, with some other output.
    let mut input_only = clean.clone();
    let other = encode(&Grid::filled(1, 1, 3), 0, 0);
    input_only.train.add_puzzle(1, [(&i[..], &other[..])]);
    input_only.train.close_group();
    assert_eq!(
        failed(&audited(&input_only, &manifest)),
        vec!["arc_test_inputs_in_train".to_string()]
    );
}

#[test]
fn arc_inductive_protocol_forbids_demonstrations_and_identifiers() {
    let tmp = tempfile::tempdir().unwrap();
    arc_fixture(tmp.path());
    let (clean, manifest) = arc(tmp.path(), ArcProtocol::Inductive);
    assert!(failed(&audited(&clean, &manifest)).is_empty());
    // An evaluation task's demonstration trained under its test identifier.
    let mut leaked = clean.clone();
    let test_id = clean.test.puzzle_identifiers[0];
    let demo = encode(&Grid::filled(2, 2, 5), 0, 0);
    leaked.train.add_puzzle(test_id, [(&demo[..], &demo[..])]);
    leaked.train.close_group();
    let f = failed(&audited(&leaked, &manifest));
    assert_eq!(
        f,
        vec![
            "arc_eval_demonstrations_in_train".to_string(),
            "arc_eval_identifiers_in_train".to_string()
        ]
    );
}

#[test]
fn files_changed_after_the_build_break_the_manifest() {
    let (clean, manifest) = sudoku(Shape::STANDARD);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    write_dataset(&dir, &clean, manifest, false).unwrap();
    let labels = dir.join("train/all__labels.npy");
    let mut bytes = std::fs::read(&labels).unwrap();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == 2 { 3 } else { 2 };
    std::fs::write(&labels, bytes).unwrap();
    let report = audit_dir(&dir).unwrap();
    assert_eq!(
        report.manifest_problems.len(),
        1,
        "{:?}",
        report.manifest_problems
    );
    assert!(report.manifest_problems[0].contains("train/all__labels.npy"));
    assert!(!report.violations().is_empty());
}
