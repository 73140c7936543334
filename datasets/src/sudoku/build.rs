//! Builds a Sudoku dataset directory from one of three sources: the official
//! `train.csv`/`test.csv`, puzzle-list files, or the built-in generator. Every puzzle is
//! proven to have exactly one solution; lists and generated pools are split by equivalence
//! class so that no test puzzle is a transform of a training puzzle. A val split is carved
//! from the training side the same way, by whole classes: no val puzzle is a transform of a
//! training or a test puzzle.

use super::augment::SudokuTransform;
use super::canonical::{canonical_form, invariant};
use super::generate::{generate, generate_streams, RatedPuzzle};
use super::solver::solve_unique;
use super::{board_to_string, parse_board, to_tokens, Board, Shape};
use crate::csvio;
use crate::error::{DataError, Result};
use crate::format::{Dataset, PuzzleCount, Split};
use crate::manifest::{hash_file, Manifest, Source};
use crate::sample::{subsample, val_size};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub const PROTOCOL: &str = "sudoku-equivalence-disjoint";

/// The task a shape's datasets belong to.
pub fn task_name(shape: Shape) -> &'static str {
    if shape == Shape::STANDARD {
        "sudoku-extreme"
    } else {
        "sudoku-small"
    }
}

#[derive(Debug, Clone)]
pub enum SudokuSource {
    /// A directory holding the official `train.csv` and `test.csv`.
    OfficialCsv(PathBuf),
    /// Files with one puzzle per line (`#` comments): 81 characters, or side^2 for small shapes.
    Lists(Vec<PathBuf>),
    /// The built-in generator; `min_rating` is the least number of guesses kept.
    Generator { min_rating: u32 },
}

#[derive(Debug, Clone)]
pub struct SudokuConfig {
    /// 9x9 is Sudoku-Extreme; 4x4 and 6x6 make the `sudoku-small` task.
    pub shape: Shape,
    pub source: SudokuSource,
    pub seed: u64,
    /// Training puzzles before augmentation (the official 1000); `None` keeps all.
    pub train_size: Option<usize>,
    /// Test puzzles; `None` keeps all (the official choice for the CSV test set).
    pub test_size: Option<usize>,
    /// Val puzzles (`val/`), whole equivalence classes carved from the training side, never
    /// augmented. Generator: this many more puzzles, `train_size` still trains. Official CSV
    /// and lists: taken from the training puzzles, which shrink. `None`: 10% of the training
    /// puzzles, at least 1 (none when no class can be held out without emptying training).
    /// `Some(0)`: no val split (no `val/`, no `puzzles_val.csv`); training keeps every puzzle
    /// it would have had with no val carved (the official CSV's: all its training rows).
    pub val_size: Option<usize>,
    /// Fraction of equivalence classes held out when the source has no split (lists).
    pub test_fraction: f64,
    /// Augmented versions per training puzzle, beside the original (official 1000).
    pub num_aug: usize,
    /// Keep only puzzles rated at least this (official `--min-difficulty`, CSV rating).
    pub min_rating: u32,
}

impl Default for SudokuConfig {
    fn default() -> Self {
        SudokuConfig {
            shape: Shape::STANDARD,
            source: SudokuSource::Generator { min_rating: 2 },
            seed: 0,
            train_size: Some(1000),
            test_size: Some(1000),
            val_size: None,
            test_fraction: 0.1,
            num_aug: 1000,
            min_rating: 0,
        }
    }
}

pub fn build(cfg: &SudokuConfig) -> Result<(Dataset, Manifest)> {
    if !(0.0..1.0).contains(&cfg.test_fraction) {
        return Err(DataError::config(format!(
            "test fraction {} must be in [0, 1)",
            cfg.test_fraction
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let p = match &cfg.source {
        SudokuSource::OfficialCsv(_) if cfg.shape != Shape::STANDARD => {
            return Err(DataError::config(
                "the official Sudoku-Extreme CSVs hold 9x9 puzzles only",
            ));
        }
        SudokuSource::OfficialCsv(dir) => from_official_csv(dir, cfg, &mut rng)?,
        SudokuSource::Lists(files) => from_lists(files, cfg, &mut rng)?,
        SudokuSource::Generator { min_rating } => from_generator(*min_rating, cfg, &mut rng)?,
    };
    check_split(&p, cfg)?;
    let dataset = assemble(&p.train, &p.val, &p.test, cfg.num_aug, &mut rng, cfg.shape);
    let params = manifest_params(&p, cfg);
    Ok((
        dataset,
        Manifest::new(task_name(cfg.shape), PROTOCOL, cfg.seed, p.source, params),
    ))
}

/// The puzzles of each split, before augmentation, and where they came from.
struct SplitPuzzles {
    train: Vec<RatedPuzzle>,
    val: Vec<RatedPuzzle>,
    test: Vec<RatedPuzzle>,
    source: Source,
}

/// The official split is kept: only val is carved, by whole classes of train.csv.
fn from_official_csv(dir: &Path, cfg: &SudokuConfig, rng: &mut ChaCha8Rng) -> Result<SplitPuzzles> {
    let train_path = dir.join("train.csv");
    let test_path = dir.join("test.csv");
    let mut train = read_csv(&train_path, cfg.min_rating)?;
    let mut test = read_csv(&test_path, cfg.min_rating)?;
    subsample(&mut train, cfg.train_size, rng);
    subsample(&mut test, cfg.test_size, rng);
    verify_csv_rows(&train_path, &train)?;
    verify_csv_rows(&test_path, &test)?;
    let source = Source {
        kind: "official-csv".into(),
        description: "Sudoku-Extreme train.csv/test.csv (sapientinc/sudoku-extreme); official split kept, val carved from train.csv by equivalence class".into(),
        inputs: vec![hash_file(&train_path, train_path.display().to_string())?, hash_file(&test_path, test_path.display().to_string())?],
    };
    let mut train: Vec<RatedPuzzle> = train.into_iter().map(|r| r.puzzle).collect();
    let test: Vec<RatedPuzzle> = test.into_iter().map(|r| r.puzzle).collect();
    let val = carve_val_classes(&mut train, &test, cfg, rng)?;
    Ok(SplitPuzzles {
        train,
        val,
        test,
        source,
    })
}

/// Lists come with no split: test and val are whole equivalence classes of the pool.
fn from_lists(files: &[PathBuf], cfg: &SudokuConfig, rng: &mut ChaCha8Rng) -> Result<SplitPuzzles> {
    let mut pool = Vec::new();
    let mut inputs = Vec::new();
    for f in files {
        pool.extend(read_list(f, cfg.shape)?);
        inputs.push(hash_file(f, f.display().to_string())?);
    }
    pool.retain(|p| p.rating >= cfg.min_rating);
    // Val: 10% of the puzzles that would train, from the classes test left.
    let val_target = |training_side: usize| {
        let training = training_side.min(cfg.train_size.unwrap_or(usize::MAX));
        match cfg.val_size {
            Some(n) => val_size(Some(n), training_side, "val-size", "puzzle"),
            None => val_size(None, training, "val-size", "puzzle"),
        }
    };
    let (train, val, test) = split_pool(pool, cfg, cfg.test_fraction, val_target, rng)?;
    let source = Source {
        kind: "puzzle-list".into(),
        description: "puzzle lists solved and rated here, split into train, val and test by equivalence class, each puzzle permuted once".into(),
        inputs,
    };
    Ok(SplitPuzzles {
        train,
        val,
        test,
        source,
    })
}

/// Val and test are drawn with training and split by class, so that the training drawn to
/// make up for the classes' granularity can avoid theirs.
fn from_generator(
    min_rating: u32,
    cfg: &SudokuConfig,
    rng: &mut ChaCha8Rng,
) -> Result<SplitPuzzles> {
    let (Some(train_n), Some(test_n)) = (cfg.train_size, cfg.test_size) else {
        return Err(DataError::config(
            "the generator needs explicit train and test sizes",
        ));
    };
    let val_n = val_size(cfg.val_size, train_n, "val-size", "puzzle")?;
    let pool = generate(
        train_n + val_n + test_n,
        min_rating.max(cfg.min_rating),
        cfg.seed,
        10_000,
        cfg.shape,
    )
    .map_err(DataError::config)?;
    let drawn: HashSet<Board> = pool.iter().map(|p| p.puzzle).collect();
    let fraction = test_n as f64 / (train_n + val_n + test_n).max(1) as f64;
    let (mut train, val, test) = split_pool(pool, cfg, fraction, |_| Ok(val_n), rng)?;
    top_up_training(
        &mut train,
        &[&val, &test],
        drawn,
        (train_n + val_n + test_n) as u64,
        min_rating.max(cfg.min_rating),
        cfg,
        rng,
    )?;
    let source = Source {
        kind: "generator".into(),
        description: format!(
            "built-in generator: random minimal puzzles rated >= {} guesses",
            min_rating.max(cfg.min_rating)
        ),
        inputs: vec![],
    };
    Ok(SplitPuzzles {
        train,
        val,
        test,
        source,
    })
}

fn check_split(p: &SplitPuzzles, cfg: &SudokuConfig) -> Result<()> {
    if p.train.is_empty() || p.test.is_empty() {
        return Err(DataError::config(format!(
            "the split is empty ({} train, {} test puzzles)",
            p.train.len(),
            p.test.len()
        )));
    }
    // An explicit positive val-size that yields no val is an error; 0 asks for no val.
    if let Some(n) = cfg.val_size.filter(|&n| n > 0 && p.val.is_empty()) {
        return Err(DataError::config(format!(
            "val-size = {n}: no equivalence class of the training side could be held out without emptying training"
        )));
    }
    Ok(())
}

fn manifest_params(p: &SplitPuzzles, cfg: &SudokuConfig) -> serde_json::Value {
    let (train, val, test) = (&p.train, &p.val, &p.test);
    serde_json::json!({
        "train_size": cfg.train_size, "test_size": cfg.test_size, "test_fraction": cfg.test_fraction,
        "val_size": cfg.val_size, "val_puzzles": val.len(),
        "num_aug": cfg.num_aug, "min_rating": cfg.min_rating, "side": cfg.shape.side(),
        "generator_min_rating": match cfg.source { SudokuSource::Generator { min_rating } => Some(min_rating), _ => None },
        "train_rating_mean": mean_rating(train), "test_rating_mean": mean_rating(test),
        "val_rating_mean": mean_rating(val),
        "train_sources": source_counts(train), "test_sources": source_counts(test),
        "val_sources": source_counts(val),
    })
}

/// Class granularity can leave a generated training side short of `train_size`: 4x4 Sudoku
/// has a few dozen classes, some holding a tenth of all minimal puzzles, and the surplus of
/// a class that overshoots val's or test's size is dropped. More puzzles are then drawn,
/// from the streams after the pool's (`first_stream` on), and those of no val or test class
/// and not drawn before train, each permuted once as the pool's were. Gives up, short, after
/// 20 rounds (as the split did before).
fn top_up_training(
    train: &mut Vec<RatedPuzzle>,
    held_out: &[&[RatedPuzzle]],
    mut drawn: HashSet<Board>,
    first_stream: u64,
    min_rating: u32,
    cfg: &SudokuConfig,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let Some(target) = cfg.train_size else {
        return Ok(());
    };
    let shape = cfg.shape;
    // Held-out boards by class invariant; their canonical forms only where a draw meets one.
    let mut by_invariant: HashMap<u64, Vec<Board>> = HashMap::new();
    for p in held_out.iter().flat_map(|s| s.iter()) {
        by_invariant
            .entry(invariant(&p.puzzle, shape))
            .or_default()
            .push(p.puzzle);
    }
    let mut forms: HashMap<u64, HashSet<Board>> = HashMap::new();
    let mut next = first_stream;
    for _ in 0..20 {
        if train.len() >= target {
            break;
        }
        let want = 2 * (target - train.len()) + 8;
        let batch = generate_streams(next, want, min_rating, cfg.seed, 10_000, shape)
            .map_err(DataError::config)?;
        next += want as u64;
        for mut p in batch {
            if train.len() >= target {
                break;
            }
            if !drawn.insert(p.puzzle) {
                continue;
            }
            let inv = invariant(&p.puzzle, shape);
            if let Some(boards) = by_invariant.get(&inv) {
                let held = forms
                    .entry(inv)
                    .or_insert_with(|| boards.iter().map(|b| canonical_form(b, shape)).collect());
                if held.contains(&canonical_form(&p.puzzle, shape)) {
                    continue;
                }
            }
            let t = SudokuTransform::random(rng, shape);
            p.puzzle = t.apply(&p.puzzle);
            p.solution = t.apply(&p.solution);
            train.push(p);
        }
    }
    Ok(())
}

/// Val from the official training rows: whole equivalence classes of the training puzzles,
/// in seeded order, none that a test puzzle belongs to, never the last class that trains;
/// then a seeded sample of `val-size` of their puzzles (the rest of a class that overshoots
/// is dropped, never trained on).
fn carve_val_classes(
    train: &mut Vec<RatedPuzzle>,
    test: &[RatedPuzzle],
    cfg: &SudokuConfig,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<RatedPuzzle>> {
    let target = val_size(cfg.val_size, train.len(), "val-size", "puzzle")?;
    if target == 0 {
        return Ok(Vec::new());
    }
    let boards: Vec<Board> = train.iter().chain(test).map(|p| p.puzzle).collect();
    let classes = equivalence_classes(&boards, cfg.shape);
    let (train_classes, test_classes) = classes.split_at(train.len());
    let touches_test: HashSet<usize> = test_classes.iter().copied().collect();
    let num_classes = classes.iter().max().map_or(0, |m| m + 1);
    let in_val = choose_classes(train_classes, num_classes, target, &touches_test, rng);
    let mut val = Vec::new();
    for (p, c) in std::mem::take(train).into_iter().zip(train_classes) {
        if in_val[*c] {
            val.push(p);
        } else {
            train.push(p);
        }
    }
    subsample(&mut val, Some(target), rng);
    Ok(val)
}

/// Classes (of `classes`, one id per puzzle) taken in seeded order until they hold at least
/// `target` puzzles, skipping those in `excluded` and any whose taking would leave no puzzle
/// outside the chosen ones.
fn choose_classes(
    classes: &[usize],
    num_classes: usize,
    target: usize,
    excluded: &HashSet<usize>,
    rng: &mut ChaCha8Rng,
) -> Vec<bool> {
    let mut size = vec![0usize; num_classes];
    for &c in classes {
        size[c] += 1;
    }
    let mut order: Vec<usize> = (0..num_classes).filter(|&c| size[c] > 0).collect();
    order.shuffle(rng);
    let mut chosen = vec![false; num_classes];
    let (mut taken, mut left) = (0, classes.len());
    for c in order {
        if taken >= target {
            break;
        }
        if excluded.contains(&c) || size[c] >= left {
            continue;
        }
        chosen[c] = true;
        taken += size[c];
        left -= size[c];
    }
    chosen
}

fn mean_rating(p: &[RatedPuzzle]) -> f64 {
    p.iter().map(|r| r.rating as f64).sum::<f64>() / p.len().max(1) as f64
}

fn source_counts(p: &[RatedPuzzle]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in p {
        *m.entry(r.source.clone()).or_insert(0) += 1;
    }
    m
}

pub struct CsvRow {
    pub line: u64,
    pub puzzle: RatedPuzzle,
}

/// Reads the official rows rated `min_rating` or more, checking each answer against its
/// question (uniqueness is proved later, in parallel, by `verify_csv_rows`).
pub fn read_csv(path: &Path, min_rating: u32) -> Result<Vec<CsvRow>> {
    let mut out = Vec::new();
    for row in csvio::read(path)? {
        let place = row.place();
        let puzzle = parse_board(&row.question, Shape::STANDARD)
            .map_err(|e| DataError::record(path, &place, format!("question: {e}")))?;
        let answer = parse_board(&row.answer, Shape::STANDARD)
            .map_err(|e| DataError::record(path, &place, format!("answer: {e}")))?;
        let rating = row.rating_u32(path)?;
        if !super::solves(&puzzle, &answer, Shape::STANDARD) {
            return Err(DataError::record(
                path,
                place,
                "the answer is not a valid solution of the question",
            ));
        }
        if rating >= min_rating {
            out.push(CsvRow {
                line: row.line,
                puzzle: RatedPuzzle {
                    puzzle,
                    solution: answer,
                    rating,
                    source: row.source,
                },
            });
        }
    }
    Ok(out)
}

/// Proves that every kept official row has exactly one solution.
fn verify_csv_rows(path: &Path, rows: &[CsvRow]) -> Result<()> {
    let bad =
        rows.par_iter()
            .find_map_first(|r| match solve_unique(&r.puzzle.puzzle, Shape::STANDARD) {
                Ok((s, _)) if s == r.puzzle.solution => None,
                Ok(_) => Some((
                    r.line,
                    "the solver's unique solution differs from the answer".to_string(),
                )),
                Err(e) => Some((r.line, e.to_string())),
            });
    match bad {
        Some((line, what)) => Err(DataError::record(path, format!("line {line}"), what)),
        None => Ok(()),
    }
}

/// Reads, solves and rates a puzzle list; any invalid puzzle is an error naming its line.
pub fn read_list(path: &Path, shape: Shape) -> Result<Vec<RatedPuzzle>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let solved: Vec<std::result::Result<RatedPuzzle, (usize, String)>> = lines
        .par_iter()
        .map(|&(line, l)| {
            let field = l.split(':').next().unwrap_or("").trim();
            let puzzle = parse_board(field, shape).map_err(|e| (line, e))?;
            let (solution, rating) =
                solve_unique(&puzzle, shape).map_err(|e| (line, e.to_string()))?;
            Ok(RatedPuzzle {
                puzzle,
                solution,
                rating,
                source: source.clone(),
            })
        })
        .collect();
    solved
        .into_iter()
        .map(|r| r.map_err(|(line, what)| DataError::record(path, format!("line {line}"), what)))
        .collect()
}

/// Equivalence-class id of every board: exact, but the canonical form is only computed for
/// boards whose cheap invariant collides with another's.
pub fn equivalence_classes(boards: &[Board], shape: Shape) -> Vec<usize> {
    let invariants: Vec<u64> = boards.par_iter().map(|b| invariant(b, shape)).collect();
    let mut bucket_sizes: HashMap<u64, usize> = HashMap::new();
    for &inv in &invariants {
        *bucket_sizes.entry(inv).or_insert(0) += 1;
    }
    let canon: Vec<Option<Board>> = boards
        .par_iter()
        .zip(&invariants)
        .map(|(b, inv)| (bucket_sizes[inv] > 1).then(|| canonical_form(b, shape)))
        .collect();
    let mut ids: HashMap<(u64, Option<Board>), usize> = HashMap::new();
    (0..boards.len())
        .map(|i| {
            // A board alone with its invariant is a class by itself, keyed by the invariant.
            let next = ids.len();
            *ids.entry((invariants[i], canon[i])).or_insert(next)
        })
        .collect()
}

/// Exact dedup, class split (test: `test_fraction` of the puzzles; val: `val_target` of the
/// puzzles test left, as puzzles), one random transform per puzzle, then subsampling.
type SplitPool = (Vec<RatedPuzzle>, Vec<RatedPuzzle>, Vec<RatedPuzzle>);
fn split_pool(
    mut pool: Vec<RatedPuzzle>,
    cfg: &SudokuConfig,
    test_fraction: f64,
    val_target: impl FnOnce(usize) -> Result<usize>,
    rng: &mut ChaCha8Rng,
) -> Result<SplitPool> {
    let mut seen = HashSet::new();
    pool.retain(|p| seen.insert(p.puzzle));
    let boards: Vec<Board> = pool.iter().map(|p| p.puzzle).collect();
    let classes = equivalence_classes(&boards, cfg.shape);
    let num_classes = classes.iter().max().map_or(0, |m| m + 1);
    let mut order: Vec<usize> = (0..num_classes).collect();
    order.shuffle(rng);
    let mut class_size = vec![0usize; num_classes];
    for &c in &classes {
        class_size[c] += 1;
    }
    let target_test = (test_fraction * pool.len() as f64).round() as usize;
    let mut in_test = vec![false; num_classes];
    let mut n_test = 0;
    for &c in &order {
        if n_test >= target_test {
            break;
        }
        in_test[c] = true;
        n_test += class_size[c];
    }
    let target_val = val_target(pool.len() - n_test)?;
    let test_classes: HashSet<usize> = (0..num_classes).filter(|&c| in_test[c]).collect();
    let in_val = if target_val == 0 {
        vec![false; num_classes]
    } else {
        let training_side: Vec<usize> = classes.iter().copied().filter(|&c| !in_test[c]).collect();
        choose_classes(&training_side, num_classes, target_val, &test_classes, rng)
    };
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (mut p, c) in pool.into_iter().zip(classes) {
        let t = SudokuTransform::random(rng, cfg.shape);
        p.puzzle = t.apply(&p.puzzle);
        p.solution = t.apply(&p.solution);
        if in_test[c] {
            test.push(p)
        } else if in_val[c] {
            val.push(p)
        } else {
            train.push(p)
        }
    }
    subsample(&mut train, cfg.train_size, rng);
    subsample(&mut val, Some(target_val), rng);
    subsample(&mut test, cfg.test_size, rng);
    Ok((train, val, test))
}

/// Lays puzzles out in the official format: each training puzzle is a group of the original
/// and `num_aug` augmented versions (one example each); each val and test puzzle its own
/// group, never augmented.
fn assemble(
    train: &[RatedPuzzle],
    val: &[RatedPuzzle],
    test: &[RatedPuzzle],
    num_aug: usize,
    rng: &mut ChaCha8Rng,
    shape: Shape,
) -> Dataset {
    let mut train_split = Split::new(shape.cells());
    for p in train {
        for k in 0..=num_aug {
            let t = if k == 0 {
                SudokuTransform::identity(shape)
            } else {
                SudokuTransform::random(rng, shape)
            };
            let (input, label) = (
                to_tokens(&t.apply(&p.puzzle), shape),
                to_tokens(&t.apply(&p.solution), shape),
            );
            train_split.add_puzzle(0, [(&input[..], &label[..])]);
        }
        train_split.close_group();
    }
    let plain = |puzzles: &[RatedPuzzle]| {
        let mut split = Split::new(shape.cells());
        for p in puzzles {
            let (input, label) = (to_tokens(&p.puzzle, shape), to_tokens(&p.solution, shape));
            split.add_puzzle(0, [(&input[..], &label[..])]);
            split.close_group();
        }
        split
    };
    let mut extra_files = vec![
        ("puzzles_train.csv".into(), puzzles_csv(train, shape)),
        ("puzzles_test.csv".into(), puzzles_csv(test, shape)),
    ];
    if !val.is_empty() {
        extra_files.push(("puzzles_val.csv".into(), puzzles_csv(val, shape)));
    }
    Dataset {
        vocab_size: shape.vocab_size(),
        num_puzzle_identifiers: 1,
        train: train_split,
        test: plain(test),
        val: (!val.is_empty()).then(|| plain(val)),
        identifiers: vec!["<blank>".to_string()],
        total_puzzles: PuzzleCount::Groups,
        extra_files,
    }
}

/// The un-augmented puzzles of a split in the official CSV layout, so they can be re-imported.
fn puzzles_csv(puzzles: &[RatedPuzzle], shape: Shape) -> Vec<u8> {
    csvio::write(puzzles.iter().map(|p| {
        [
            p.source.clone(),
            board_to_string(&p.puzzle, shape),
            board_to_string(&p.solution, shape),
            p.rating.to_string(),
        ]
    }))
}
