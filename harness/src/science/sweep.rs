//! Sweeps: a plan names a task, a preset, the models, seeds and axes over any config key (with
//! optional per-model axes) and, for ablations, named variants (sets of overrides, the first
//! the reference); every combination is one cell, one run directory named by a hash
//! of its resolved config, its dataset's manifest hash and the code version, so running a
//! plan again reuses what is done, resumes what was interrupted and runs what is pending.
//! A cell ends with `record.json` (a `ResultRecord`) or `failed.txt` (its error).

use crate::run::config::{Preset, RunConfig};
use crate::run::datastore::ensure_dataset;
use crate::run::resolve::{TrainOptions, CODE_VERSION};
use crate::run::train::train;
use crate::science::record::ResultRecord;
use anyhow::{bail, Context, Result};
use datasets::format::LoadedDataset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `PLAN.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub task: String,
    /// A built-in preset or a TOML file.
    pub preset: String,
    pub models: Vec<String>,
    /// Training seeds per cell (0, 1, ...; added to the preset's seed).
    #[serde(default = "three")]
    pub seeds: u64,
    /// Overrides for every cell, as `--set` takes them.
    #[serde(default)]
    pub set: Vec<String>,
    /// Config key -> values, for every model.
    #[serde(default)]
    pub axes: BTreeMap<String, Vec<toml::Value>>,
    /// Model -> (config key -> values), added to (or replacing) the shared axes.
    #[serde(default)]
    pub model_axes: BTreeMap<String, BTreeMap<String, Vec<toml::Value>>>,
    /// Ablations: named sets of overrides, each crossed with the axes; the first is the
    /// reference every other variant of the same model is measured against.
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// One ingredient changed (or none, for the reference).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub set: Vec<String>,
    /// The models it applies to (default: every model of the plan).
    #[serde(default)]
    pub models: Vec<String>,
    /// An architecture swap: the model this variant trains in place of the plan's model
    /// (an official variant, e.g. `trm-singlez` for TRM's "single z"), measured against that
    /// model's reference.
    #[serde(default)]
    pub replace_model: Option<String>,
}

impl Variant {
    fn applies_to(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

/// One cell of a plan before it is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCell {
    pub model: String,
    /// The model trained instead of `model` (`Variant::replace_model`).
    pub replaced_by: Option<String>,
    pub variant: Option<String>,
    /// The variant is the plan's first, the reference of its model's other variants.
    pub reference: bool,
    pub variant_set: Vec<String>,
    pub assignments: Vec<String>,
    pub seed: u64,
}

fn three() -> u64 {
    3
}

/// One cell of a plan: a model, a seed and a value for each of its axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    /// The plan's model: the family whose reference this cell is measured against.
    pub model: String,
    /// The model the cell trains instead, for an architecture-swap variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    pub seed: u64,
    /// `key=value` overrides from the axes, in key order.
    pub assignments: Vec<String>,
    /// The plan's variant (ablations), and its overrides, applied before the axes'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variant_set: Vec<String>,
    /// The variant is the reference the others are measured against.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    /// The run directory, relative to the sweep folder.
    pub dir: PathBuf,
}

impl Cell {
    /// `cell N (model, seed S, variant "V", axis values)`, for progress lines and errors.
    pub fn describe(&self) -> String {
        let model = match &self.replaced_by {
            Some(m) => format!("{m} in place of {}", self.model),
            None => self.model.clone(),
        };
        let mut parts = vec![model, format!("seed {}", self.seed)];
        parts.extend(self.variant.as_ref().map(|v| format!("variant {v:?}")));
        parts.extend((!self.assignments.is_empty()).then(|| self.assignments.join(" ")));
        format!("cell {} ({})", self.index, parts.join(", "))
    }
}

/// Where a cell stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CellState {
    Done,
    /// Another process holds the run directory.
    Running(String),
    Failed(String),
    /// Not started, or stopped at this step (to be resumed).
    Pending(Option<u64>),
}

pub const RECORD: &str = "record.json";
pub const FAILED: &str = "failed.txt";
pub const CELLS: &str = "cells.json";

impl Plan {
    pub fn load(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the plan {}", path.display()))?;
        let plan: Plan =
            toml::from_str(&text).with_context(|| format!("the plan {}", path.display()))?;
        let place = path.display();
        if plan.models.is_empty() {
            bail!("{place}: `models` is empty");
        }
        if plan.seeds == 0 {
            bail!("{place}: `seeds` must be at least 1");
        }
        for (scope, axes) in std::iter::once(("axes", &plan.axes))
            .chain(plan.model_axes.iter().map(|(m, a)| (m.as_str(), a)))
        {
            if let Some((key, _)) = axes.iter().find(|(_, v)| v.is_empty()) {
                bail!("{place}: axis {key:?} in {scope} has no values");
            }
        }
        if let Some(m) = plan.model_axes.keys().find(|m| !plan.models.contains(m)) {
            bail!("{place}: model_axes names {m:?}, which is not in `models`");
        }
        plan.check_variants()
            .map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
        Ok(plan)
    }

    fn check_variants(&self) -> Result<()> {
        let Some(reference) = self.variants.first() else {
            return Ok(());
        };
        if !reference.models.is_empty() {
            bail!(
                "the first variant ({:?}) is every model's reference, so it cannot name models",
                reference.name
            );
        }
        for (i, v) in self.variants.iter().enumerate() {
            if v.name.trim().is_empty() {
                bail!("variant {} has no name", i + 1);
            }
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                bail!("two variants are named {:?}", v.name);
            }
            if let Some(m) = v.models.iter().find(|m| !self.models.contains(m)) {
                bail!("variant {:?} names {m:?}, which is not in `models`", v.name);
            }
            if let Some(m) = &v.replace_model {
                if i == 0 {
                    bail!("the first variant ({:?}) is every model's reference, so it cannot replace the model", v.name);
                }
                if !crate::run::config::MODELS.contains(&m.as_str()) {
                    bail!(
                        "variant {:?} replaces the model with {m:?}, which is not a model (one of {})",
                        v.name,
                        crate::run::config::MODELS.join(", ")
                    );
                }
            }
            let axis_keys = self
                .axes
                .keys()
                .chain(self.model_axes.values().flat_map(|a| a.keys()));
            for key in axis_keys {
                if v.set
                    .iter()
                    .any(|o| o.split('=').next().map(str::trim) == Some(key.as_str()))
                {
                    bail!("variant {:?} sets {key}, which is also an axis (the axis would override it)", v.name);
                }
            }
        }
        Ok(())
    }

    /// Every (model, variant, axis values, seed), models and variants in the plan's order,
    /// seeds innermost.
    pub fn cells(&self) -> Vec<PlanCell> {
        let no_variant = [None];
        let variants: Vec<Option<&Variant>> = match self.variants.is_empty() {
            true => no_variant.to_vec(),
            false => self.variants.iter().map(Some).collect(),
        };
        let mut out = Vec::new();
        for model in &self.models {
            let applies =
                |(_, v): &(usize, &Option<&Variant>)| v.is_none_or(|v| v.applies_to(model));
            for (i, variant) in variants.iter().enumerate().filter(applies) {
                for (assignments, seed) in self.axis_cells(model) {
                    out.push(PlanCell {
                        model: model.clone(),
                        replaced_by: variant.and_then(|v| v.replace_model.clone()),
                        variant: variant.map(|v| v.name.clone()),
                        reference: variant.is_some() && i == 0,
                        variant_set: variant.map_or(Vec::new(), |v| v.set.clone()),
                        assignments,
                        seed,
                    });
                }
            }
        }
        out
    }

    /// One model's axis values and seeds, seeds innermost.
    fn axis_cells(&self, model: &str) -> Vec<(Vec<String>, u64)> {
        let mut axes = self.axes.clone();
        if let Some(own) = self.model_axes.get(model) {
            axes.extend(own.clone());
        }
        let mut combos: Vec<Vec<String>> = vec![Vec::new()];
        for (key, values) in &axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push(format!("{key}={}", value_text(v)));
                        c
                    })
                })
                .collect();
        }
        combos
            .into_iter()
            .flat_map(|combo| (0..self.seeds).map(move |seed| (combo.clone(), seed)))
            .collect()
    }
}

/// A value as `--set` reads it back, short: floats far from 1 in exponent form (TOML's `1e30`,
/// where plain digits would read as an integer).
fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e6 => {
            format!("{f:.1}")
        }
        toml::Value::Float(f) if f.is_finite() && (1e-3..1e6).contains(&f.abs()) => f.to_string(),
        toml::Value::Float(f) if f.is_finite() => format!("{f:e}"),
        other => other.to_string(),
    }
}

/// A cell with its resolved config and dataset.
pub struct Prepared {
    pub cell: Cell,
    pub config: RunConfig,
    pub data_dir: PathBuf,
}

/// Resolves every cell of `plan` and builds (or reuses) the datasets they need; writes the
/// cell list to `<out>/cells.json`.
pub fn prepare(plan: &Plan, out: &Path, data_root: &Path) -> Result<Vec<Prepared>> {
    let preset = Preset::load(&plan.preset)?;
    let mut datasets: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    let mut prepared = Vec::new();
    for (index, c) in plan.cells().into_iter().enumerate() {
        let PlanCell {
            model,
            replaced_by,
            variant,
            reference,
            variant_set,
            assignments,
            seed,
        } = c;
        let mut overrides = plan.set.clone();
        overrides.extend(variant_set.iter().cloned());
        overrides.extend(assignments.iter().cloned());
        let trained = replaced_by.as_deref().unwrap_or(&model);
        let mut config = preset
            .resolve(&plan.task, trained, &overrides)
            .with_context(|| {
                let variant = variant
                    .as_deref()
                    .map_or(String::new(), |v| format!("variant {v:?}, "));
                format!("cell {index} ({model}, {variant}{})", assignments.join(" "))
            })?;
        config.seed += seed;
        let data_key = serde_json::to_string(&config.data)?;
        if !datasets.contains_key(&data_key) {
            let data = ensure_dataset(data_root, &plan.task, &config.data)?;
            let hash = data
                .manifest
                .as_ref()
                .map_or("none".into(), |m| m.dataset_hash.clone());
            datasets.insert(data_key.clone(), (data.dir.clone(), hash));
        }
        let (data_dir, data_hash) = &datasets[&data_key];
        let identity = format!(
            "{}\n{data_hash}\n{CODE_VERSION}",
            serde_json::to_string(&config)?
        );
        let hash = datasets::manifest::sha256_hex(identity.as_bytes());
        let cell = Cell {
            index,
            model,
            replaced_by,
            seed: config.seed,
            assignments,
            variant,
            variant_set,
            reference,
            dir: PathBuf::from("cells").join(format!("{}-{}", config.model, &hash[..12])),
        };
        prepared.push(Prepared {
            cell,
            config,
            data_dir: data_dir.clone(),
        });
    }
    refuse_identical_runs(&prepared)?;
    let cells: Vec<&Cell> = prepared.iter().map(|p| &p.cell).collect();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    datasets::format::write_json(&out.join(CELLS), &cells)?;
    Ok(prepared)
}

/// Two cells that resolve to the same run apart from how it was asked for (a variant that
/// sets what the preset already has) would read as a zero effect: refused, naming both.
fn refuse_identical_runs(prepared: &[Prepared]) -> Result<()> {
    let run = |p: &Prepared| -> Result<String> {
        let mut config = p.config.clone();
        config.overrides.clear();
        config.label.clear();
        Ok(serde_json::to_string(&config)?)
    };
    let runs: Vec<String> = prepared.iter().map(run).collect::<Result<_>>()?;
    for (i, p) in prepared.iter().enumerate() {
        if let Some(j) = runs[..i].iter().position(|r| *r == runs[i]) {
            bail!(
                "{} and {} resolve to the same run: a variant or axis value changes nothing the preset does not already set",
                prepared[j].cell.describe(),
                p.cell.describe()
            );
        }
    }
    Ok(())
}

/// Trains one cell to the end and writes its record; an error is also written to
/// `failed.txt` so that `--status` and `collect` can name it.
pub fn run_cell(p: &Prepared, out: &Path, data: &LoadedDataset, device_name: &str) -> Result<bool> {
    let dir = out.join(&p.cell.dir);
    let result = (|| -> Result<bool> {
        let outcome = train(
            &p.config,
            data,
            &dir,
            &TrainOptions {
                progress_bar: true,
                resume: true,
                verbose: false,
                device: crate::run::device::default_device()?,
                stop_after: None,
                device_memory: None,
                gpus: 1,
            },
        )?;
        if !outcome.completed {
            return Ok(false);
        }
        let record = ResultRecord {
            position: p.cell.index,
            ..ResultRecord::new(&outcome, &dir, "recipe", device_name, data)?
        };
        datasets::format::write_json(&dir.join(RECORD), &record)?;
        Ok(true)
    })();
    match &result {
        Ok(_) => {
            let _ = std::fs::remove_file(dir.join(FAILED));
        }
        Err(e) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            datasets::fsio::write_atomic(&dir.join(FAILED), format!("{e:#}\n").as_bytes())?;
        }
    }
    result
}

/// The state of a cell's run directory.
pub fn state(out: &Path, cell: &Cell) -> Result<CellState> {
    let dir = out.join(&cell.dir);
    if dir.join(RECORD).is_file() {
        return Ok(CellState::Done);
    }
    if let Some(holder) = datasets::fsio::DirLock::holder(&dir.join(".lock"))? {
        return Ok(CellState::Running(holder));
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(FAILED)) {
        return Ok(CellState::Failed(
            text.lines().next().unwrap_or("").to_string(),
        ));
    }
    let step = std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["step"].as_u64());
    Ok(CellState::Pending(step))
}

impl std::fmt::Display for CellState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellState::Done => write!(f, "done"),
            CellState::Running(holder) => write!(f, "running ({holder})"),
            CellState::Failed(error) => write!(f, "failed: {error}"),
            CellState::Pending(None) => write!(f, "pending"),
            CellState::Pending(Some(step)) => write!(f, "pending (stopped at step {step})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cross_shared_and_per_model_axes_with_seeds_innermost() {
        let plan: Plan = toml::from_str(
            r#"
            task = "maze-hard"
            preset = "smoke"
            models = ["trm-att", "hrm"]
            seeds = 2
            [axes]
            "arch.hidden_size" = [16, 32]
            [model_axes.hrm]
            "arch.H_cycles" = [1, 2]
            "#,
        )
        .unwrap();
        let cells: Vec<String> = plan
            .cells()
            .iter()
            .map(|c| format!("{} {} {}", c.model, c.assignments.join(" "), c.seed))
            .collect();
        assert_eq!(cells.len(), 2 * 2 + 2 * 2 * 2);
        assert_eq!(cells[0], "trm-att arch.hidden_size=16 0");
        assert_eq!(cells[1], "trm-att arch.hidden_size=16 1");
        assert_eq!(cells[4], "hrm arch.H_cycles=1 arch.hidden_size=16 0");
        assert_eq!(cells[11], "hrm arch.H_cycles=2 arch.hidden_size=32 1");
    }

    #[test]
    fn variants_cross_the_axes_for_the_models_they_name() {
        let plan: Plan = toml::from_str(
            r#"
            task = "maze-hard"
            preset = "smoke"
            models = ["trm-att", "hrm"]
            seeds = 2
            [axes]
            "arch.hidden_size" = [16, 32]
            [[variants]]
            name = "reference"
            [[variants]]
            name = "no EMA"
            set = ["train.ema=false"]
            models = ["hrm"]
            "#,
        )
        .unwrap();
        plan.check_variants().unwrap();
        let cells = plan.cells();
        // TRM: the reference only; HRM: both variants; two widths, two seeds each.
        assert_eq!(cells.len(), 4 + 2 * 4);
        let last = cells.last().unwrap();
        assert_eq!(
            (last.model.as_str(), last.variant.as_deref(), last.seed),
            ("hrm", Some("no EMA"), 1)
        );
        assert_eq!(last.variant_set, ["train.ema=false"]);
        assert_eq!(last.assignments, ["arch.hidden_size=32"]);
    }

    /// Why `check_variants` refuses a TRM-Att plan with these `[[variants]]`.
    fn variants_error(variants: &str) -> String {
        let text =
            format!("task = \"maze-hard\"\npreset = \"smoke\"\nmodels = [\"trm-att\"]\n{variants}");
        let plan: Plan = toml::from_str(&text).unwrap();
        plan.check_variants().unwrap_err().to_string()
    }

    #[test]
    fn variants_that_make_no_sense_are_named() {
        let plan = variants_error;
        let err = plan("[[variants]]\nname = \"ref\"\nmodels = [\"trm-att\"]\n");
        assert!(err.contains("reference"), "{err}");
        let err = plan("[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n");
        assert!(err.contains("two variants"), "{err}");
        let err =
            plan("[[variants]]\nname = \"a\"\n[[variants]]\nname = \"b\"\nmodels = [\"hrm\"]\n");
        assert!(err.contains("\"hrm\""), "{err}");
        let err = plan("[[variants]]\nname = \" \"\n");
        assert!(err.contains("no name"), "{err}");
        let err = plan("[axes]\n\"train.lr\" = [1e-3]\n[[variants]]\nname = \"a\"\n[[variants]]\nname = \"b\"\nset = [\"train.lr=1e-4\"]\n");
        assert!(err.contains("also an axis"), "{err}");
    }

    /// A variant that sets what the preset already sets would share the reference's run
    /// directory and read as a zero effect: refused, naming both cells.
    #[test]
    fn a_variant_that_changes_nothing_is_refused() {
        let plan: Plan = toml::from_str(
            r#"
            task = "maze-hard"
            preset = "smoke"
            models = ["trm-att"]
            seeds = 1
            [[variants]]
            name = "reference"
            [[variants]]
            name = "no continue loss"
            set = ["arch.no_ACT_continue=true"]
            "#,
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let err = prepare(&plan, &tmp.path().join("out"), &tmp.path().join("data"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("variant \"no continue loss\"") && err.contains("same run"),
            "{err}"
        );
    }

    /// TRM's "single z": the official variant trains in place of TRM-Att, in TRM-Att's
    /// group, so the ablation pairs it with TRM-Att's reference.
    #[test]
    fn an_architecture_swap_trains_the_named_model_in_the_familys_group() {
        let plan: Plan = toml::from_str(
            r#"
            task = "maze-hard"
            preset = "smoke"
            models = ["trm-att"]
            seeds = 1
            [[variants]]
            name = "reference"
            [[variants]]
            name = "single z"
            replace_model = "trm-singlez"
            "#,
        )
        .unwrap();
        plan.check_variants().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let prepared = prepare(&plan, &tmp.path().join("out"), &tmp.path().join("data")).unwrap();
        let swap = &prepared[1];
        assert_eq!(
            (swap.cell.model.as_str(), swap.cell.replaced_by.as_deref()),
            ("trm-att", Some("trm-singlez"))
        );
        assert_eq!(swap.config.model, "trm-singlez");
        assert!(swap
            .cell
            .describe()
            .contains("trm-singlez in place of trm-att"));
        let bad = variants_error;
        let err = bad("[[variants]]\nname = \"r\"\n[[variants]]\nname = \"s\"\nreplace_model = \"trm-single\"\n");
        assert!(
            err.contains("\"trm-single\", which is not a model"),
            "{err}"
        );
        let err = bad("[[variants]]\nname = \"r\"\nreplace_model = \"hrm\"\n");
        assert!(err.contains("cannot replace the model"), "{err}");
    }

    #[test]
    fn axis_values_read_back_as_the_same_toml_values() {
        for v in [1e30, 1e-4, 0.5, 3.0, 2e-3, 123456.789, 1e6] {
            let text = value_text(&toml::Value::Float(v));
            let back: toml::Table = toml::from_str(&format!("x = {text}")).unwrap();
            assert_eq!(back["x"].as_float(), Some(v), "{text}");
        }
        assert_eq!(value_text(&toml::Value::Float(1e30)), "1e30");
        assert_eq!(value_text(&toml::Value::Float(1e-4)), "1e-4");
        assert_eq!(value_text(&toml::Value::Integer(64)), "64");
    }
}
