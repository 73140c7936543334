//! The val split of every builder: carved from the training side (never from test), as
//! disjoint from training and test as test is from training, deterministic for a seed, and
//! written and loaded in the official layout beside train/ and test/.

mod common;

use common::{arc_cfg, arc_fixture};
use datasets::arc::augment::{canonical_key, ArcAugmentation};
use datasets::arc::build::ArcProtocol;
use datasets::arc::encode::decode;
use datasets::format::{load_dataset, write_dataset, Dataset, Split};
use datasets::grid::Grid;
use datasets::maze::build::{MazeConfig, MazeSource};
use datasets::maze::generate::{generate as generate_mazes, wall_layout_key, MazeSpec};
use datasets::sudoku::augment::SudokuTransform;
use datasets::sudoku::build::{SudokuConfig, SudokuSource};
use datasets::sudoku::canonical::canonical_form;
use datasets::sudoku::generate::{generate as generate_sudoku, RatedPuzzle};
use datasets::sudoku::{board_to_string, from_tokens, Board, Shape};
use rand::SeedableRng;
use std::collections::HashSet;
use std::path::Path;

fn err_of<T>(r: datasets::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn extra<'a>(d: &'a Dataset, name: &str) -> Option<&'a [u8]> {
    d.extra_files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| &b[..])
}

/// Wall layouts (up to symmetry) of a maze split.
fn layouts(s: &Split) -> HashSet<Vec<u8>> {
    (0..s.num_examples())
        .map(|e| wall_layout_key(s.input(e)))
        .collect()
}

/// Canonical forms (equivalence classes) of a Sudoku split's puzzles.
fn classes(s: &Split, shape: Shape) -> HashSet<Board> {
    (0..s.num_examples())
        .map(|e| canonical_form(&from_tokens(s.input(e)), shape))
        .collect()
}

// ---------------------------------------------------------------- maze

fn maze_generator(val_size: Option<usize>, seed: u64) -> MazeConfig {
    MazeConfig {
        source: MazeSource::Generator(MazeSpec {
            side: 8,
            min_path_moves: 10,
            ..MazeSpec::default()
        }),
        seed,
        train_size: Some(30),
        test_size: Some(10),
        val_size,
        augment: true,
    }
}

#[test]
fn maze_generator_val_is_more_mazes_with_layouts_of_their_own() {
    let build = datasets::maze::build::build;
    let (d, m) = build(&maze_generator(Some(6), 1)).unwrap();
    let val = d.val.as_ref().expect("a val split");
    // Training keeps its size (and its augmentation); val is not augmented.
    assert_eq!((d.train.num_groups(), d.train.num_examples()), (30, 240));
    assert_eq!((val.num_groups(), val.num_examples()), (6, 6));
    assert_eq!(d.test.num_examples(), 10);
    let val_layouts = layouts(val);
    assert_eq!(val_layouts.len(), 6);
    assert!(val_layouts.is_disjoint(&layouts(&d.train)));
    assert!(val_layouts.is_disjoint(&layouts(&d.test)));
    assert_eq!(m.params["val_size"], 6);
    assert_eq!(m.params["val_mazes"], 6);
    let csv = String::from_utf8(extra(&d, "puzzles_val.csv").unwrap().to_vec()).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6);

    // Deterministic for a seed, another for another seed; train and test do not depend on it.
    let (again, _) = build(&maze_generator(Some(6), 1)).unwrap();
    assert_eq!(again.val, d.val);
    let (other, _) = build(&maze_generator(Some(6), 2)).unwrap();
    assert_ne!(other.val, d.val);
    let (fewer, _) = build(&maze_generator(Some(3), 1)).unwrap();
    assert_eq!((&fewer.train, &fewer.test), (&d.train, &d.test));
    // Default: 10% of the training mazes.
    let (default, _) = build(&maze_generator(None, 1)).unwrap();
    assert_eq!(default.val.unwrap().num_examples(), 3);

    // 0: no val split; train and test are those of any val size (a build without val).
    let (none, m) = build(&maze_generator(Some(0), 1)).unwrap();
    assert!(none.val.is_none() && extra(&none, "puzzles_val.csv").is_none());
    assert_eq!((&none.train, &none.test), (&d.train, &d.test));
    assert_eq!(m.params["val_size"], 0);
    assert_eq!(m.params["val_mazes"], 0);

    for (size, needle) in [(30, "val-size = 30"), (31, "val-size = 31")] {
        let e = err_of(build(&maze_generator(Some(size), 1)));
        assert!(e.contains(needle), "{e}");
    }
}

fn maze_csv(path: &Path, rows: &[(Vec<u8>, Vec<u8>)]) {
    let flat = |t: &[u8]| datasets::maze::render(t).replace('\n', "");
    let text = datasets::csvio::write(
        rows.iter()
            .map(|(i, l)| ["g".to_string(), flat(i), flat(l), "0".to_string()]),
    );
    std::fs::write(path, text).unwrap();
}

#[test]
fn maze_official_val_is_a_sample_of_train_rows_with_layouts_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = MazeSpec {
        side: 8,
        min_path_moves: 10,
        ..MazeSpec::default()
    };
    let mazes = generate_mazes(26, &spec, 3).unwrap();
    // train.csv: 20 mazes, each twice (the second copy rotated: the same layout up to
    // symmetry). A sampled row may stay in val only if its twin was sampled too.
    let rotate = |t: &[u8]| Grid::new(8, 8, t.to_vec()).dihedral(1).cells;
    let mut rows = Vec::new();
    for m in &mazes[..20] {
        rows.push((m.input.clone(), m.label.clone()));
        rows.push((rotate(&m.input), rotate(&m.label)));
    }
    maze_csv(&tmp.path().join("train.csv"), &rows);
    let test_rows: Vec<_> = mazes[20..]
        .iter()
        .map(|m| (m.input.clone(), m.label.clone()))
        .collect();
    maze_csv(&tmp.path().join("test.csv"), &test_rows);
    let cfg = |val_size| MazeConfig {
        source: MazeSource::OfficialCsv(tmp.path().to_path_buf()),
        seed: 4,
        train_size: None,
        test_size: None,
        val_size,
        augment: true,
    };
    let (d, m) = datasets::maze::build::build(&cfg(Some(20))).unwrap();
    let val = d.val.as_ref().expect("a val split");
    let n_val = val.num_examples();
    assert!(n_val > 0 && n_val < 20, "{n_val} val mazes");
    // Training shrinks by exactly the val rows (augmented x8); rows whose twin stayed in
    // training went back.
    assert_eq!(d.train.num_groups() + n_val, 40);
    assert_eq!(d.train.num_examples(), 8 * d.train.num_groups());
    assert_eq!(val.num_groups(), n_val);
    assert_eq!(d.test.num_examples(), 6);
    assert_eq!(m.params["val_mazes"], n_val);
    assert!(layouts(val).is_disjoint(&layouts(&d.train)));
    assert_eq!(2 * layouts(val).len(), n_val, "val holds whole twin pairs");
    let train_csv: HashSet<&[u8]> = rows.iter().map(|(i, _)| &i[..]).collect();
    assert!((0..n_val).all(|e| train_csv.contains(val.input(e))));

    let (again, _) = datasets::maze::build::build(&cfg(Some(20))).unwrap();
    assert_eq!(again.val, d.val);
    // Default: 10% of the 40 training rows, those whose twin stayed given back.
    let (default, _) = datasets::maze::build::build(&cfg(None)).unwrap();
    assert!(default.val.map_or(0, |v| v.num_examples()) <= 4);
    // 0: no val split; training is every train.csv row, in order (no carving).
    let plain = MazeConfig {
        augment: false,
        ..cfg(Some(0))
    };
    let (none, m) = datasets::maze::build::build(&plain).unwrap();
    assert!(none.val.is_none() && extra(&none, "puzzles_val.csv").is_none());
    assert_eq!(m.params["val_size"], 0);
    let trained: Vec<&[u8]> = (0..none.train.num_examples())
        .map(|e| none.train.input(e))
        .collect();
    assert_eq!(
        trained,
        rows.iter().map(|(i, _)| &i[..]).collect::<Vec<_>>()
    );
    assert_eq!(none.test, d.test);
    let (augmented, _) = datasets::maze::build::build(&cfg(Some(0))).unwrap();
    assert!(augmented.val.is_none());
    assert_eq!(
        (augmented.train.num_groups(), augmented.train.num_examples()),
        (40, 320)
    );
    let e = err_of(datasets::maze::build::build(&cfg(Some(40))));
    assert!(e.contains("smaller than the 40"), "{e}");
}

// ---------------------------------------------------------------- Sudoku

fn sudoku_cfg(shape: Shape, source: SudokuSource, val_size: Option<usize>) -> SudokuConfig {
    SudokuConfig {
        shape,
        source,
        seed: 7,
        train_size: Some(40),
        test_size: Some(10),
        val_size,
        test_fraction: 0.2,
        num_aug: 2,
        min_rating: 0,
    }
}

#[test]
fn sudoku_generator_val_is_whole_classes_apart_from_train_and_test() {
    let build = datasets::sudoku::build::build;
    for side in [9, 4] {
        let shape = Shape::from_side(side).unwrap();
        let generator = SudokuSource::Generator { min_rating: 0 };
        let (d, m) = build(&sudoku_cfg(shape, generator.clone(), Some(8))).unwrap();
        let val = d.val.as_ref().expect("a val split");
        let n_val = val.num_examples();
        assert!(n_val > 0 && n_val <= 8, "side {side}: {n_val}");
        // Not augmented: one puzzle, one example per group, as test.
        assert_eq!((val.num_groups(), val.num_puzzles()), (n_val, n_val));
        let val_classes = classes(val, shape);
        assert!(
            val_classes.is_disjoint(&classes(&d.train, shape)),
            "side {side}"
        );
        assert!(
            val_classes.is_disjoint(&classes(&d.test, shape)),
            "side {side}"
        );
        assert_eq!(m.params["val_puzzles"], n_val);
        // Training keeps its size (4x4's few, large classes are topped up with more draws).
        assert_eq!(d.train.num_groups(), 40, "side {side}");
        assert_eq!(d.train.num_examples(), 40 * 3, "side {side}");
        if side == 9 {
            // 9x9 classes are single puzzles: exact sizes everywhere.
            assert_eq!((n_val, d.test.num_groups()), (8, 10));
        }
        let (again, _) = build(&sudoku_cfg(shape, generator.clone(), Some(8))).unwrap();
        assert_eq!(again.val, d.val, "side {side}");
        assert!(extra(&d, "puzzles_val.csv").is_some());
        // 0: no val split; training keeps its size, test its own.
        let (none, m) = build(&sudoku_cfg(shape, generator.clone(), Some(0))).unwrap();
        assert!(none.val.is_none() && extra(&none, "puzzles_val.csv").is_none());
        assert_eq!(m.params["val_size"], 0, "side {side}");
        assert_eq!(m.params["val_puzzles"], 0, "side {side}");
        assert_eq!(none.train.num_groups(), 40, "side {side}");
        assert!(
            classes(&none.train, shape).is_disjoint(&classes(&none.test, shape)),
            "side {side}"
        );
        let e = err_of(build(&sudoku_cfg(shape, generator, Some(40))));
        assert!(e.contains("val-size = 40"), "{e}");
    }
}

#[test]
fn small_sudoku_at_the_cpu_preset_sizes_trains_on_all_its_puzzles() {
    // 4x4 minimal puzzles fall in 36 classes, the largest a tenth of them: val's and test's
    // classes overshoot their sizes, and the training side is topped up with more draws.
    let shape = Shape::from_side(4).unwrap();
    let cfg = SudokuConfig {
        seed: 0,
        train_size: Some(1000),
        test_size: Some(500),
        num_aug: 0,
        ..sudoku_cfg(shape, SudokuSource::Generator { min_rating: 0 }, Some(500))
    };
    let (d, _) = datasets::sudoku::build::build(&cfg).unwrap();
    let val = d.val.as_ref().unwrap();
    assert_eq!((d.train.num_groups(), val.num_groups()), (1000, 500));
    assert!(d.test.num_groups() <= 500);
    let val_classes = classes(val, shape);
    assert!(val_classes.is_disjoint(&classes(&d.train, shape)));
    assert!(val_classes.is_disjoint(&classes(&d.test, shape)));
    assert!(classes(&d.train, shape).is_disjoint(&classes(&d.test, shape)));
}

fn puzzle_csv(path: &Path, puzzles: &[RatedPuzzle]) {
    let s = |b: &Board| board_to_string(b, Shape::STANDARD);
    let text = datasets::csvio::write(puzzles.iter().map(|p| {
        [
            "g".to_string(),
            s(&p.puzzle),
            s(&p.solution),
            p.rating.to_string(),
        ]
    }));
    std::fs::write(path, text).unwrap();
}

/// `p` under a random transform of the Sudoku group: another puzzle of the same class.
fn transformed(p: &RatedPuzzle, seed: u64) -> RatedPuzzle {
    let t = SudokuTransform::random(
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        Shape::STANDARD,
    );
    RatedPuzzle {
        puzzle: t.apply(&p.puzzle),
        solution: t.apply(&p.solution),
        ..p.clone()
    }
}

#[test]
fn sudoku_official_val_carves_whole_training_classes_none_of_test() {
    let tmp = tempfile::tempdir().unwrap();
    let puzzles = generate_sudoku(30, 0, 5, 100, Shape::STANDARD).unwrap();
    // train.csv: 24 puzzles, transforms of 4 of them (classes of two), and a transform of a
    // test puzzle (a class the official split shares with test: it must stay in training).
    let mut train: Vec<RatedPuzzle> = puzzles[..24].to_vec();
    train.extend((0..4).map(|i| transformed(&puzzles[i], i as u64)));
    let shared_with_test = transformed(&puzzles[24], 99);
    train.push(shared_with_test.clone());
    puzzle_csv(&tmp.path().join("train.csv"), &train);
    puzzle_csv(&tmp.path().join("test.csv"), &puzzles[24..]);
    let source = SudokuSource::OfficialCsv(tmp.path().to_path_buf());
    let cfg = |val_size| SudokuConfig {
        train_size: None,
        test_size: None,
        num_aug: 1,
        ..sudoku_cfg(Shape::STANDARD, source.clone(), val_size)
    };
    let build = datasets::sudoku::build::build;
    let (d, _) = build(&cfg(Some(6))).unwrap();
    let val = d.val.as_ref().expect("a val split");
    assert_eq!(val.num_examples(), 6);
    // Training shrinks by the val classes (one puzzle more when a class of two overshoots).
    assert!(
        (22..=23).contains(&d.train.num_groups()),
        "{} training puzzles",
        d.train.num_groups()
    );
    assert_eq!(d.test.num_examples(), 6);
    let shape = Shape::STANDARD;
    let val_classes = classes(val, shape);
    assert!(val_classes.is_disjoint(&classes(&d.train, shape)));
    assert!(val_classes.is_disjoint(&classes(&d.test, shape)));
    assert!(classes(&d.train, shape).contains(&canonical_form(&shared_with_test.puzzle, shape)));
    let (again, _) = build(&cfg(Some(6))).unwrap();
    assert_eq!(again.val, d.val);
    // Default: 10% of the 29 training rows.
    let (default, _) = build(&cfg(None)).unwrap();
    assert_eq!(default.val.unwrap().num_examples(), 2);
    // 0: no val split; training is every train.csv row, in order (no carving).
    let plain = SudokuConfig {
        num_aug: 0,
        ..cfg(Some(0))
    };
    let (none, m) = build(&plain).unwrap();
    assert!(none.val.is_none() && extra(&none, "puzzles_val.csv").is_none());
    assert_eq!(m.params["val_size"], 0);
    let trained: Vec<Board> = (0..none.train.num_examples())
        .map(|e| from_tokens(none.train.input(e)))
        .collect();
    assert_eq!(trained, train.iter().map(|p| p.puzzle).collect::<Vec<_>>());
    assert_eq!(none.test, d.test);
    let e = err_of(build(&cfg(Some(29))));
    assert!(e.contains("smaller than the 29"), "{e}");
}

#[test]
fn sudoku_list_val_is_carved_by_class_from_what_test_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let puzzles = generate_sudoku(40, 0, 8, 100, Shape::STANDARD).unwrap();
    let mut pool = puzzles.clone();
    pool.extend((0..4).map(|i| transformed(&puzzles[i], 50 + i as u64)));
    let list = tmp.path().join("list");
    let text: String = pool
        .iter()
        .map(|p| board_to_string(&p.puzzle, Shape::STANDARD) + "\n")
        .collect();
    std::fs::write(&list, text).unwrap();
    let cfg = SudokuConfig {
        train_size: None,
        test_size: None,
        ..sudoku_cfg(Shape::STANDARD, SudokuSource::Lists(vec![list]), None)
    };
    let (d, _) = datasets::sudoku::build::build(&cfg).unwrap();
    let val = d.val.as_ref().expect("a val split");
    let (n_train, n_val, n_test) = (
        d.train.num_groups(),
        val.num_examples(),
        d.test.num_examples(),
    );
    // Default: 10% of the puzzles test left; at most one puzzle of a class of two dropped.
    assert_eq!(n_val, (44 - n_test) / 10);
    assert!((43..=44).contains(&(n_train + n_val + n_test)));
    let shape = Shape::STANDARD;
    let val_classes = classes(val, shape);
    assert!(val_classes.is_disjoint(&classes(&d.train, shape)));
    assert!(val_classes.is_disjoint(&classes(&d.test, shape)));

    // 0: no val split; training is every puzzle test left (the same classes as above).
    let (none, m) = datasets::sudoku::build::build(&SudokuConfig {
        val_size: Some(0),
        ..cfg
    })
    .unwrap();
    assert!(none.val.is_none() && extra(&none, "puzzles_val.csv").is_none());
    assert_eq!(m.params["val_size"], 0);
    assert_eq!(none.train.num_groups() + none.test.num_examples(), 44);
    assert_eq!(classes(&none.test, shape), classes(&d.test, shape));
    let all: HashSet<Board> = pool
        .iter()
        .map(|p| canonical_form(&p.puzzle, shape))
        .collect();
    let trained = classes(&none.train, shape);
    assert_eq!(&trained | &classes(&none.test, shape), all);
    assert!(trained.is_disjoint(&classes(&none.test, shape)));
}

// ---------------------------------------------------------------- ARC

/// Canonical (input, output) keys of a split's examples.
fn pair_keys(s: &Split) -> HashSet<[u8; 16]> {
    (0..s.num_examples())
        .map(|e| {
            let (i, o) = (decode(s.input(e)).unwrap(), decode(s.label(e)).unwrap());
            canonical_key(&[&i, &o])
        })
        .collect()
}

#[test]
fn arc_val_tasks_hold_out_their_test_pairs_in_every_version() {
    let tmp = tempfile::tempdir().unwrap();
    arc_fixture(tmp.path());
    let build = datasets::arc::build::build;
    for protocol in [ArcProtocol::Transductive, ArcProtocol::Inductive] {
        let (d, m) = build(&arc_cfg(tmp.path(), protocol, Some(2))).unwrap();
        let val = d.val.as_ref().expect("a val split");
        let tasks: serde_json::Value =
            serde_json::from_slice(extra(&d, "tasks.json").unwrap()).unwrap();
        let val_tasks: Vec<String> = serde_json::from_value(tasks["val_groups"].clone()).unwrap();
        assert_eq!(val_tasks.len(), 2);
        assert!(val_tasks.iter().all(|t| t.starts_with("training")));
        assert_eq!(m.params["val_task_ids"], tasks["val_groups"]);
        let task_of = |id: i32| {
            ArcAugmentation::parse_name(&d.identifiers[id as usize])
                .unwrap()
                .0
        };
        // One group per val task, holding every version (4) of its one test pair.
        assert_eq!(val.num_groups(), 2);
        assert_eq!((val.num_puzzles(), val.num_examples()), (8, 8));
        assert!(val
            .puzzle_identifiers
            .iter()
            .all(|&id| val_tasks.contains(&task_of(id))));
        // No val pair is trained on (up to the augmentation group), none is a test pair.
        let val_pairs = pair_keys(val);
        assert!(val_pairs.is_disjoint(&pair_keys(&d.train)), "{protocol:?}");
        assert!(val_pairs.is_disjoint(&pair_keys(&d.test)), "{protocol:?}");
        let train_ids: HashSet<i32> = d.train.puzzle_identifiers.iter().copied().collect();
        let trained_on_val_tasks = d
            .train
            .puzzle_identifiers
            .iter()
            .filter(|&&id| val_tasks.contains(&task_of(id)))
            .count();
        match protocol {
            ArcProtocol::Transductive => {
                // Each val version shares its identifier with its demonstrations in training.
                assert!(val
                    .puzzle_identifiers
                    .iter()
                    .all(|id| train_ids.contains(id)));
                assert_eq!(trained_on_val_tasks, 2 * 4);
                // 4 versions of: 4 evaluation and 2 val tasks' 2 demonstrations, 3 training
                // tasks' 2 demonstrations and test pair.
                assert_eq!(d.train.num_examples(), 4 * (4 * 2 + 2 * 2 + 3 * 3));
            }
            ArcProtocol::Inductive => {
                assert!(val
                    .puzzle_identifiers
                    .iter()
                    .all(|id| !train_ids.contains(id)));
                assert_eq!(trained_on_val_tasks, 0);
                assert_eq!(d.train.num_examples(), 4 * (3 * 3));
            }
        }
        // val_puzzles.json: the val tasks' original pairs, as test_puzzles.json.
        let originals: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(extra(&d, "val_puzzles.json").unwrap()).unwrap();
        let mut names: Vec<&String> = originals.keys().collect();
        names.sort();
        let mut expected: Vec<&String> = val_tasks.iter().collect();
        expected.sort();
        assert_eq!(names, expected);
        assert!(originals
            .values()
            .all(|t| t["test"].as_array().unwrap().len() == 1));
        let (again, _) = build(&arc_cfg(tmp.path(), protocol, Some(2))).unwrap();
        assert_eq!(again.val, d.val);
    }
    let (default, m) = build(&arc_cfg(tmp.path(), ArcProtocol::Transductive, None)).unwrap();
    assert_eq!(
        default.val.unwrap().num_groups(),
        1,
        "10% of 5 tasks, at least 1"
    );
    assert_eq!(m.params["training_tasks"], 4);
    // 0: no val split; every training task's test pair trains (no carving).
    for (protocol, examples) in [
        (ArcProtocol::Transductive, 4 * (4 * 2 + 5 * 3)),
        (ArcProtocol::Inductive, 4 * (5 * 3)),
    ] {
        let (none, m) = build(&arc_cfg(tmp.path(), protocol, Some(0))).unwrap();
        assert!(none.val.is_none() && extra(&none, "val_puzzles.json").is_none());
        assert_eq!(m.params["val_tasks"], 0);
        assert_eq!(m.params["training_tasks"], 5);
        assert_eq!(m.params["val_task_ids"], serde_json::json!([]));
        assert_eq!(none.train.num_examples(), examples, "{protocol:?}");
        assert_eq!(none.test, default.test, "{protocol:?}");
    }
    let e = err_of(build(&arc_cfg(
        tmp.path(),
        ArcProtocol::Transductive,
        Some(5),
    )));
    assert!(e.contains("val-tasks = 5"), "{e}");
}

// ---------------------------------------------------------------- format

#[test]
fn val_round_trips_through_the_official_layout() {
    let (d, manifest) = datasets::maze::build::build(&maze_generator(Some(4), 3)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("maze");
    let written = write_dataset(&dir, &d, manifest, false).unwrap();
    let val = d.val.as_ref().unwrap();
    assert_eq!(written.splits["val"].examples, val.num_examples());
    for file in [
        "val/dataset.json",
        "val/all__inputs.npy",
        "val/all__puzzle_identifiers.npy",
        "puzzles_val.csv",
    ] {
        assert!(written.files.contains_key(file), "{file} not hashed");
    }
    let loaded = load_dataset(&dir).unwrap();
    let (split, meta) = loaded.val().expect("val loads back");
    assert_eq!(split, val);
    assert_eq!(meta.total_groups, 4);
    assert_eq!(meta, loaded.metadata("val"));
    assert_eq!(loaded.metadata("test").total_groups, 10);
    assert!(written.verify(&dir).unwrap().is_empty());

    // A val/ that does not fit the other splits is refused, naming the file.
    let meta_path = dir.join("val/dataset.json");
    let text = std::fs::read_to_string(&meta_path).unwrap();
    std::fs::write(
        &meta_path,
        text.replace("\"seq_len\": 64", "\"seq_len\": 65"),
    )
    .unwrap();
    let e = err_of(load_dataset(&dir));
    assert!(
        e.contains("val/dataset.json") && e.contains("seq_len 65"),
        "{e}"
    );

    // Without val/ the directory loads (as the official builders' do); the manifest notices.
    std::fs::remove_dir_all(dir.join("val")).unwrap();
    let loaded = load_dataset(&dir).unwrap();
    assert!(loaded.val().is_none() && loaded.data.val.is_none());
    let problems = written.verify(&dir).unwrap();
    assert!(
        problems.iter().any(|p| p.starts_with("val/")),
        "{problems:?}"
    );

    // A dataset without val writes no val/.
    let mut none = d.clone();
    none.val = None;
    let plain = tmp.path().join("plain");
    let written = write_dataset(&plain, &none, written, false).unwrap();
    assert!(!plain.join("val").exists() && !written.splits.contains_key("val"));
    assert!(load_dataset(&plain).unwrap().val().is_none());

    // A build with val-size 0 writes neither val/ nor puzzles_val.csv; its manifest says 0.
    let (zero, manifest) = datasets::maze::build::build(&maze_generator(Some(0), 3)).unwrap();
    let dir = tmp.path().join("zero");
    let written = write_dataset(&dir, &zero, manifest, false).unwrap();
    assert!(!dir.join("val").exists() && !dir.join("puzzles_val.csv").exists());
    assert!(!written.splits.contains_key("val"));
    assert!(!written.files.keys().any(|f| f.contains("val")));
    assert_eq!(written.params["val_size"], 0);
    assert!(load_dataset(&dir).unwrap().val().is_none());
}
