//! Builds an ARC dataset directory under one of two named split protocols:
//! - `arc-transductive` (the official one): every demonstration pair of every task, and the
//!   test pairs of non-evaluation tasks, are training data; the evaluation tasks' test pairs
//!   are the test set, and each shares its puzzle identifier (its learned embedding) with the
//!   same version's demonstrations in training;
//! - `arc-inductive` (strict): no data of an evaluation task is in training at all.
//!
//! Both carve a val split from the training side: a seeded subset of the training tasks
//! whose test pairs are held out of training and form `val/`, laid out as the evaluation
//! tasks' test pairs are in `test/` (every version; under `arc-transductive` sharing the
//! version's identifier with its demonstrations in training, under `arc-inductive` with no
//! data of the task in training).

use super::augment::{task_versions, ArcAugmentation};
use super::encode::{encode, SEQ_LEN, VOCAB_SIZE};
use super::{load_dir, load_kaggle, ArcPair, ArcTask, MAX_SIDE};
use crate::error::{DataError, Result};
use crate::format::{Dataset, PuzzleCount, Split};
use crate::manifest::{Manifest, Source};
use crate::sample::{stream_rng, subsample, val_size};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;
use std::collections::HashSet;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcVersion {
    Arc1,
    Arc2,
}

impl ArcVersion {
    pub fn task_name(self) -> &'static str {
        match self {
            ArcVersion::Arc1 => "arc-agi-1",
            ArcVersion::Arc2 => "arc-agi-2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcProtocol {
    Transductive,
    Inductive,
}

impl ArcProtocol {
    pub fn name(self) -> &'static str {
        match self {
            ArcProtocol::Transductive => "arc-transductive",
            ArcProtocol::Inductive => "arc-inductive",
        }
    }
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "arc-transductive" | "transductive" => Some(ArcProtocol::Transductive),
            "arc-inductive" | "inductive" => Some(ArcProtocol::Inductive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ArcSource {
    /// A public repository's `data` folder (or the folder holding `training/` and
    /// `evaluation/`), plus ConceptARC's `corpus/` if given.
    PublicDirs {
        root: PathBuf,
        concept: Option<PathBuf>,
    },
    /// TRM's `kaggle/combined` folder of `arc-agi_<subset>_{challenges,solutions}.json`.
    Kaggle { dir: PathBuf, concept: bool },
}

#[derive(Debug, Clone)]
pub struct ArcConfig {
    pub version: ArcVersion,
    pub source: ArcSource,
    pub protocol: ArcProtocol,
    /// Augmented versions per task beside the original (official 1000).
    pub num_aug: usize,
    pub seed: u64,
    /// Random placement of training grids in the canvas (official: on).
    pub translate: bool,
    /// Seeded subsets of tasks, for scaled-down runs.
    pub max_train_tasks: Option<usize>,
    pub max_eval_tasks: Option<usize>,
    /// Training tasks (after `max_train_tasks`) whose test pairs form the val split; `None`:
    /// 10% of them, at least 1. `Some(0)`: no val split (no `val/`, no `val_puzzles.json`):
    /// every training task's test pairs train, as in the official builder.
    pub val_tasks: Option<usize>,
}

/// What a task is in a build: trained on, held out for val, or an evaluation task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Train,
    Val,
    Eval,
}

/// The tasks of a build, by role.
pub struct ArcTasks {
    pub training: Vec<ArcTask>,
    pub evaluation: Vec<ArcTask>,
}

pub fn load_tasks(cfg: &ArcConfig) -> Result<ArcTasks> {
    let (train_set, eval_set) = match cfg.version {
        ArcVersion::Arc1 => ("training", "evaluation"),
        ArcVersion::Arc2 => ("training2", "evaluation2"),
    };
    let (training, evaluation) = match &cfg.source {
        ArcSource::PublicDirs { root, concept } => {
            let root = if root.join("data").is_dir() {
                root.join("data")
            } else {
                root.clone()
            };
            let mut training = load_dir(&root.join("training"), train_set)?;
            if let Some(c) = concept {
                training.extend(load_dir(c, "concept")?);
            }
            (training, load_dir(&root.join("evaluation"), eval_set)?)
        }
        ArcSource::Kaggle { dir, concept } => {
            let mut training = load_kaggle(dir, "arc-agi", train_set)?;
            if *concept {
                training.extend(load_kaggle(dir, "arc-agi", "concept")?);
            }
            (training, load_kaggle(dir, "arc-agi", eval_set)?)
        }
    };
    let eval_ids: std::collections::HashSet<&str> =
        evaluation.iter().map(|t| t.id.as_str()).collect();
    if let Some(t) = training.iter().find(|t| eval_ids.contains(t.id.as_str())) {
        return Err(DataError::config(format!(
            "task {} is both a training and an evaluation task",
            t.id
        )));
    }
    Ok(ArcTasks {
        training,
        evaluation,
    })
}

pub fn build(cfg: &ArcConfig) -> Result<(Dataset, Manifest)> {
    let (tasks, val_ids, n_val) = select_tasks(cfg)?;
    let ordered = ordered_tasks(&tasks, &val_ids);
    let versions = task_versions_in_order(cfg, &ordered);
    let splits = ArcSplits::build(cfg, &ordered, &versions);
    let overlaps = source_overlaps_with_val(&tasks, cfg.protocol, &val_ids);
    let extra_files = extra_files(cfg, &tasks, &ordered, &splits, &overlaps, &val_ids);
    let params = manifest_params(cfg, &tasks, n_val, &splits.val_groups, &versions, &overlaps);
    let dataset = Dataset {
        vocab_size: VOCAB_SIZE,
        num_puzzle_identifiers: splits.identifiers.len(),
        train: splits.train,
        test: splits.test,
        val: (n_val > 0).then_some(splits.val),
        identifiers: splits.identifiers,
        total_puzzles: PuzzleCount::Puzzles,
        extra_files,
    };
    let source = Source {
        kind: "arc-json".into(),
        description: source_description(&cfg.source),
        inputs: source_inputs(cfg)?,
    };
    Ok((
        dataset,
        Manifest::new(
            cfg.version.task_name(),
            cfg.protocol.name(),
            cfg.seed,
            source,
            params,
        ),
    ))
}

/// The tasks of a build after the seeded subsets, the ids of the training tasks held out
/// for val, and how many were drawn; subsets and val draw from one stream, in that order.
fn select_tasks(cfg: &ArcConfig) -> Result<(ArcTasks, HashSet<String>, usize)> {
    let mut tasks = load_tasks(cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    subsample(&mut tasks.training, cfg.max_train_tasks, &mut rng);
    subsample(&mut tasks.evaluation, cfg.max_eval_tasks, &mut rng);
    if tasks.training.is_empty() || tasks.evaluation.is_empty() {
        return Err(DataError::config(
            "no training or no evaluation tasks to build from",
        ));
    }
    let n_val = val_size(
        cfg.val_tasks,
        tasks.training.len(),
        "val-tasks",
        "training task",
    )?;
    let val_ids: HashSet<String> = rand::seq::index::sample(&mut rng, tasks.training.len(), n_val)
        .into_iter()
        .map(|i| tasks.training[i].id.clone())
        .collect();
    Ok((tasks, val_ids, n_val))
}

/// Every task with its role: training tasks (val among them), then evaluation tasks.
fn ordered_tasks<'a>(tasks: &'a ArcTasks, val_ids: &HashSet<String>) -> Vec<(&'a ArcTask, Role)> {
    // Val tasks keep their place among the training tasks: every task's versions come from
    // the same stream as in a build without val.
    tasks
        .training
        .iter()
        .map(|t| {
            let role = if val_ids.contains(&t.id) {
                Role::Val
            } else {
                Role::Train
            };
            (t, role)
        })
        .chain(tasks.evaluation.iter().map(|t| (t, Role::Eval)))
        .collect()
}

/// Versions per task from the task's own stream: reproducible whatever the thread count.
fn task_versions_in_order(
    cfg: &ArcConfig,
    ordered: &[(&ArcTask, Role)],
) -> Vec<Vec<ArcAugmentation>> {
    ordered
        .par_iter()
        .enumerate()
        .map(|(i, (task, _))| {
            task_versions(task, cfg.num_aug, &mut stream_rng(cfg.seed, 1 + i as u64))
        })
        .collect()
}

/// The splits as they fill, version by version, with every version's identifier name and
/// the task of each group of each split.
struct ArcSplits {
    train: Split,
    test: Split,
    val: Split,
    identifiers: Vec<String>,
    train_groups: Vec<String>,
    test_groups: Vec<String>,
    val_groups: Vec<String>,
}

impl ArcSplits {
    /// One translation stream for the whole build, drawn from in task order.
    fn build(
        cfg: &ArcConfig,
        ordered: &[(&ArcTask, Role)],
        versions: &[Vec<ArcAugmentation>],
    ) -> Self {
        let mut splits = ArcSplits {
            train: Split::new(SEQ_LEN),
            test: Split::new(SEQ_LEN),
            val: Split::new(SEQ_LEN),
            identifiers: vec!["<blank>".to_string()],
            train_groups: Vec::new(),
            test_groups: Vec::new(),
            val_groups: Vec::new(),
        };
        let mut translate_rng = stream_rng(cfg.seed, 0);
        for ((task, role), task_versions) in ordered.iter().zip(versions) {
            for aug in task_versions {
                splits.add_version(cfg, task, *role, aug, &mut translate_rng);
            }
            splits.close_groups(task, *role);
        }
        splits
    }

    /// One version of a task: a new identifier, its training pairs as one training puzzle,
    /// its held-out test pairs as one val or test puzzle.
    fn add_version(
        &mut self,
        cfg: &ArcConfig,
        task: &ArcTask,
        role: Role,
        aug: &ArcAugmentation,
        translate_rng: &mut ChaCha8Rng,
    ) {
        // Held-out tasks (val and evaluation) keep their demonstrations in training under
        // the transductive protocol only; their test pairs are never trained on.
        let held_out = role != Role::Train;
        let demos_in_training = !(held_out && cfg.protocol == ArcProtocol::Inductive);
        let id = self.identifiers.len() as i32;
        self.identifiers.push(aug.name(&task.id));
        let mut train_pairs = if demos_in_training {
            augmented(aug, &task.train)
        } else {
            Vec::new()
        };
        if !held_out {
            train_pairs.extend(augmented(aug, &task.test));
        }
        if !train_pairs.is_empty() {
            let encoded = encode_pairs(&train_pairs, cfg.translate, translate_rng);
            self.train
                .add_puzzle(id, encoded.iter().map(|(i, o)| (&i[..], &o[..])));
        }
        if held_out {
            let encoded = encode_pairs(&augmented(aug, &task.test), false, translate_rng);
            let split = if role == Role::Val {
                &mut self.val
            } else {
                &mut self.test
            };
            split.add_puzzle(id, encoded.iter().map(|(i, o)| (&i[..], &o[..])));
        }
    }

    /// A task's versions make one group in each split they went to.
    fn close_groups(&mut self, task: &ArcTask, role: Role) {
        if self.train.num_puzzles() > *self.train.group_indices.last().unwrap() as usize {
            self.train.close_group();
            self.train_groups.push(task.id.clone());
        }
        match role {
            Role::Eval => {
                self.test.close_group();
                self.test_groups.push(task.id.clone());
            }
            Role::Val => {
                self.val.close_group();
                self.val_groups.push(task.id.clone());
            }
            Role::Train => {}
        }
    }
}

fn augmented(aug: &ArcAugmentation, pairs: &[ArcPair]) -> Vec<ArcPair> {
    pairs
        .iter()
        .map(|p| ArcPair {
            input: aug.apply(&p.input),
            output: aug.apply(&p.output),
        })
        .collect()
}

/// `tasks.json` (the audit's evaluation and val tasks and declared overlaps), and the
/// held-out tasks' original pairs.
fn extra_files(
    cfg: &ArcConfig,
    tasks: &ArcTasks,
    ordered: &[(&ArcTask, Role)],
    splits: &ArcSplits,
    overlaps: &SourceOverlaps,
    val_ids: &HashSet<String>,
) -> Vec<(String, Vec<u8>)> {
    let sets: std::collections::BTreeMap<&str, &str> = ordered
        .iter()
        .map(|(t, _)| (t.id.as_str(), t.set.as_str()))
        .collect();
    let (train_groups, test_groups, val_groups) = (
        &splits.train_groups,
        &splits.test_groups,
        &splits.val_groups,
    );
    let tasks_json = json!({
        "protocol": cfg.protocol.name(), "sets": sets, "train_groups": train_groups, "test_groups": test_groups,
        "val_groups": val_groups, "source_overlaps": overlaps,
    });
    let mut extra_files = vec![
        (
            "tasks.json".into(),
            serde_json::to_vec_pretty(&tasks_json).expect("serialisable"),
        ),
        (
            "test_puzzles.json".into(),
            puzzles_json(&mut tasks.evaluation.iter()),
        ),
    ];
    if !val_ids.is_empty() {
        // The val tasks' original pairs, as test_puzzles.json has the evaluation tasks'.
        extra_files.push((
            "val_puzzles.json".into(),
            puzzles_json(&mut tasks.training.iter().filter(|t| val_ids.contains(&t.id))),
        ));
    }
    extra_files
}

fn puzzles_json(held_out: &mut dyn Iterator<Item = &ArcTask>) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> =
        held_out.map(|t| (t.id.clone(), task_json(t))).collect();
    serde_json::to_vec(&map).expect("serialisable")
}

fn source_description(source: &ArcSource) -> String {
    match source {
        ArcSource::PublicDirs { root, concept } => format!(
            "public ARC JSON from {}{}",
            root.display(),
            concept
                .as_ref()
                .map(|c| format!(" + ConceptARC {}", c.display()))
                .unwrap_or_default()
        ),
        ArcSource::Kaggle { dir, concept } => format!(
            "Kaggle combined files in {}{}",
            dir.display(),
            if *concept { " with concept" } else { "" }
        ),
    }
}

fn manifest_params(
    cfg: &ArcConfig,
    tasks: &ArcTasks,
    n_val: usize,
    val_groups: &[String],
    versions: &[Vec<ArcAugmentation>],
    overlaps: &SourceOverlaps,
) -> serde_json::Value {
    let not_full = versions
        .iter()
        .filter(|v| v.len() < cfg.num_aug + 1)
        .count();
    json!({
        "num_aug": cfg.num_aug, "translate": cfg.translate,
        "max_train_tasks": cfg.max_train_tasks, "max_eval_tasks": cfg.max_eval_tasks,
        "val_tasks": cfg.val_tasks, "val_task_ids": val_groups,
        "training_tasks": tasks.training.len() - n_val, "evaluation_tasks": tasks.evaluation.len(),
        "tasks_with_fewer_versions": not_full,
        "source_overlap_test_inputs": overlaps.test_inputs.len(), "source_overlap_test_pairs": overlaps.test_pairs.len(),
        "source_overlap_val_inputs": overlaps.val_inputs.len(), "source_overlap_val_pairs": overlaps.val_pairs.len(),
        "source_overlap_val_pairs_in_test": overlaps.val_pairs_in_test.len(),
    })
}

/// The sha256 of every input the build read: one record per task folder (public
/// repositories, ConceptARC) or per Kaggle file, so that whether the data is the official
/// one can be checked against known hashes rather than taken from the source's name.
fn source_inputs(cfg: &ArcConfig) -> Result<Vec<crate::manifest::FileRecord>> {
    use crate::manifest::{hash_file, hash_folder};
    let (train_set, eval_set) = match cfg.version {
        ArcVersion::Arc1 => ("training", "evaluation"),
        ArcVersion::Arc2 => ("training2", "evaluation2"),
    };
    match &cfg.source {
        ArcSource::PublicDirs { root, concept } => {
            let root = if root.join("data").is_dir() {
                root.join("data")
            } else {
                root.clone()
            };
            let mut out = vec![
                hash_folder(&root.join("training"), "training/".into())?,
                hash_folder(&root.join("evaluation"), "evaluation/".into())?,
            ];
            if let Some(c) = concept {
                out.push(hash_folder(c, "ConceptARC corpus/".into())?);
            }
            Ok(out)
        }
        ArcSource::Kaggle { dir, concept } => {
            let mut subsets = vec![train_set, eval_set];
            if *concept {
                subsets.push("concept");
            }
            let mut out = Vec::new();
            for subset in subsets {
                for kind in ["challenges", "solutions"] {
                    let name = format!("arc-agi_{subset}_{kind}.json");
                    out.push(hash_file(&dir.join(&name), name)?);
                }
            }
            Ok(out)
        }
    }
}

/// Test pairs of evaluation tasks that the source data itself repeats in what goes to
/// training, up to the augmentation group (e.g. an ARC-AGI-1 evaluation test pair that is a
/// reflection of one of its own demonstrations, or equal to a training task's pair). Each is
/// named `<task>#<test index>`. The same for the val tasks' test pairs, and for val test
/// pairs that are also an evaluation task's test pair. The builder records them so that the
/// audit can tell these properties of the benchmark from leaks introduced by a split.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SourceOverlaps {
    pub test_inputs: Vec<String>,
    pub test_pairs: Vec<String>,
    #[serde(default)]
    pub val_inputs: Vec<String>,
    #[serde(default)]
    pub val_pairs: Vec<String>,
    /// Val test pairs equal, up to the augmentation group, to an evaluation test pair.
    #[serde(default)]
    pub val_pairs_in_test: Vec<String>,
}

/// The overlaps of a build without a val split.
pub fn source_overlaps(tasks: &ArcTasks, protocol: ArcProtocol) -> SourceOverlaps {
    source_overlaps_with_val(tasks, protocol, &HashSet::new())
}

/// The overlaps of a build whose val tasks are the training tasks named in `val_tasks`.
pub fn source_overlaps_with_val(
    tasks: &ArcTasks,
    protocol: ArcProtocol,
    val_tasks: &HashSet<String>,
) -> SourceOverlaps {
    use super::augment::canonical_key;
    let mut inputs = HashSet::new();
    let mut pairs = HashSet::new();
    let mut add = |p: &ArcPair| {
        inputs.insert(canonical_key(&[&p.input]));
        pairs.insert(canonical_key(&[&p.input, &p.output]));
    };
    let transductive = protocol == ArcProtocol::Transductive;
    let (val, training): (Vec<&ArcTask>, Vec<&ArcTask>) = tasks
        .training
        .iter()
        .partition(|t| val_tasks.contains(&t.id));
    for t in &training {
        t.train.iter().chain(&t.test).for_each(&mut add);
    }
    if transductive {
        val.iter()
            .copied()
            .chain(&tasks.evaluation)
            .flat_map(|t| &t.train)
            .for_each(&mut add);
    }
    let mut out = SourceOverlaps::default();
    let mut test_pair_keys = HashSet::new();
    for t in &tasks.evaluation {
        for (i, p) in t.test.iter().enumerate() {
            let pair = canonical_key(&[&p.input, &p.output]);
            test_pair_keys.insert(pair);
            if inputs.contains(&canonical_key(&[&p.input])) {
                out.test_inputs.push(format!("{}#{i}", t.id));
            }
            if pairs.contains(&pair) {
                out.test_pairs.push(format!("{}#{i}", t.id));
            }
        }
    }
    for t in &val {
        for (i, p) in t.test.iter().enumerate() {
            let pair = canonical_key(&[&p.input, &p.output]);
            if inputs.contains(&canonical_key(&[&p.input])) {
                out.val_inputs.push(format!("{}#{i}", t.id));
            }
            if pairs.contains(&pair) {
                out.val_pairs.push(format!("{}#{i}", t.id));
            }
            if test_pair_keys.contains(&pair) {
                out.val_pairs_in_test.push(format!("{}#{i}", t.id));
            }
        }
    }
    out
}

/// Encodes the pairs of one puzzle. With `translate`, each pair gets a random offset that
/// fits both grids, except one randomly chosen pair that stays at the corner.
fn encode_pairs(
    pairs: &[ArcPair],
    translate: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let anchored = if translate {
        rng.random_range(0..pairs.len())
    } else {
        0
    };
    pairs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (r0, c0) = if translate && i != anchored {
                let h = p.input.height.max(p.output.height);
                let w = p.input.width.max(p.output.width);
                (
                    rng.random_range(0..=MAX_SIDE - h),
                    rng.random_range(0..=MAX_SIDE - w),
                )
            } else {
                (0, 0)
            };
            (encode(&p.input, r0, c0), encode(&p.output, r0, c0))
        })
        .collect()
}

fn task_json(t: &ArcTask) -> serde_json::Value {
    let grid = |g: &crate::grid::Grid| -> Vec<Vec<u8>> {
        g.cells.chunks(g.width).map(|r| r.to_vec()).collect()
    };
    let pairs = |ps: &[ArcPair]| -> Vec<serde_json::Value> {
        ps.iter()
            .map(|p| json!({ "input": grid(&p.input), "output": grid(&p.output) }))
            .collect()
    };
    json!({ "train": pairs(&t.train), "test": pairs(&t.test) })
}
