//! The audit catches planted leaks of every kind it promises to check, and passes clean data.

mod common;

use common::arc_fixture;
use datasets::arc::augment::ArcAugmentation;
use datasets::arc::build::ArcProtocol;
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
use rand::SeedableRng;
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
        val_size: Some(6),
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

/// 20 + 20 generated 10x10 mazes with 5 for val, with or without the dihedral versions.
fn maze_cfg(augment: bool) -> MazeConfig {
    MazeConfig {
        source: MazeSource::Generator(MazeSpec {
            side: 10,
            min_path_moves: 14,
            ..MazeSpec::default()
        }),
        seed: 2,
        train_size: Some(20),
        test_size: Some(20),
        val_size: Some(5),
        augment,
    }
}

#[test]
fn maze_layout_reuse_is_caught() {
    let cfg = maze_cfg(true);
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

fn arc(root: &Path, protocol: ArcProtocol) -> (Dataset, Manifest) {
    datasets::arc::build::build(&common::arc_cfg(root, protocol, Some(2))).unwrap()
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

/// Copies example `e` of `from` (transformed by `f`) into `to` as a group of its own.
fn plant(
    to: &mut datasets::format::Split,
    from: &datasets::format::Split,
    e: usize,
    id: i32,
    f: impl Fn(&[u8]) -> Vec<u8>,
) {
    let (input, label) = (f(from.input(e)), f(from.label(e)));
    to.add_puzzle(id, [(&input[..], &label[..])]);
    to.close_group();
}

#[test]
fn sudoku_val_leaks_are_caught_like_test_leaks() {
    for side in [9, 4] {
        let shape = Shape::from_side(side).unwrap();
        let (clean, manifest) = sudoku(shape);
        let val = clean.val.as_ref().expect("a val split");
        assert!(val.num_examples() > 0);
        let report = audited(&clean, &manifest);
        assert!(
            failed(&report).is_empty(),
            "side {side}: {:?}",
            report.violations()
        );
        assert_eq!(
            report
                .splits
                .iter()
                .map(|s| s.split.as_str())
                .collect::<Vec<_>>(),
            ["train", "test", "val"]
        );
        assert_eq!(report.splits[2].examples, val.num_examples());

        // A val puzzle in training, verbatim.
        let mut exact = clean.clone();
        plant(&mut exact.train, val, 0, 0, |t| t.to_vec());
        assert_eq!(
            failed(&audited(&exact, &manifest)),
            [
                "exact_val_inputs_in_train",
                "exact_val_pairs_in_train",
                "sudoku_val_equivalent_to_train"
            ],
            "side {side}"
        );

        // A transform of a val puzzle in training: only the equivalence check sees it.
        let t = SudokuTransform::random(&mut rand_chacha::ChaCha8Rng::seed_from_u64(2), shape);
        let moved = |tokens: &[u8]| to_tokens(&t.apply(&from_tokens(tokens)), shape).to_vec();
        assert_ne!(moved(val.input(0)), val.input(0), "side {side}");
        let mut transformed = clean.clone();
        plant(&mut transformed.train, val, 0, 0, moved);
        assert_eq!(
            failed(&audited(&transformed, &manifest)),
            ["sudoku_val_equivalent_to_train"],
            "side {side}"
        );

        // A val puzzle that is also a test puzzle.
        let mut shared = clean.clone();
        plant(&mut shared.test, val, 0, 0, |t| t.to_vec());
        assert_eq!(
            failed(&audited(&shared, &manifest)),
            [
                "exact_val_inputs_in_test",
                "exact_val_pairs_in_test",
                "sudoku_val_equivalent_to_test"
            ],
            "side {side}"
        );
    }
}

#[test]
fn maze_val_layout_reuse_is_caught() {
    let cfg = maze_cfg(false);
    let (clean, manifest) = datasets::maze::build::build(&cfg).unwrap();
    let val = clean.val.as_ref().unwrap();
    assert!(failed(&audited(&clean, &manifest)).is_empty());
    let rotate = |t: &[u8]| Grid::new(10, 10, t.to_vec()).dihedral(5).cells;
    let mut leaked = clean.clone();
    plant(&mut leaked.train, val, 1, 0, rotate);
    assert_eq!(
        failed(&audited(&leaked, &manifest)),
        ["maze_val_layout_in_train"]
    );
    let mut shared = clean.clone();
    plant(&mut shared.test, val, 1, 0, rotate);
    assert_eq!(
        failed(&audited(&shared, &manifest)),
        ["maze_val_layout_in_test"]
    );
}

#[test]
fn arc_val_leaks_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    arc_fixture(tmp.path());
    let (clean, manifest) = arc(tmp.path(), ArcProtocol::Transductive);
    let val = clean.val.as_ref().unwrap();
    let report = audited(&clean, &manifest);
    assert!(failed(&report).is_empty(), "{:?}", report.violations());
    let count = |check: &str| {
        report
            .findings
            .iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("no {check}"))
            .count
    };
    // By design under the transductive protocol, as for the evaluation tasks.
    assert_eq!(count("arc_val_demonstrations_in_train"), 2 * 4 * 2);
    assert_eq!(count("arc_val_identifiers_in_train"), val.num_puzzles());

    // A val pair trained on under another augmentation and offset.
    let aug = ArcAugmentation::random(&mut rand_chacha::ChaCha8Rng::seed_from_u64(6));
    let (i, o) = (val.input(0).to_vec(), val.label(0).to_vec());
    let (gi, go) = (
        aug.apply(&decode(&i).unwrap()),
        aug.apply(&decode(&o).unwrap()),
    );
    let (ei, eo) = (encode(&gi, 1, 4), encode(&go, 1, 4));
    let mut leaked = clean.clone();
    leaked.train.add_puzzle(1, [(&ei[..], &eo[..])]);
    leaked.train.close_group();
    assert_eq!(
        failed(&audited(&leaked, &manifest)),
        ["arc_val_inputs_in_train", "arc_val_outputs_in_train"]
    );

    // A val pair that is also a test pair.
    let mut shared = clean.clone();
    let id = clean.test.puzzle_identifiers[0];
    shared.test.add_puzzle(id, [(&i[..], &o[..])]);
    shared.test.close_group();
    assert_eq!(
        failed(&audited(&shared, &manifest)),
        ["arc_val_pairs_in_test"]
    );

    // Under the inductive protocol no data of a val task may be trained on.
    let (inductive, manifest) = arc(tmp.path(), ArcProtocol::Inductive);
    assert!(failed(&audited(&inductive, &manifest)).is_empty());
    let mut leaked = inductive.clone();
    let val_id = inductive.val.as_ref().unwrap().puzzle_identifiers[0];
    let demo = encode(&Grid::filled(2, 3, 5), 0, 0);
    leaked.train.add_puzzle(val_id, [(&demo[..], &demo[..])]);
    leaked.train.close_group();
    assert_eq!(
        failed(&audited(&leaked, &manifest)),
        [
            "arc_val_demonstrations_in_train",
            "arc_val_identifiers_in_train"
        ]
    );
}
