//! Run configurations: presets as TOML files, resolved for one (task, model) pair, with
//! `--set key=value` overrides. A preset holds shared sections (`data`, `arch`, `train`,
//! `eval`) that `models.<model>`, `tasks.<task>` and `tasks.<task>.models.<model>` refine, in
//! that order; `--set` comes last. The resolved config is what a run directory records.

use anyhow::{anyhow, bail, Context, Result};
use models::config::ModelConfig;
use models::loss::LossType;
use models::model::ModelKind;
use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::{Table, Value};

/// Presets shipped in the binary (`harness/presets/*.toml`).
pub const BUILTIN_PRESETS: [(&str, &str); 3] = [
    ("paper", include_str!("../../presets/paper.toml")),
    ("cpu", include_str!("../../presets/cpu.toml")),
    ("smoke", include_str!("../../presets/smoke.toml")),
];

/// The papers' models, then the official repository's ablation variants.
pub const MODELS: [&str; 6] = [
    "trm-att",
    "trm-mlp",
    "hrm",
    "trm-singlez",
    "trm-hier6",
    "transformer",
];
pub const TASKS: [&str; 5] = [
    "sudoku-extreme",
    "sudoku-small",
    "maze-hard",
    "arc-agi-1",
    "arc-agi-2",
];

/// Architecture fields that come from the data and the batch, never from a config.
const DERIVED_ARCH_KEYS: [&str; 4] = [
    "seq_len",
    "vocab_size",
    "num_puzzle_identifiers",
    "batch_size",
];

/// Everything one training run needs, as resolved from a preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub preset: String,
    /// What the preset is, shown beside every number it produces (e.g. "scaled-down").
    pub label: String,
    pub task: String,
    pub model: String,
    pub seed: u64,
    /// The `--set` overrides applied after the preset, as given.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// `harness data build` arguments (the same names, in kebab case).
    pub data: Table,
    /// The model's architecture under the official names; `seq_len`, `vocab_size`,
    /// `num_puzzle_identifiers` and `batch_size` come from the data and `train`.
    pub arch: Table,
    pub train: TrainConfig,
    pub eval: EvalConfig,
}

fn official_act() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer steps; exactly one of `steps` and `epochs` is given.
    pub steps: Option<u64>,
    /// The official budget: `steps = floor(epochs * groups * mean examples / batch)`.
    pub epochs: Option<f64>,
    pub global_batch_size: usize,
    pub lr: f64,
    pub lr_min_ratio: f64,
    pub lr_warmup_steps: u64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub puzzle_emb_lr: f64,
    pub puzzle_emb_weight_decay: f64,
    /// `stablemax_cross_entropy` or `softmax_cross_entropy`.
    pub loss: String,
    /// Evaluate (and checkpoint) with the EMA weights (TRM's recipe; HRM has none).
    pub ema: bool,
    /// ACT in training: a slot halts early when the model's rule says so (the official
    /// loop); false runs every slot through all `halt_max_steps` (an ablation).
    #[serde(default = "official_act")]
    pub act: bool,
    pub ema_rate: f64,
    /// Evaluate and checkpoint every this many steps (and at the end).
    pub eval_interval: u64,
    /// Rows of `metrics.csv`: one per this many steps.
    pub log_interval: u64,
    /// Checkpoints kept after each save: the last this many, plus on ARC every scheduled one,
    /// whose votes pooling reads (`run_dir::Retention`). Left out of `config.json` at its
    /// default, so runs saved before it existed resume.
    #[serde(
        default = "default_keep_checkpoints",
        skip_serializing_if = "is_default_keep_checkpoints"
    )]
    pub keep_checkpoints: usize,
}

fn default_keep_checkpoints() -> usize {
    2
}

fn is_default_keep_checkpoints(keep: &usize) -> bool {
    *keep == default_keep_checkpoints()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    pub batch_size: usize,
    /// Evaluate on the first this many test examples during training (the final evaluation
    /// always uses them all); none = all.
    pub max_examples_during_training: Option<usize>,
    /// Test-time compute: budgets of supervision steps at which the final evaluation also
    /// scores the model, with halting off and on (beyond `halt_max_steps` the recursion
    /// continues); the trained budget is always scored.
    #[serde(default)]
    pub test_time_steps: Vec<usize>,
    /// Halting at inference: the headline answer is each example's prediction at its model's
    /// own halting step (TRM: q_halt > 0; HRM: q_halt > q_continue), capped at
    /// `halt_max_steps`. Off (the official evaluation): the prediction after every step.
    #[serde(default)]
    pub halting: bool,
}

impl RunConfig {
    pub fn kind(&self) -> ModelKind {
        match self.model.as_str() {
            "hrm" => ModelKind::Hrm,
            "trm-singlez" => ModelKind::TrmSingleZ,
            "trm-hier6" => ModelKind::TrmHier6,
            "transformer" => ModelKind::Transformer,
            _ => ModelKind::Trm,
        }
    }

    pub fn loss(&self) -> Result<LossType> {
        match self.train.loss.as_str() {
            "stablemax_cross_entropy" => Ok(LossType::StablemaxCrossEntropy),
            "softmax_cross_entropy" => Ok(LossType::SoftmaxCrossEntropy),
            other => bail!(
                "train.loss {other:?} is not a loss (stablemax_cross_entropy or softmax_cross_entropy)"
            ),
        }
    }

    /// The architecture for data with this sequence length, vocabulary and identifier count.
    pub fn model_config(
        &self,
        seq_len: usize,
        vocab_size: usize,
        num_puzzle_identifiers: usize,
    ) -> Result<ModelConfig> {
        let mut arch = self.arch.clone();
        let derived = [
            seq_len,
            vocab_size,
            num_puzzle_identifiers,
            self.train.global_batch_size,
        ];
        for (key, value) in DERIVED_ARCH_KEYS.into_iter().zip(derived) {
            arch.insert(key.into(), Value::Integer(value as i64));
        }
        let cfg: ModelConfig = Value::Table(arch)
            .try_into()
            .map_err(|e| anyhow!("arch: {e}"))?;
        cfg.validate().map_err(|e| anyhow!("arch: {e}"))?;
        Ok(cfg)
    }

    /// Checks what deserialisation cannot: keys the architecture does not have, and
    /// combinations that make no sense.
    pub fn validate(&self) -> Result<()> {
        let known = ModelConfig::field_names();
        for key in self.arch.keys() {
            if DERIVED_ARCH_KEYS.contains(&key.as_str()) {
                bail!("arch.{key} comes from the data (batch_size from train.global_batch_size); it cannot be set");
            }
            if !known.contains(key) {
                let mut settable: Vec<&str> = known
                    .iter()
                    .map(String::as_str)
                    .filter(|k| !DERIVED_ARCH_KEYS.contains(k))
                    .collect();
                settable.sort_unstable();
                bail!(
                    "arch.{key} is not an architecture key (the keys are {})",
                    settable.join(", ")
                );
            }
        }
        crate::run::build::build_args_from_table(&self.data, Path::new("unused"))?;
        let t = &self.train;
        match (t.steps, t.epochs) {
            (Some(0), _) => bail!("train.steps must be at least 1"),
            (Some(_), Some(_)) => bail!("give train.steps or train.epochs, not both"),
            (None, None) => bail!("give train.steps or train.epochs"),
            (None, Some(e)) if e <= 0.0 => bail!("train.epochs must be positive"),
            _ => {}
        }
        if t.global_batch_size == 0 || self.eval.batch_size == 0 {
            bail!("train.global_batch_size and eval.batch_size must be at least 1");
        }
        if t.eval_interval == 0 || t.log_interval == 0 {
            bail!("train.eval_interval and train.log_interval must be at least 1");
        }
        if t.keep_checkpoints == 0 {
            bail!("train.keep_checkpoints must be at least 1: a run continues from its last checkpoint");
        }
        if self.eval.test_time_steps.contains(&0) {
            bail!("eval.test_time_steps must be budgets of at least 1 supervision step");
        }
        if t.lr <= 0.0 || t.puzzle_emb_lr < 0.0 {
            bail!("train.lr must be positive and train.puzzle_emb_lr not negative");
        }
        if !(0.0..=1.0).contains(&t.lr_min_ratio) {
            bail!("train.lr_min_ratio must lie in [0, 1]");
        }
        if !(0.0..1.0).contains(&t.beta1) || !(0.0..1.0).contains(&t.beta2) {
            bail!("train.beta1 and train.beta2 must lie in [0, 1)");
        }
        if t.ema && !(0.0..1.0).contains(&t.ema_rate) {
            bail!("train.ema_rate must lie in [0, 1)");
        }
        self.loss()?;
        self.check_ablation_switches()
    }

    /// Switches the model would otherwise ignore without a word (the run recorded as if they
    /// applied), and values no model knows.
    fn check_ablation_switches(&self) -> Result<()> {
        let arch = |key: &str| self.arch.get(key);
        let integer = |key: &str, default| arch(key).and_then(Value::as_integer).unwrap_or(default);
        let kind = self.kind();
        if kind.is_trm() && integer("H_layers", 0) != 0 {
            bail!("arch.H_layers is the depth of HRM's H module; {} has one network, whose depth is arch.L_layers", self.model);
        }
        if !kind.is_trm() && arch("mlp_t").and_then(Value::as_bool) == Some(true) {
            bail!("arch.mlp_t (a sequence-axis MLP instead of attention) is TRM-MLP's; {} has no such variant", self.model);
        }
        if kind == ModelKind::Transformer {
            if integer("H_cycles", 1) != 1
                || integer("L_cycles", 1) != 1
                || integer("L_layers", 0) != 0
            {
                bail!("the transformer baseline has no cycles and no L level (one pass of arch.H_layers blocks per supervision step): arch.H_cycles and arch.L_cycles must be 1 and arch.L_layers 0");
            }
            if arch("gradient").is_some() {
                bail!("arch.gradient chooses how much of a recursion trains; the transformer baseline has none (its one pass always trains)");
            }
        }
        if let Some(g) = arch("gradient") {
            if !matches!(g.as_str(), Some("last-cycle" | "one-step")) {
                bail!("arch.gradient = {g}: the gradient reaches the last-cycle (TRM's own) or one-step (HRM's own)");
            }
        }
        Ok(())
    }

    /// Optimizer steps for a training split of `groups` groups of `mean_examples` examples.
    pub fn total_steps(&self, groups: usize, mean_examples: f64) -> u64 {
        match (self.train.steps, self.train.epochs) {
            (Some(s), _) => s,
            (None, Some(e)) => ((e * groups as f64 * mean_examples)
                / self.train.global_batch_size as f64)
                .floor()
                .max(1.0) as u64,
            (None, None) => 1,
        }
    }
}

/// A preset's text and where it came from (a built-in name or a file).
pub struct Preset {
    pub name: String,
    pub table: Table,
}

impl Preset {
    /// A preset from its TOML text; `name` names it in errors and records.
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let table: Table =
            toml::from_str(text).with_context(|| format!("parsing preset {name}"))?;
        Ok(Preset {
            name: name.to_string(),
            table,
        })
    }

    /// A built-in preset by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Some((name, text)) = BUILTIN_PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            return Preset::parse(name, text);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = BUILTIN_PRESETS.iter().map(|(n, _)| *n).collect();
            bail!(
                "preset {name_or_path:?} is neither a built-in preset ({}) nor a file",
                names.join(", ")
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading preset {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name_or_path.to_string());
        Preset::parse(&name, &text).with_context(|| format!("in {}", path.display()))
    }

    /// The run configuration of `model` on `task`, with `overrides` (`key.path=value`).
    pub fn resolve(&self, task: &str, model: &str, overrides: &[String]) -> Result<RunConfig> {
        if !TASKS.contains(&task) {
            bail!("unknown task {task:?} (one of {})", TASKS.join(", "));
        }
        if !MODELS.contains(&model) {
            bail!("unknown model {model:?} (one of {})", MODELS.join(", "));
        }
        let mut base = self.table.clone();
        let models = base.remove("models");
        let tasks = base.remove("tasks");
        base.remove("name");
        let section = |v: &Option<Value>, key: &str| -> Option<Table> {
            v.as_ref()
                .and_then(|v| v.get(key))
                .and_then(|v| v.as_table())
                .cloned()
        };
        let task_section = section(&tasks, task);
        let Some(mut task_section) = task_section else {
            bail!("preset {} has no settings for task {task}", self.name);
        };
        let task_models = task_section.remove("models");
        let mut resolved = base;
        if let Some(m) = section(&models, model) {
            merge(&mut resolved, m);
        }
        merge(&mut resolved, task_section);
        if let Some(m) = section(&task_models, model) {
            merge(&mut resolved, m);
        }
        for o in overrides {
            apply_override(&mut resolved, o)?;
        }
        resolved.insert("preset".into(), Value::String(self.name.clone()));
        resolved.insert("task".into(), Value::String(task.into()));
        resolved.insert("model".into(), Value::String(model.into()));
        resolved.insert(
            "overrides".into(),
            Value::Array(overrides.iter().cloned().map(Value::String).collect()),
        );
        let cfg: RunConfig = Value::Table(resolved).try_into().map_err(|e| {
            anyhow!(
                "preset {} for {model} on {task}: {}",
                self.name,
                e.to_string().trim()
            )
        })?;
        cfg.validate()
            .with_context(|| format!("preset {} for {model} on {task}", self.name))?;
        Ok(cfg)
    }
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// `train.steps=200`, `arch.hidden_size=64`, `label="x"`: the value is read as TOML, and as a
/// string when it is not valid TOML (so `data.source=generator` works unquoted).
pub fn apply_override(table: &mut Table, text: &str) -> Result<()> {
    let Some((key, raw)) = text.split_once('=') else {
        bail!("--set {text:?}: expected key=value");
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("--set {text:?}: the key is empty");
    }
    let value = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("--set {text:?}: {part} is not a section"))?;
    }
    // A budget given in steps replaces the preset's epochs, and the other way round: they
    // are two ways to say one thing.
    let budget_twin = match key {
        "train.steps" => Some("epochs"),
        "train.epochs" => Some("steps"),
        _ => None,
    };
    if let Some(twin) = budget_twin {
        node.remove(twin);
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_preset_resolves_for_every_task_and_model() {
        for (name, _) in BUILTIN_PRESETS {
            let preset = Preset::load(name).unwrap();
            for task in TASKS {
                for model in MODELS {
                    let cfg = preset.resolve(task, model, &[]).unwrap_or_else(|e| {
                        panic!("{name} {task} {model}: {e:#}");
                    });
                    assert_eq!(cfg.kind() == ModelKind::Hrm, model == "hrm");
                    assert_eq!(cfg.kind().is_trm(), model.starts_with("trm"));
                    cfg.model_config(81, 11, 1).unwrap_or_else(|e| {
                        panic!("{name} {task} {model}: {e:#}");
                    });
                }
            }
        }
    }

    #[test]
    fn overrides_apply_last_and_typos_are_named() {
        let preset = Preset::load("smoke").unwrap();
        let cfg = preset
            .resolve(
                "maze-hard",
                "trm-att",
                &["train.steps=7".into(), "arch.hidden_size=32".into()],
            )
            .unwrap();
        assert_eq!(cfg.train.steps, Some(7));
        assert_eq!(cfg.arch["hidden_size"].as_integer(), Some(32));
        let err = preset
            .resolve("maze-hard", "trm-att", &["train.stepz=7".into()])
            .unwrap_err();
        assert!(format!("{err:#}").contains("stepz"), "{err:#}");
        // Typos in the architecture and the data sections are named too: `arch.L_cycle`
        // used to be dropped silently and the run recorded as if it applied.
        for (set, key) in [
            ("arch.L_cycle=6", "arch.L_cycle"),
            ("arch.seq_len=10", "arch.seq_len"),
            ("data.sidee=7", "sidee"),
        ] {
            let err = preset
                .resolve("maze-hard", "trm-att", &[set.into()])
                .unwrap_err();
            assert!(format!("{err:#}").contains(key), "{set}: {err:#}");
        }
        let err = preset
            .resolve("maze-hard", "trm-att", &["train.steps=0".into()])
            .unwrap_err();
        assert!(format!("{err:#}").contains("at least 1"), "{err:#}");
        assert!(preset.resolve("maze", "trm-att", &[]).is_err());
        assert!(apply_override(&mut Table::new(), "novalue").is_err());
        // A step budget replaces the preset's epochs (the paper recipe gives epochs).
        let paper = Preset::load("paper").unwrap();
        let cfg = paper
            .resolve("maze-hard", "trm-att", &["train.steps=200".into()])
            .unwrap();
        assert_eq!((cfg.train.steps, cfg.train.epochs), (Some(200), None));
        cfg.validate().unwrap();
    }

    #[test]
    fn ablation_switches_that_a_model_would_ignore_are_refused() {
        let preset = Preset::load("smoke").unwrap();
        let resolve = |model: &str, set: &str| {
            preset
                .resolve("maze-hard", model, &[set.into()])
                .map_err(|e| format!("{e:#}"))
        };
        for (model, set, named) in [
            ("trm-att", "arch.H_layers=2", "arch.H_layers"),
            ("hrm", "arch.mlp_t=true", "arch.mlp_t"),
            ("hrm", "arch.gradient=\"full\"", "arch.gradient"),
            ("trm-att", "arch.gradient=1", "arch.gradient"),
            ("trm-hier6", "arch.H_layers=2", "arch.H_layers"),
            ("transformer", "arch.mlp_t=true", "arch.mlp_t"),
            ("transformer", "arch.H_cycles=2", "arch.H_cycles"),
            ("transformer", "arch.L_layers=2", "arch.L_layers"),
            ("transformer", "arch.gradient=\"one-step\"", "arch.gradient"),
        ] {
            let err = resolve(model, set).unwrap_err();
            assert!(err.contains(named), "{model} {set}: {err}");
        }
        for (model, set) in [
            ("trm-att", "arch.gradient=\"one-step\""),
            ("hrm", "arch.gradient=\"last-cycle\""),
            ("hrm", "arch.no_ACT_continue=true"),
            ("trm-att", "arch.H_layers=0"),
            ("trm-singlez", "arch.gradient=\"one-step\""),
            ("transformer", "arch.H_layers=12"),
        ] {
            let cfg = resolve(model, set).unwrap_or_else(|e| panic!("{model} {set}: {e}"));
            cfg.model_config(36, 6, 1).unwrap();
        }
    }

    #[test]
    fn model_sections_refine_shared_ones() {
        let preset = Preset::load("paper").unwrap();
        let trm = preset.resolve("maze-hard", "trm-att", &[]).unwrap();
        let hrm = preset.resolve("maze-hard", "hrm", &[]).unwrap();
        assert!(trm.train.ema && !hrm.train.ema);
        let trm_arch = trm.model_config(900, 6, 1).unwrap();
        let hrm_arch = hrm.model_config(900, 6, 1).unwrap();
        // The official Maze commands: TRM T=3, n=4; HRM H=L=2 with 4+4 layers.
        assert_eq!((trm_arch.H_cycles, trm_arch.L_cycles), (3, 4));
        assert_eq!(
            (hrm_arch.H_cycles, hrm_arch.L_cycles, hrm_arch.H_layers),
            (2, 2, 4)
        );
        assert_eq!(
            models::flops::parameter_counts(&trm_arch, ModelKind::Trm).trainable,
            6_822_914
        );
        // Epochs to optimizer steps on the official 1000-maze split (spec: 65,104 and 26,041).
        assert_eq!(trm.total_steps(1000, 1.0), 65_104);
        assert_eq!(hrm.total_steps(1000, 1.0), 26_041);
    }
}
