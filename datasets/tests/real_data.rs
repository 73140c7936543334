//! Builders and loaders on the real data in `../shared/data` (skipped, saying so, when the
//! folder is absent).

mod common;

use common::shared_or_skip;
use datasets::arc::build::{build, load_tasks, ArcConfig, ArcProtocol, ArcSource, ArcVersion};
use datasets::arc::{load_dir, load_kaggle};
use datasets::audit::audit_dir;
use datasets::format::{load_dataset, write_dataset};
use datasets::sudoku::build::{read_list, SudokuConfig, SudokuSource};
use datasets::sudoku::solver::{analyse, Invalid, Solutions};
use datasets::sudoku::{parse_board, solves, Shape};

#[test]
fn solver_agrees_with_tdoku_test_puzzles() {
    let Some(data) = shared_or_skip("solver_agrees_with_tdoku_test_puzzles") else {
        return;
    };
    let text = std::fs::read_to_string(data.join("sudoku/test_puzzles")).unwrap();
    let (mut unique, mut none, mut multiple) = (0, 0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split(':').collect();
        let puzzle = parse_board(fields[0], Shape::STANDARD).unwrap();
        let count: u64 = fields[1].parse().unwrap();
        match (count, analyse(&puzzle, Shape::STANDARD)) {
            (0, Err(Invalid::ClueConflict { .. }))
            | (
                0,
                Ok(datasets::sudoku::solver::Analysis {
                    solutions: Solutions::None,
                    ..
                }),
            ) => none += 1,
            (1, Ok(a)) => {
                assert_eq!(a.solutions, Solutions::Unique, "{line}");
                let expected = parse_board(fields[2], Shape::STANDARD).unwrap();
                assert_eq!(a.solution, Some(expected), "{line}");
                assert!(solves(&puzzle, &expected, Shape::STANDARD));
                unique += 1;
            }
            (n, Ok(a)) if n > 1 => {
                assert_eq!(a.solutions, Solutions::Multiple, "{line}");
                multiple += 1;
            }
            (n, other) => panic!("{line}: expected {n} solutions, got {other:?}"),
        }
    }
    assert_eq!((unique, none, multiple), (18, 10, 15));
}

#[test]
fn sudoku_lists_build_split_by_equivalence_class() {
    let Some(data) = shared_or_skip("sudoku_lists_build_split_by_equivalence_class") else {
        return;
    };
    let files = vec![
        data.join("sudoku/puzzles6_forum_hardest_1106"),
        data.join("sudoku/puzzles3_magictour_top1465"),
    ];
    let rated = read_list(&files[0], Shape::STANDARD).unwrap();
    assert_eq!(rated.len(), 375);
    assert!(rated
        .iter()
        .all(|r| solves(&r.puzzle, &r.solution, Shape::STANDARD)));
    let cfg = SudokuConfig {
        shape: Shape::STANDARD,
        source: SudokuSource::Lists(files),
        seed: 3,
        train_size: Some(300),
        test_size: None,
        val_size: None,
        test_fraction: 0.1,
        num_aug: 3,
        min_rating: 0,
    };
    let (dataset, manifest) = datasets::sudoku::build::build(&cfg).unwrap();
    assert_eq!(dataset.train.num_groups(), 300);
    assert_eq!(dataset.train.num_examples(), 300 * 4);
    // Val: 10% of the 300 that train, whole classes of what test left, not augmented.
    let val = dataset.val.as_ref().unwrap();
    assert_eq!((val.num_groups(), val.num_examples()), (30, 30));
    // 1840 distinct puzzles, 10% of the classes held out.
    assert!(
        (150..=220).contains(&dataset.test.num_examples()),
        "{}",
        dataset.test.num_examples()
    );
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("s"), &dataset, manifest, false).unwrap();
    let report = audit_dir(&dir.path().join("s")).unwrap();
    assert!(report.violations().is_empty(), "{:?}", report.violations());
}

#[test]
fn arc_sources_have_the_documented_counts() {
    let Some(data) = shared_or_skip("arc_sources_have_the_documented_counts") else {
        return;
    };
    let counts = |tasks: &[datasets::arc::ArcTask]| {
        (
            tasks.len(),
            tasks.iter().map(|t| t.train.len()).sum::<usize>(),
            tasks.iter().map(|t| t.test.len()).sum::<usize>(),
        )
    };
    assert_eq!(
        counts(&load_dir(&data.join("arc-agi-1/training"), "training").unwrap()),
        (400, 1302, 416)
    );
    assert_eq!(
        counts(&load_dir(&data.join("arc-agi-1/evaluation"), "evaluation").unwrap()),
        (400, 1363, 419)
    );
    assert_eq!(
        counts(&load_dir(&data.join("arc-agi-2/training"), "training2").unwrap()),
        (1000, 3232, 1076)
    );
    assert_eq!(
        counts(&load_dir(&data.join("arc-agi-2/evaluation"), "evaluation2").unwrap()),
        (120, 359, 167)
    );
    assert_eq!(
        counts(&load_dir(&data.join("concept-arc/corpus"), "concept").unwrap()),
        (160, 427, 480)
    );
    let kaggle = data.join("trm-kaggle-combined");
    assert_eq!(
        counts(&load_kaggle(&kaggle, "arc-agi", "evaluation2").unwrap()),
        (120, 358, 172)
    );
    // TRM's Kaggle files hold the same ARC-AGI-1 tasks as the public repository.
    let public = load_dir(&data.join("arc-agi-1/evaluation"), "evaluation").unwrap();
    let from_kaggle = load_kaggle(&kaggle, "arc-agi", "evaluation").unwrap();
    for (a, b) in public.iter().zip(&from_kaggle) {
        assert_eq!((&a.id, &a.train, &a.test), (&b.id, &b.train, &b.test));
    }
}

fn arc1_config(data: &std::path::Path, protocol: ArcProtocol, num_aug: usize) -> ArcConfig {
    ArcConfig {
        version: ArcVersion::Arc1,
        source: ArcSource::PublicDirs {
            root: data.join("arc-agi-1"),
            concept: Some(data.join("concept-arc/corpus")),
        },
        protocol,
        num_aug,
        seed: 42,
        translate: true,
        max_train_tasks: None,
        max_eval_tasks: None,
        val_tasks: None,
    }
}

#[test]
fn arc1_transductive_layout_matches_the_official_builder() {
    let Some(data) = shared_or_skip("arc1_transductive_layout_matches_the_official_builder") else {
        return;
    };
    let (d, m) = build(&arc1_config(&data, ArcProtocol::Transductive, 0)).unwrap();
    // Official: 960 groups, 3,988 training examples per epoch, 419 test pairs of 400 tasks.
    // Here the test pairs of 56 training tasks (10% of 400 + 160) are held out as val; their
    // demonstrations still train, so every task keeps its group.
    assert_eq!(d.train.num_groups(), 960);
    let val = d.val.as_ref().unwrap();
    assert_eq!(val.num_groups(), 56);
    assert_eq!(
        d.train.num_examples() + val.num_examples(),
        1302 + 416 + 427 + 480 + 1363
    );
    assert_eq!(d.test.num_groups(), 400);
    assert_eq!(d.test.num_examples(), 419);
    // Val test pairs that the source repeats (in training, or as a test pair) are declared,
    // so the audit passes.
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("a"), &d, m, false).unwrap();
    let report = audit_dir(&dir.path().join("a")).unwrap();
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    // Each evaluation task's test puzzle shares its identifier with its demonstrations.
    let train_ids: std::collections::HashSet<i32> =
        d.train.puzzle_identifiers.iter().copied().collect();
    assert!(d
        .test
        .puzzle_identifiers
        .iter()
        .all(|id| train_ids.contains(id)));
}

#[test]
fn arc_inductive_protocol_keeps_evaluation_tasks_out_and_audits_clean() {
    let Some(data) =
        shared_or_skip("arc_inductive_protocol_keeps_evaluation_tasks_out_and_audits_clean")
    else {
        return;
    };
    let mut cfg = arc1_config(&data, ArcProtocol::Inductive, 2);
    cfg.max_train_tasks = Some(120);
    cfg.max_eval_tasks = Some(60);
    let (d, m) = build(&cfg).unwrap();
    let train_ids: std::collections::HashSet<i32> =
        d.train.puzzle_identifiers.iter().copied().collect();
    assert!(d
        .test
        .puzzle_identifiers
        .iter()
        .all(|id| !train_ids.contains(id)));
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("a"), &d, m, false).unwrap();
    let report = audit_dir(&dir.path().join("a")).unwrap();
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    let demos = report
        .findings
        .iter()
        .find(|f| f.check == "arc_eval_demonstrations_in_train")
        .unwrap();
    assert_eq!(demos.count, 0);
    assert_eq!(
        load_dataset(&dir.path().join("a"))
            .unwrap()
            .data
            .test
            .num_groups(),
        60
    );
}

#[test]
fn arc1_source_overlaps_are_found_and_declared() {
    let Some(data) = shared_or_skip("arc1_source_overlaps_are_found_and_declared") else {
        return;
    };
    let cfg = arc1_config(&data, ArcProtocol::Transductive, 0);
    let overlaps = datasets::arc::build::source_overlaps(
        &load_tasks(&cfg).unwrap(),
        ArcProtocol::Transductive,
    );
    // Checked independently with NumPy: 9 evaluation test pairs of ARC-AGI-1 are, up to a
    // dihedral transform and colour permutation, a demonstration of their own task or a pair
    // of a training task (070dd51e's test pair is verbatim 40853293's).
    assert_eq!(overlaps.test_pairs.len(), 9, "{:?}", overlaps.test_pairs);
    assert!(overlaps.test_pairs.contains(&"070dd51e#0".to_string()));
    assert_eq!(overlaps.test_inputs.len(), 22);
}

#[test]
fn arc2_public_build_and_kaggle_build_agree_on_shape() {
    let Some(data) = shared_or_skip("arc2_public_build_and_kaggle_build_agree_on_shape") else {
        return;
    };
    let public = ArcConfig {
        version: ArcVersion::Arc2,
        source: ArcSource::PublicDirs {
            root: data.join("arc-agi-2"),
            concept: None,
        },
        protocol: ArcProtocol::Transductive,
        num_aug: 0,
        seed: 0,
        translate: false,
        max_train_tasks: None,
        max_eval_tasks: None,
        val_tasks: Some(100),
    };
    let (d, _) = build(&public).unwrap();
    let val = d.val.as_ref().unwrap();
    assert_eq!(val.num_groups(), 100);
    assert_eq!(
        (
            d.train.num_groups(),
            d.train.num_examples() + val.num_examples()
        ),
        (1120, 3232 + 1076 + 359)
    );
    assert_eq!(d.test.num_examples(), 167);
    let kaggle = ArcConfig {
        source: ArcSource::Kaggle {
            dir: data.join("trm-kaggle-combined"),
            concept: true,
        },
        ..public
    };
    let (k, _) = build(&kaggle).unwrap();
    assert_eq!(k.train.num_groups(), 1000 + 160 + 120);
    assert_eq!(k.val.as_ref().unwrap().num_groups(), 100);
    assert_eq!(k.test.num_examples(), 172);
}
