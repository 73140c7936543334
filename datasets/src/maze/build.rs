//! Builds a Maze-Hard dataset directory from the official CSVs or the built-in generator,
//! with the official optional 8-fold dihedral augmentation of the training split, and a val
//! split carved from the training side with layouts distinct from training's.

use super::generate::{generate, wall_layout_key, MazeSpec};
use super::{is_valid_shortest_path, parse, render, side_of, VOCAB_SIZE};
use crate::csvio;
use crate::error::{DataError, Result};
use crate::format::{Dataset, PuzzleCount, Split};
use crate::grid::{Grid, DIHEDRAL_COUNT};
use crate::manifest::{hash_file, Manifest, Source};
use crate::sample::{subsample, take_sample, val_size};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::path::PathBuf;

pub const PROTOCOL: &str = "maze-distinct-layouts";

#[derive(Debug, Clone)]
pub enum MazeSource {
    /// A directory holding the official `train.csv` and `test.csv`.
    OfficialCsv(PathBuf),
    Generator(MazeSpec),
}

#[derive(Debug, Clone)]
pub struct MazeConfig {
    pub source: MazeSource,
    pub seed: u64,
    pub train_size: Option<usize>,
    pub test_size: Option<usize>,
    /// Val mazes, carved from the training side (`val/`, never from test). Generator: this
    /// many more mazes from the same pool (distinct layouts), `train_size` still trains.
    /// Official CSV: a seeded sample of the training rows, removed from training (rows whose
    /// layout another training row shares go back). `None`: 10% of the training mazes, at
    /// least 1 (none from a single training maze). `Some(0)`: no val split (no `val/`, no
    /// `puzzles_val.csv`): the generator's train and test are those of any val size, the
    /// official CSV's training rows all of its rows, as the official builder makes them.
    pub val_size: Option<usize>,
    /// The official `--aug`: the 8 dihedral versions of each training maze as one group.
    /// Off by default, as in the official builder (the paper says 8 augmentations).
    pub augment: bool,
}

impl Default for MazeConfig {
    fn default() -> Self {
        MazeConfig {
            source: MazeSource::Generator(MazeSpec::default()),
            seed: 0,
            train_size: Some(1000),
            test_size: Some(1000),
            val_size: None,
            augment: false,
        }
    }
}

/// One maze instance: input and label tokens, shortest-path length, where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct MazeRow {
    pub input: Vec<u8>,
    pub label: Vec<u8>,
    pub path_moves: u32,
    pub source: String,
}

pub fn build(cfg: &MazeConfig) -> Result<(Dataset, Manifest)> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (train, test, val, source, spec) = match &cfg.source {
        MazeSource::OfficialCsv(dir) => {
            let (train_path, test_path) = (dir.join("train.csv"), dir.join("test.csv"));
            let source = Source {
                kind: "official-csv".into(),
                description: "Maze-Hard train.csv/test.csv (sapientinc/maze-30x30-hard-1k); official split kept, val carved from train.csv".into(),
                inputs: vec![hash_file(&train_path, train_path.display().to_string())?, hash_file(&test_path, test_path.display().to_string())?],
            };
            let (mut train, mut test) = (read_csv(&train_path)?, read_csv(&test_path)?);
            subsample(&mut train, cfg.train_size, &mut rng);
            subsample(&mut test, cfg.test_size, &mut rng);
            let val_n = val_size(cfg.val_size, train.len(), "val-size", "maze")?;
            let requested = cfg.val_size.is_some_and(|n| n > 0);
            let val = carve_val(&mut train, val_n, requested, &mut rng)?;
            (train, test, val, source, None)
        }
        MazeSource::Generator(spec) => {
            let (Some(train_n), Some(test_n)) = (cfg.train_size, cfg.test_size) else {
                return Err(DataError::config(
                    "the maze generator needs explicit train and test sizes",
                ));
            };
            let val_n = val_size(cfg.val_size, train_n, "val-size", "maze")?;
            // One pool, so layouts are distinct up to symmetry across all three splits. Val
            // comes last: train and test are the mazes a build without val would have made.
            let mazes =
                generate(train_n + test_n + val_n, spec, cfg.seed).map_err(DataError::config)?;
            let mut rows: Vec<MazeRow> = mazes
                .into_iter()
                .map(|m| MazeRow {
                    input: m.input,
                    label: m.label,
                    path_moves: m.path_moves,
                    source: "generator".into(),
                })
                .collect();
            let val = rows.split_off(train_n + test_n);
            let test = rows.split_off(train_n);
            let source = Source {
                kind: "generator".into(),
                description: format!(
                    "built-in generator: {0}x{0} random walls {1}-{2}%, shortest path > {3} moves, layouts distinct up to symmetry",
                    spec.side,
                    spec.min_wall_fraction * 100.0,
                    spec.max_wall_fraction * 100.0,
                    spec.min_path_moves
                ),
                inputs: vec![],
            };
            (rows, test, val, source, Some(spec.clone()))
        }
    };
    if train.is_empty() || test.is_empty() {
        return Err(DataError::config(format!(
            "the split is empty ({} train, {} test mazes)",
            train.len(),
            test.len()
        )));
    }
    let seq_len = train[0].input.len();
    let dataset = assemble(&train, &val, &test, seq_len, cfg.augment);
    let params = serde_json::json!({
        "train_size": cfg.train_size, "test_size": cfg.test_size, "augment": cfg.augment, "generator": spec,
        "val_size": cfg.val_size, "val_mazes": val.len(),
        "side": side_of(&train[0].input),
        "train_path_moves_mean": mean_moves(&train), "test_path_moves_mean": mean_moves(&test),
        "val_path_moves_mean": mean_moves(&val),
    });
    Ok((
        dataset,
        Manifest::new("maze-hard", PROTOCOL, cfg.seed, source, params),
    ))
}

/// Val from official training rows: a seeded sample of `size` rows, removed from training;
/// a sampled row whose wall layout (up to symmetry) is also a remaining training row's goes
/// back to training, so val and training layouts are distinct. An empty val is an error
/// when `requested` (a positive val-size; no val split otherwise). `size` 0 draws nothing
/// and takes nothing: training keeps every row.
fn carve_val(
    train: &mut Vec<MazeRow>,
    size: usize,
    requested: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<MazeRow>> {
    if size == 0 {
        return Ok(Vec::new());
    }
    // Rows keep their index, so those given back return to their place.
    let mut rows: Vec<(usize, MazeRow)> = std::mem::take(train).into_iter().enumerate().collect();
    let sampled = take_sample(&mut rows, size, rng);
    let train_layouts: HashSet<Vec<u8>> = rows
        .iter()
        .map(|(_, r)| wall_layout_key(&r.input))
        .collect();
    let (back, val): (Vec<_>, Vec<_>) = sampled
        .into_iter()
        .partition(|(_, r)| train_layouts.contains(&wall_layout_key(&r.input)));
    rows.extend(back);
    rows.sort_unstable_by_key(|(i, _)| *i);
    *train = rows.into_iter().map(|(_, r)| r).collect();
    let val: Vec<MazeRow> = val.into_iter().map(|(_, r)| r).collect();
    if val.is_empty() && requested {
        return Err(DataError::config(format!(
            "val-size = {size}: every sampled maze shares its wall layout with a training maze, so none can be held out"
        )));
    }
    Ok(val)
}

fn mean_moves(rows: &[MazeRow]) -> f64 {
    rows.iter().map(|r| r.path_moves as f64).sum::<f64>() / rows.len().max(1) as f64
}

/// Reads official rows, checking that each answer marks a valid shortest path of its question.
pub fn read_csv(path: &std::path::Path) -> Result<Vec<MazeRow>> {
    let mut out: Vec<MazeRow> = Vec::new();
    for row in csvio::read(path)? {
        let place = row.place();
        let input = parse(&row.question, false)
            .map_err(|e| DataError::record(path, &place, format!("question: {e}")))?;
        let label = parse(&row.answer, true)
            .map_err(|e| DataError::record(path, &place, format!("answer: {e}")))?;
        if let Some(first) = out.first() {
            if first.input.len() != input.len() {
                return Err(DataError::record(
                    path,
                    &place,
                    format!(
                        "grid of {} cells differs from the first row's {}",
                        input.len(),
                        first.input.len()
                    ),
                ));
            }
        }
        super::endpoints(&input)
            .map_err(|e| DataError::record(path, &place, format!("question: {e}")))?;
        if !is_valid_shortest_path(&input, &label) {
            return Err(DataError::record(
                path,
                &place,
                "the answer does not mark a shortest path from S to G",
            ));
        }
        let path_moves = label.iter().filter(|&&t| t == super::PATH).count() as u32 + 1;
        out.push(MazeRow {
            input,
            label,
            path_moves,
            source: row.source,
        });
    }
    Ok(out)
}

/// Train (augmented when asked), val and test (one maze per group, never augmented).
fn assemble(
    train: &[MazeRow],
    val: &[MazeRow],
    test: &[MazeRow],
    seq_len: usize,
    augment: bool,
) -> Dataset {
    let side = side_of(&train[0].input);
    let mut train_split = Split::new(seq_len);
    for row in train {
        let versions = if augment { DIHEDRAL_COUNT } else { 1 };
        for t in 0..versions {
            let input = Grid::new(side, side, row.input.clone()).dihedral(t).cells;
            let label = Grid::new(side, side, row.label.clone()).dihedral(t).cells;
            train_split.add_puzzle(0, [(&input[..], &label[..])]);
        }
        train_split.close_group();
    }
    let plain = |rows: &[MazeRow]| {
        let mut split = Split::new(seq_len);
        for row in rows {
            split.add_puzzle(0, [(&row.input[..], &row.label[..])]);
            split.close_group();
        }
        split
    };
    let to_csv = |rows: &[MazeRow]| {
        csvio::write(rows.iter().map(|r| {
            let flat = |t: &[u8]| render(t).replace('\n', "");
            [
                r.source.clone(),
                flat(&r.input),
                flat(&r.label),
                r.path_moves.to_string(),
            ]
        }))
    };
    let mut extra_files = vec![
        ("puzzles_train.csv".into(), to_csv(train)),
        ("puzzles_test.csv".into(), to_csv(test)),
    ];
    if !val.is_empty() {
        extra_files.push(("puzzles_val.csv".into(), to_csv(val)));
    }
    Dataset {
        vocab_size: VOCAB_SIZE,
        num_puzzle_identifiers: 1,
        train: train_split,
        test: plain(test),
        val: (!val.is_empty()).then(|| plain(val)),
        identifiers: vec!["<blank>".to_string()],
        total_puzzles: PuzzleCount::Groups,
        extra_files,
    }
}

/// Wall-layout keys of a split's inputs, for the audit.
pub fn layout_keys(split: &Split) -> Vec<Vec<u8>> {
    (0..split.num_examples())
        .map(|e| wall_layout_key(split.input(e)))
        .collect()
}
