//! `manifest.json`: our record of what a dataset directory is and how it was made. The
//! official builders leave the subset, seeds and split to chance; the manifest pins them,
//! with the sha256 of every file so any later change to the data is detected.

use crate::error::{DataError, Result};
use crate::format::Dataset;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

pub const MANIFEST_FILE: &str = "manifest.json";
/// Bumped whenever a builder's output for the same inputs and seed changes.
pub const BUILDER_VERSION: &str = "2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub task: String,
    pub builder_version: String,
    /// The split protocol the data promises to respect (e.g. `sudoku-equivalence-disjoint`,
    /// `arc-transductive`); `harness audit` holds the data to it.
    pub protocol: String,
    pub seed: u64,
    pub source: Source,
    /// Every builder parameter, so a build can be repeated exactly.
    pub params: serde_json::Value,
    pub splits: BTreeMap<String, SplitCounts>,
    pub files: BTreeMap<String, FileRecord>,
    /// sha256 over the sorted (file, sha256) list: one value naming this exact data.
    pub dataset_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `official-csv`, `puzzle-list`, `generator`, `arc-json`, ...
    pub kind: String,
    pub description: String,
    /// Input files with their sha256, when the data came from files.
    pub inputs: Vec<FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub groups: usize,
    pub puzzles: usize,
    pub examples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

impl Manifest {
    pub fn new(
        task: &str,
        protocol: &str,
        seed: u64,
        source: Source,
        params: serde_json::Value,
    ) -> Self {
        Manifest {
            task: task.to_string(),
            builder_version: BUILDER_VERSION.to_string(),
            protocol: protocol.to_string(),
            seed,
            source,
            params,
            splits: BTreeMap::new(),
            files: BTreeMap::new(),
            dataset_hash: String::new(),
        }
    }

    /// Fills in counts (of every split, val included when present) and hashes (of every
    /// file below `dir`, `val/` included) from the files just written to `dir`.
    pub fn complete(mut self, dir: &Path, dataset: &Dataset) -> Result<Self> {
        self.splits.clear();
        for (name, s) in dataset.splits() {
            self.splits.insert(
                name.to_string(),
                SplitCounts {
                    groups: s.num_groups(),
                    puzzles: s.num_puzzles(),
                    examples: s.num_examples(),
                },
            );
        }
        self.files = hash_tree(dir)?;
        self.dataset_hash = combined_hash(&self.files);
        Ok(self)
    }

    /// Compares the files on disk with the recorded hashes; returns one line per problem.
    pub fn verify(&self, dir: &Path) -> Result<Vec<String>> {
        let actual = hash_tree(dir)?;
        let mut problems = Vec::new();
        for (name, record) in &self.files {
            match actual.get(name) {
                None => problems.push(format!("{name}: listed in the manifest but missing")),
                Some(a) if a.sha256 != record.sha256 => problems.push(format!(
                    "{name}: sha256 {} differs from the manifest's {}",
                    a.sha256, record.sha256
                )),
                _ => {}
            }
        }
        for name in actual.keys().filter(|n| !self.files.contains_key(*n)) {
            problems.push(format!("{name}: present but not in the manifest"));
        }
        if combined_hash(&self.files) != self.dataset_hash {
            problems.push("dataset_hash does not match the listed file hashes".to_string());
        }
        Ok(problems)
    }
}

/// sha256 of every file below `dir` except the manifest, keyed by relative path.
fn hash_tree(dir: &Path) -> Result<BTreeMap<String, FileRecord>> {
    let mut out = BTreeMap::new();
    for path in crate::fsio::files_below(dir)? {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if rel != MANIFEST_FILE {
            out.insert(rel.clone(), hash_file(&path, rel)?);
        }
    }
    Ok(out)
}

/// One record for a whole folder of input files (an ARC repository's `training/`): the
/// sha256 over its sorted (relative path, sha256) list, as `dataset_hash` is over a dataset's
/// files, and their total size. Equal for equal contents wherever the folder lies.
pub fn hash_folder(dir: &Path, name: String) -> Result<FileRecord> {
    if !dir.is_dir() {
        return Err(DataError::format(dir, "folder not found"));
    }
    let files = hash_tree(dir)?;
    Ok(FileRecord {
        path: name,
        sha256: combined_hash(&files),
        bytes: files.values().map(|f| f.bytes).sum(),
    })
}

pub fn hash_file(path: &Path, name: String) -> Result<FileRecord> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(FileRecord {
        path: name,
        sha256: hex(&hasher.finalize()),
        bytes,
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn combined_hash(files: &BTreeMap<String, FileRecord>) -> String {
    let mut hasher = Sha256::new();
    for (name, record) in files {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(record.sha256.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
