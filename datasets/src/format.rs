//! The on-disk dataset directory, in the official layout so that a directory written by the
//! official Python builders loads unchanged:
//!
//! ```text
//! <dir>/train/dataset.json   <dir>/train/all__{inputs,labels,puzzle_indices,group_indices,puzzle_identifiers}.npy
//! <dir>/test/...             <dir>/identifiers.json   <dir>/manifest.json (ours)
//! <dir>/val/... (ours, optional)
//! ```
//! `val/` is a validation split carved from the training side, in the same layout; the
//! official loader reads only `train/` and `test/`, so the extra folder keeps directories
//! compatible, and directories without it (the official builders') load with no val split.
//! Hierarchy: a group is an original puzzle with all its augmented versions; a puzzle is one
//! version with one identifier; an example is one input/label pair.

use crate::error::{DataError, Result};
use crate::manifest::Manifest;
use crate::npy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The splits every directory has (the official loader's).
pub const SPLITS: [&str; 2] = ["train", "test"];
/// The optional validation split, carved from the training side.
pub const VAL: &str = "val";
pub const SET_NAME: &str = "all";
const FIELDS: [&str; 5] = [
    "inputs",
    "labels",
    "puzzle_indices",
    "group_indices",
    "puzzle_identifiers",
];

/// `dataset.json`, field for field as the official `PuzzleDatasetMetadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub pad_id: i64,
    pub ignore_label_id: Option<i64>,
    pub blank_identifier_id: i64,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub num_puzzle_identifiers: usize,
    pub total_groups: usize,
    pub mean_puzzle_examples: f64,
    /// TRM's loader requires it; HRM's builders did not write it, so it may be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_puzzles: Option<usize>,
    pub sets: Vec<String>,
}

/// What the official builders write as `total_puzzles`: the Sudoku and Maze builders the
/// number of groups, the ARC builder the number of puzzles (versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PuzzleCount {
    Groups,
    Puzzles,
}

/// The arrays of one split, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub seq_len: usize,
    pub inputs: Vec<u8>,
    pub labels: Vec<u8>,
    /// Cumulative example offsets, one more entry than puzzles.
    pub puzzle_indices: Vec<i32>,
    /// Cumulative puzzle offsets, one more entry than groups.
    pub group_indices: Vec<i32>,
    pub puzzle_identifiers: Vec<i32>,
}

impl Split {
    pub fn new(seq_len: usize) -> Self {
        Split {
            seq_len,
            inputs: Vec::new(),
            labels: Vec::new(),
            puzzle_indices: vec![0],
            group_indices: vec![0],
            puzzle_identifiers: Vec::new(),
        }
    }

    /// Appends one puzzle (one version, all its examples) to the group being built.
    pub fn add_puzzle<'a>(
        &mut self,
        identifier: i32,
        examples: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) {
        for (input, label) in examples {
            assert_eq!(
                input.len(),
                self.seq_len,
                "example input has the wrong length"
            );
            assert_eq!(
                label.len(),
                self.seq_len,
                "example label has the wrong length"
            );
            self.inputs.extend_from_slice(input);
            self.labels.extend_from_slice(label);
        }
        self.puzzle_indices.push(self.num_examples() as i32);
        self.puzzle_identifiers.push(identifier);
    }

    /// Closes the current group; puzzles added since the last call form it.
    pub fn close_group(&mut self) {
        let puzzles = self.num_puzzles() as i32;
        if *self.group_indices.last().unwrap() != puzzles {
            self.group_indices.push(puzzles);
        }
    }

    pub fn num_examples(&self) -> usize {
        self.inputs.len() / self.seq_len
    }
    pub fn num_puzzles(&self) -> usize {
        self.puzzle_identifiers.len()
    }
    pub fn num_groups(&self) -> usize {
        self.group_indices.len() - 1
    }
    pub fn input(&self, example: usize) -> &[u8] {
        &self.inputs[example * self.seq_len..(example + 1) * self.seq_len]
    }
    pub fn label(&self, example: usize) -> &[u8] {
        &self.labels[example * self.seq_len..(example + 1) * self.seq_len]
    }
    /// Example range of one puzzle.
    pub fn puzzle_examples(&self, puzzle: usize) -> std::ops::Range<usize> {
        self.puzzle_indices[puzzle] as usize..self.puzzle_indices[puzzle + 1] as usize
    }
    /// Puzzle range of one group.
    pub fn group_puzzles(&self, group: usize) -> std::ops::Range<usize> {
        self.group_indices[group] as usize..self.group_indices[group + 1] as usize
    }
    /// For every example, the index of its puzzle.
    pub fn example_puzzles(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.num_examples());
        for p in 0..self.num_puzzles() {
            out.extend(std::iter::repeat_n(p, self.puzzle_examples(p).len()));
        }
        out
    }
    /// For every puzzle, the index of its group.
    pub fn puzzle_groups(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.num_puzzles());
        for g in 0..self.num_groups() {
            out.extend(std::iter::repeat_n(g, self.group_puzzles(g).len()));
        }
        out
    }
}

/// A complete dataset in memory, ready to be written.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub vocab_size: usize,
    pub num_puzzle_identifiers: usize,
    pub train: Split,
    pub test: Split,
    /// Validation split carved from the training side (never from test); `None` for
    /// directories without `val/` (e.g. the official builders').
    pub val: Option<Split>,
    /// Identifier names, index = identifier; entry 0 is `<blank>`.
    pub identifiers: Vec<String>,
    /// Further files written beside the splits (e.g. ARC's `test_puzzles.json`).
    pub extra_files: Vec<(String, Vec<u8>)>,
    pub total_puzzles: PuzzleCount,
}

impl Dataset {
    /// `"train"`, `"val"` (when present) or `"test"` (any other name, as before).
    pub fn split(&self, name: &str) -> &Split {
        match (name, &self.val) {
            ("train", _) => &self.train,
            (VAL, Some(val)) => val,
            (VAL, None) => panic!("this dataset has no val split"),
            _ => &self.test,
        }
    }

    /// Every split present, by name: train, test, then val when there is one.
    pub fn splits(&self) -> Vec<(&'static str, &Split)> {
        let mut out = vec![("train", &self.train), ("test", &self.test)];
        if let Some(val) = &self.val {
            out.push((VAL, val));
        }
        out
    }

    pub fn metadata(&self, split: &Split) -> Metadata {
        Metadata {
            pad_id: 0,
            ignore_label_id: Some(0),
            blank_identifier_id: 0,
            vocab_size: self.vocab_size,
            seq_len: split.seq_len,
            num_puzzle_identifiers: self.num_puzzle_identifiers,
            total_groups: split.num_groups(),
            mean_puzzle_examples: if split.num_puzzles() == 0 {
                0.0
            } else {
                split.num_examples() as f64 / split.num_puzzles() as f64
            },
            total_puzzles: Some(match self.total_puzzles {
                PuzzleCount::Groups => split.num_groups(),
                PuzzleCount::Puzzles => split.num_puzzles(),
            }),
            sets: vec![SET_NAME.to_string()],
        }
    }
}

/// A directory as loaded from disk: the official part plus our manifest when present.
#[derive(Debug, Clone)]
pub struct LoadedDataset {
    pub dir: PathBuf,
    pub train_metadata: Metadata,
    pub test_metadata: Metadata,
    /// `val/dataset.json`, when the directory has a val split.
    pub val_metadata: Option<Metadata>,
    pub data: Dataset,
    pub manifest: Option<Manifest>,
}

impl LoadedDataset {
    /// `"train"`, `"val"` or `"test"` (any other name, as before). Asking for `"val"` of a
    /// directory without one is a bug in the caller: see [`LoadedDataset::val`].
    pub fn metadata(&self, split: &str) -> &Metadata {
        match split {
            "train" => &self.train_metadata,
            VAL => self
                .val_metadata
                .as_ref()
                .expect("this dataset has no val split (check `val()` first)"),
            _ => &self.test_metadata,
        }
    }

    /// The val split and its metadata; `None` for directories without `val/`.
    pub fn val(&self) -> Option<(&Split, &Metadata)> {
        self.data.val.as_ref().zip(self.val_metadata.as_ref())
    }
}

fn npy_name(field: &str) -> String {
    format!("{SET_NAME}__{field}.npy")
}

/// Writes a dataset atomically: everything goes to a hidden sibling directory that is renamed
/// into place only once complete, so an error never leaves a half-written dataset behind.
pub fn write_dataset(
    dir: &Path,
    dataset: &Dataset,
    manifest: Manifest,
    overwrite: bool,
) -> Result<Manifest> {
    if dir.exists() && !overwrite {
        return Err(DataError::format(
            dir,
            "output directory already exists (pass --force to replace it)",
        ));
    }
    let staging = StagingDir::new(dir)?;
    for (name, split) in dataset.splits() {
        let split_dir = staging.path.join(name);
        std::fs::create_dir_all(&split_dir).map_err(|e| DataError::io(&split_dir, e))?;
        let n = split.num_examples();
        npy::write(
            &split_dir.join(npy_name("inputs")),
            &[n, split.seq_len],
            &split.inputs,
        )?;
        npy::write(
            &split_dir.join(npy_name("labels")),
            &[n, split.seq_len],
            &split.labels,
        )?;
        for (field, values) in [
            ("puzzle_indices", &split.puzzle_indices),
            ("group_indices", &split.group_indices),
            ("puzzle_identifiers", &split.puzzle_identifiers),
        ] {
            npy::write(&split_dir.join(npy_name(field)), &[values.len()], values)?;
        }
        write_json(&split_dir.join("dataset.json"), &dataset.metadata(split))?;
    }
    write_json(&staging.path.join("identifiers.json"), &dataset.identifiers)?;
    for (name, bytes) in &dataset.extra_files {
        crate::fsio::write_atomic(&staging.path.join(name), bytes)?;
    }
    let manifest = manifest.complete(&staging.path, dataset)?;
    write_json(
        &staging.path.join(crate::manifest::MANIFEST_FILE),
        &manifest,
    )?;
    staging.commit(dir)?;
    Ok(manifest)
}

/// Pretty JSON with a final newline, written atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| DataError::format(path, e.to_string()))?;
    crate::fsio::write_atomic(path, (text + "\n").as_bytes())
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::format(path, format!("invalid JSON: {e}")))
}

/// A temporary directory beside the target that is removed unless committed.
pub struct StagingDir {
    pub path: PathBuf,
    committed: bool,
}

impl StagingDir {
    pub fn new(target: &Path) -> Result<Self> {
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        let name = target
            .file_name()
            .ok_or_else(|| DataError::format(target, "not a directory name"))?;
        let path = parent.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| DataError::io(&path, e))?;
        }
        std::fs::create_dir_all(&path).map_err(|e| DataError::io(&path, e))?;
        Ok(StagingDir {
            path,
            committed: false,
        })
    }

    /// Moves the finished directory into place, replacing an older one only after success.
    pub fn commit(mut self, target: &Path) -> Result<()> {
        if target.exists() {
            let old = self.path.with_extension("old");
            std::fs::rename(target, &old).map_err(|e| DataError::io(target, e))?;
            std::fs::rename(&self.path, target).map_err(|e| DataError::io(target, e))?;
            std::fs::remove_dir_all(&old).map_err(|e| DataError::io(&old, e))?;
        } else {
            std::fs::rename(&self.path, target).map_err(|e| DataError::io(target, e))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Loads and validates a dataset directory (ours or the official builders').
pub fn load_dataset(dir: &Path) -> Result<LoadedDataset> {
    if !dir.is_dir() {
        return Err(DataError::format(dir, "dataset directory not found"));
    }
    let mut metas = Vec::new();
    let mut splits = Vec::new();
    for name in SPLITS {
        let meta: Metadata = read_json(&dir.join(name).join("dataset.json"))?;
        splits.push(load_split(&dir.join(name), &meta)?);
        metas.push(meta);
    }
    // Ours only: the official builders write no val/, and such a directory loads without one.
    let val_dir = dir.join(VAL);
    let (val, val_metadata) = if val_dir.join("dataset.json").exists() {
        let meta: Metadata = read_json(&val_dir.join("dataset.json"))?;
        let train = &metas[0];
        if (meta.vocab_size, meta.seq_len, meta.num_puzzle_identifiers)
            != (
                train.vocab_size,
                train.seq_len,
                train.num_puzzle_identifiers,
            )
        {
            return Err(DataError::format(
                val_dir.join("dataset.json"),
                format!(
                    "vocab_size {}, seq_len {}, num_puzzle_identifiers {} differ from train's {}, {}, {}",
                    meta.vocab_size,
                    meta.seq_len,
                    meta.num_puzzle_identifiers,
                    train.vocab_size,
                    train.seq_len,
                    train.num_puzzle_identifiers
                ),
            ));
        }
        (Some(load_split(&val_dir, &meta)?), Some(meta))
    } else {
        (None, None)
    };
    let identifiers_path = dir.join("identifiers.json");
    let identifiers: Vec<String> = if identifiers_path.exists() {
        read_json(&identifiers_path)?
    } else {
        Vec::new()
    };
    let manifest_path = dir.join(crate::manifest::MANIFEST_FILE);
    let manifest = if manifest_path.exists() {
        Some(read_json(&manifest_path)?)
    } else {
        None
    };
    let test = splits.pop().unwrap();
    let train = splits.pop().unwrap();
    let data = Dataset {
        vocab_size: metas[0].vocab_size,
        num_puzzle_identifiers: metas[0].num_puzzle_identifiers,
        train,
        test,
        val,
        identifiers,
        extra_files: Vec::new(),
        // Only written, never read back from a loaded dataset.
        total_puzzles: PuzzleCount::Puzzles,
    };
    let test_metadata = metas.pop().unwrap();
    let train_metadata = metas.pop().unwrap();
    Ok(LoadedDataset {
        dir: dir.to_path_buf(),
        train_metadata,
        test_metadata,
        val_metadata,
        data,
        manifest,
    })
}

fn load_split(split_dir: &Path, meta: &Metadata) -> Result<Split> {
    let arrays = SplitArrays::read(split_dir, meta)?;
    arrays.check_tokens(meta)?;
    arrays.check_indices(meta)?;
    Ok(Split {
        seq_len: meta.seq_len,
        inputs: arrays.inputs.data,
        labels: arrays.labels.data,
        puzzle_indices: arrays.puzzle_indices.data,
        group_indices: arrays.group_indices.data,
        puzzle_identifiers: arrays.identifiers.data,
    })
}

/// The five arrays of a split as read, each with its file for the errors that name it.
struct SplitArrays {
    paths: [PathBuf; 5],
    inputs: npy::NpyArray<u8>,
    labels: npy::NpyArray<u8>,
    puzzle_indices: npy::NpyArray<i32>,
    group_indices: npy::NpyArray<i32>,
    identifiers: npy::NpyArray<i32>,
}

impl SplitArrays {
    fn read(split_dir: &Path, meta: &Metadata) -> Result<Self> {
        if meta.sets.len() != 1 {
            // The official loader concatenates sets; every official builder writes exactly one.
            return Err(DataError::format(
                split_dir.join("dataset.json"),
                "only a single set per split is supported",
            ));
        }
        let set = &meta.sets[0];
        let paths = FIELDS.map(|field| split_dir.join(format!("{set}__{field}.npy")));
        let inputs = npy::read::<u8>(&paths[0])?;
        let labels = npy::read::<u8>(&paths[1])?;
        // Read as i32, the official dtype: a larger offset is an error, never a wrapped value.
        let puzzle_indices = npy::read(&paths[2])?;
        let group_indices = npy::read(&paths[3])?;
        let identifiers = npy::read(&paths[4])?;
        Ok(SplitArrays {
            paths,
            inputs,
            labels,
            puzzle_indices,
            group_indices,
            identifiers,
        })
    }

    /// Inputs and labels: `[examples, seq_len]` alike, every token in the vocabulary.
    fn check_tokens(&self, meta: &Metadata) -> Result<()> {
        let seq_len = meta.seq_len;
        let (ip, lp) = (&self.paths[0], &self.paths[1]);
        for (path, array) in [(ip, &self.inputs), (lp, &self.labels)] {
            if array.shape.len() != 2 || array.shape[1] != seq_len {
                return Err(DataError::format(
                    path,
                    format!("shape {:?} does not match seq_len {seq_len}", array.shape),
                ));
            }
            if let Some((i, v)) = array
                .data
                .iter()
                .enumerate()
                .find(|(_, v)| **v as usize >= meta.vocab_size)
            {
                return Err(DataError::record(
                    path,
                    format!("example {}, position {}", i / seq_len, i % seq_len),
                    format!("token {v} outside the vocabulary 0..{}", meta.vocab_size),
                ));
            }
        }
        if self.inputs.shape != self.labels.shape {
            return Err(DataError::format(
                lp,
                format!(
                    "shape {:?} differs from inputs {:?}",
                    self.labels.shape, self.inputs.shape
                ),
            ));
        }
        Ok(())
    }

    /// Puzzle and group offsets, and one identifier within range per puzzle.
    fn check_indices(&self, meta: &Metadata) -> Result<()> {
        let (pp, gp, idp) = (&self.paths[2], &self.paths[3], &self.paths[4]);
        let n_examples = self.inputs.shape[0];
        let puzzle_indices = &self.puzzle_indices.data;
        check_offsets(pp, puzzle_indices, n_examples, "puzzle", "examples")?;
        let n_puzzles = puzzle_indices.len() - 1;
        check_offsets(gp, &self.group_indices.data, n_puzzles, "group", "puzzles")?;
        let identifiers = &self.identifiers.data;
        if identifiers.len() != n_puzzles {
            return Err(DataError::format(
                idp,
                format!(
                    "{} identifiers for {} puzzles",
                    identifiers.len(),
                    n_puzzles
                ),
            ));
        }
        if let Some((p, id)) = identifiers
            .iter()
            .enumerate()
            .find(|(_, id)| **id < 0 || **id as usize >= meta.num_puzzle_identifiers)
        {
            return Err(DataError::record(
                idp,
                format!("puzzle {p}"),
                format!("identifier {id} outside 0..{}", meta.num_puzzle_identifiers),
            ));
        }
        Ok(())
    }
}

/// Offsets of `unit`s (puzzles, groups) into `total` `items`: from 0 to `total`, each unit
/// holding at least one item (an empty group or puzzle cannot be sampled).
fn check_offsets(
    path: &Path,
    offsets: &[i32],
    total: usize,
    unit: &str,
    items: &str,
) -> Result<()> {
    if offsets.first() != Some(&0) {
        return Err(DataError::format(path, "offsets must start at 0"));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] <= w[0]) {
        return Err(DataError::record(
            path,
            format!("{unit} {i} (entries {i} and {})", i + 1),
            format!(
                "offsets {} then {}: every {unit} needs at least one of its {items}",
                offsets[i],
                offsets[i + 1]
            ),
        ));
    }
    let last = *offsets.last().unwrap();
    if last as i64 != total as i64 {
        return Err(DataError::format(
            path,
            format!("offsets end at {last} but there are {total} {items}"),
        ));
    }
    Ok(())
}
