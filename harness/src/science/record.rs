//! Result records: one per (model, task, preset, seed), as a JSON document with everything a
//! reviewer needs to trust or redo the number (the resolved config, the dataset's manifest
//! hash, the git commit, the device) and as a row of a CSV table. The schema is documented in
//! `results/README.md`; `SCHEMA_VERSION` changes whenever a field changes meaning.

use crate::run::device::Provenance;
use crate::run::eval::Evaluation;
use crate::run::pooled::PooledArc;
use crate::run::resolve::ResolvedRun;
use crate::run::train::TrainOutcome;
use crate::science::setting::Setting;
use anyhow::{Context, Result};
use datasets::format::LoadedDataset;
use models::flops::{parameter_counts, step_flops};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// 2: the setting (data source, overrides, differences from the recipe) decides the label;
/// the commit is the one that created the run; pooled ARC names its checkpoints.
/// 3: `metrics.test_time` (budgets of supervision steps, halting off and on) replaces
/// `metrics.exact_by_step`; `metrics.per_example` holds which examples were right;
/// `controls` (EMA, ACT in training, loop counts, augmentation) in the record and the CSV.
/// 4: `validation` (the last checkpoint on the validation split, which every choice reads),
/// `selection` (which split the choices read), `provenance` (processor, kernel path,
/// threads); the learning curve is on the validation split; pooled ARC counts the
/// eval-interval checkpoints only.
pub const SCHEMA_VERSION: u32 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub schema_version: u32,
    /// Seconds since the Unix epoch when the record was written.
    pub created_unix: u64,
    /// The run's place in its comparison (seed by seed, the models in the order compared,
    /// the first setting the budget) or sweep (its cell), so that records read back from a
    /// folder come back in that order; runs trained at once share `created_unix`.
    #[serde(default)]
    pub position: usize,
    /// The commit (`-dirty` when its code differed) of the binary that created the run.
    pub git_commit: String,
    /// Every code version that trained the run, the creating one first.
    pub code_versions: Vec<String>,
    pub harness_version: String,
    pub task: String,
    pub model: String,
    pub preset: String,
    /// The preset's description, the data source, the overrides and whether this is the
    /// papers' setting (derived from `setting`).
    pub preset_label: String,
    /// Where the data came from, the overrides, and every difference from the recipe.
    pub setting: Setting,
    pub seed: u64,
    /// How the training budget was matched across models: `steps`, `flops` or `recipe`.
    pub budget_match: String,
    pub device: String,
    /// Every processor setup that trained the run: its last bits, and over many steps its
    /// per-seed numbers, depend on them.
    #[serde(default)]
    pub provenance: Vec<Provenance>,
    pub dataset_dir: String,
    pub dataset_hash: String,
    pub train_steps: u64,
    pub global_batch_size: usize,
    /// The knobs a reviewer checks are alike across models.
    pub controls: Controls,
    /// Parameters the optimiser updates (the papers' "7M" / "27M").
    pub trainable_parameters: u64,
    /// Initial states and the puzzle-embedding table (trained by sign-SGD, or fixed).
    pub buffer_parameters: u64,
    pub puzzle_embedding_parameters: u64,
    /// Matmul FLOPs of the whole training run (forward, backward, HRM's Q-target forward).
    pub train_flops: f64,
    /// Matmul FLOPs to evaluate one puzzle (all supervision steps).
    pub inference_flops_per_puzzle: f64,
    pub train_wall_seconds: f64,
    /// The final evaluation of the last checkpoint on the whole test split.
    pub metrics: Evaluation,
    /// The last checkpoint on the whole validation split (trained budget only): what a
    /// sweep's choices read. None where the data has no validation split.
    #[serde(default)]
    pub validation: Option<Evaluation>,
    /// Which split each choice read.
    #[serde(default = "Selection::before_validation")]
    pub selection: Selection,
    /// ARC: votes of every checkpoint pooled, each scored on the whole test split.
    pub arc_pooled_over_checkpoints: Option<PooledArc>,
    /// Evaluations on the validation split during training and at the end: (step, exact
    /// accuracy on the examples evaluated then). Test before schema 4.
    pub learning_curve: Vec<(u64, datasets::score::Proportion)>,
    pub run_dir: String,
    pub config: ResolvedRun,
}

/// Which split each choice of a run read. The test split is scored once, at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The split of the evaluations during training (the learning curve a user watches and
    /// tunes by): `validation`; `test` in records before the validation split; `none` where
    /// the data has no validation split (then no evaluation ran during training).
    pub during_training: String,
    /// The checkpoint scored on test, fixed before training: `last`.
    pub scored_checkpoint: String,
}

impl Selection {
    fn of(data: &LoadedDataset) -> Selection {
        Selection {
            during_training: if data.val().is_some() {
                "validation"
            } else {
                "none"
            }
            .into(),
            scored_checkpoint: "last".into(),
        }
    }

    /// Records before schema 4 evaluated the test split during training.
    pub fn before_validation() -> Selection {
        Selection {
            during_training: "test".into(),
            scored_checkpoint: "last".into(),
        }
    }

    /// Whether any choice read the test split.
    pub fn read_test(&self) -> bool {
        self.during_training == "test" || self.scored_checkpoint != "last"
    }
}

/// Settings that decide a comparison's fairness, in every row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Controls {
    /// EMA rate of the evaluated weights; none: the live weights.
    pub ema: Option<f64>,
    /// ACT in training: slots halt early by the model's rule (`train.act`).
    pub act_in_training: bool,
    /// Supervision steps per example (`halt_max_steps`): the headline evaluation runs them
    /// all unless `halting_at_inference`; the other answer is reported beside it.
    pub supervision_steps: usize,
    /// The headline answer is taken at the model's halting step (`eval.halting`).
    #[serde(default)]
    pub halting_at_inference: bool,
    /// The outer loop (TRM's T, HRM's H cycles) and the inner one (n, L cycles).
    pub h_cycles: usize,
    pub l_cycles: usize,
    /// Training versions (augmentations, the original included) per original puzzle.
    pub train_versions_per_group: f64,
    /// The ablation switches as resolved (none in records before schema 5): depth of each
    /// module, the halting head's continue loss, the gradient's reach, the puzzle embedding.
    #[serde(default)]
    pub ablation: Option<Ablation>,
}

/// The model switches both papers ablate, as one run resolved them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    pub l_layers: usize,
    /// HRM's H module (the transformer baseline's stack); none for TRM (one network).
    pub h_layers: Option<usize>,
    /// The halting head learns a continue logit by Q-learning (`no_ACT_continue = false`,
    /// and more than one supervision step to bootstrap from).
    pub act_continue_loss: bool,
    /// `last-cycle` or `one-step` (`arch.gradient`).
    pub gradient: String,
    /// A learned per-puzzle embedding (`puzzle_emb_ndim > 0`); off is the inductive setting.
    pub puzzle_embedding: bool,
}

impl Controls {
    fn of(run: &ResolvedRun, data: &LoadedDataset) -> Self {
        let (t, m) = (&run.config.train, &run.model_config);
        let train = &data.data.train;
        Controls {
            ema: t.ema.then_some(t.ema_rate),
            act_in_training: t.act,
            supervision_steps: m.halt_max_steps,
            halting_at_inference: run.config.eval.halting,
            h_cycles: m.H_cycles,
            l_cycles: m.L_cycles,
            train_versions_per_group: train.num_puzzles() as f64 / train.num_groups().max(1) as f64,
            ablation: Some(Ablation::of(m, run.config.kind())),
        }
    }
}

impl Ablation {
    fn of(m: &models::config::ModelConfig, kind: models::model::ModelKind) -> Self {
        let levels = kind.levels(m);
        let depth = |name: &str| levels.iter().find(|l| l.name == name).map(|l| l.layers);
        Ablation {
            l_layers: depth("L_level").unwrap_or(0),
            h_layers: depth("H_level"),
            act_continue_loss: m.trains_continue(kind),
            gradient: match m.gradient(kind) {
                models::config::Gradient::LastCycle => "last-cycle".into(),
                models::config::Gradient::OneStep => "one-step".into(),
            },
            puzzle_embedding: m.puzzle_emb_ndim > 0,
        }
    }
}

impl ResultRecord {
    /// The record of a completed training run in `run_dir` on `data`.
    pub fn new(
        outcome: &TrainOutcome,
        run_dir: &Path,
        budget_match: &str,
        device: &str,
        data: &LoadedDataset,
    ) -> Result<Self> {
        let run = &outcome.run;
        let metrics = outcome
            .final_eval
            .clone()
            .context("a completed run has a final evaluation")?;
        let steps = outcome.steps;
        let kind = run.config.kind();
        let counts = parameter_counts(&run.model_config, kind);
        let flops = step_flops(&run.model_config, kind);
        let batch = run.config.train.global_batch_size;
        let setting = Setting::of(run, data)?;
        Ok(ResultRecord {
            schema_version: SCHEMA_VERSION,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            position: 0,
            git_commit: run.code_version.clone(),
            code_versions: outcome.code_versions.clone(),
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            task: run.config.task.clone(),
            model: run.config.model.clone(),
            preset: run.config.preset.clone(),
            preset_label: setting.label(&run.config.preset, &run.config.label),
            setting,
            seed: run.config.seed,
            budget_match: budget_match.to_string(),
            device: device.to_string(),
            provenance: outcome.provenance.clone(),
            dataset_dir: run.dataset_dir.display().to_string(),
            dataset_hash: run.dataset_hash.clone(),
            train_steps: steps,
            global_batch_size: batch,
            controls: Controls::of(run, data),
            trainable_parameters: counts.trainable,
            buffer_parameters: counts.buffers,
            puzzle_embedding_parameters: counts.puzzle_embedding,
            train_flops: flops.train_step * batch as f64 * steps as f64,
            inference_flops_per_puzzle: flops.eval_puzzle,
            train_wall_seconds: outcome.wall_seconds,
            metrics,
            validation: outcome.final_validation.clone(),
            selection: Selection::of(data),
            arc_pooled_over_checkpoints: outcome.arc_pooled.clone(),
            learning_curve: outcome
                .evals
                .iter()
                .filter(|p| p.split == crate::run::eval::EvalSplit::Validation)
                .map(|p| (p.step, p.evaluation.exact))
                .collect(),
            run_dir: run_dir.display().to_string(),
            config: run.clone(),
        })
    }
}

/// The first `n` characters of a hash for display (a hand-edited manifest may hold any text,
/// so this never slices inside a character).
pub fn short_hash(hash: &str, n: usize) -> String {
    hash.chars().take(n).collect()
}

/// The records of one comparison: a `compare` folder (its `results.json`), a `results.json`
/// file, or a folder of record files (ordered seed by seed, then as written, then by their
/// place in the comparison: the order `compare` gives them).
pub fn read_records(path: &Path) -> Result<Vec<ResultRecord>> {
    let list = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    if list.is_file() {
        return datasets::format::read_json(&list)
            .with_context(|| format!("reading result records from {}", list.display()));
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", path.display()))?;
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    files.sort();
    let mut records: Vec<ResultRecord> = files
        .iter()
        .map(|f| datasets::format::read_json(f).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<_>>()?;
    if records.is_empty() {
        anyhow::bail!(
            "{} holds no results.json and no record files",
            path.display()
        );
    }
    records.sort_by_key(|r| (r.seed, r.created_unix, r.position));
    Ok(records)
}

/// Records grouped by model, models in the order they first appear (records come seed by
/// seed, so one model's runs are not adjacent).
pub fn by_model(records: &[ResultRecord]) -> Vec<(&str, Vec<&ResultRecord>)> {
    let mut out: Vec<(&str, Vec<&ResultRecord>)> = Vec::new();
    for r in records {
        match out.iter_mut().find(|(m, _)| *m == r.model) {
            Some((_, runs)) => runs.push(r),
            None => out.push((r.model.as_str(), vec![r])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::by_model;

    #[test]
    fn runs_group_by_model_in_first_appearance_order() {
        // The committed reference run: 6 seeds x 2 models, written seed by seed.
        let records = crate::test_support::reference_records();
        let groups = by_model(&records);
        let models: Vec<&str> = groups.iter().map(|(m, _)| *m).collect();
        assert_eq!(models, ["trm-att", "hrm"]);
        assert!(groups
            .iter()
            .all(|(m, runs)| runs.len() == 6 && runs.iter().all(|r| r.model == *m)));
    }

    #[test]
    fn short_hashes_never_split_a_character() {
        assert_eq!(super::short_hash("abcdef", 4), "abcd");
        assert_eq!(super::short_hash("é✓ünïcödé-hash", 3), "é✓ü");
        assert_eq!(super::short_hash("ab", 12), "ab");
    }
}
