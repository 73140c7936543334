//! Whether a run is in the papers' setting, decided from what the run did and never from the
//! preset's name: where its data came from, every `--set` override, and each difference
//! between its resolved config and the official recipe (the `paper` preset resolved for the
//! same task and model, on the same data).

use crate::run::config::Preset;
use crate::run::resolve::{resolve_run, ResolvedRun};
use anyhow::Result;
use datasets::format::LoadedDataset;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// Keys that say where the data files are, not what the data is.
const DATA_LOCATION_KEYS: [&str; 3] = ["source", "from", "concept"];
/// Keys that change when and how often a run reports, not what it learns (the step count is
/// compared on its own, since the recipe gives epochs).
const SCHEDULE_ONLY_KEYS: [&str; 4] = ["steps", "epochs", "eval_interval", "log_interval"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// The data section's `source` (`generator`, `official`, `lists`, `public`, `kaggle`).
    pub data_source: String,
    /// The run's `--set` overrides, as given.
    pub overrides: Vec<String>,
    /// Every way the run differs from the papers' setting; none means it is that setting.
    pub deviations: Vec<String>,
}

/// The sources that hold the data the papers trained and tested on.
fn is_official_source(task: &str, source: &str) -> bool {
    match task {
        "sudoku-extreme" | "maze-hard" => source == "official",
        _ => matches!(source, "public" | "kaggle"),
    }
}

/// The sha256 of the official inputs (`manifest.source.inputs`): each public repository's
/// `training/` and `evaluation/` folder (`datasets::manifest::hash_folder`), ConceptARC's
/// `corpus/`, TRM's Kaggle-format files. Computed from the copies in `../shared/data`, whose
/// counts are the official ones (ARC-AGI-1: 400 + 400 tasks, ARC-AGI-2: 1000 + 120, ConceptARC:
/// 160). The Hugging Face CSVs of Sudoku-Extreme and Maze-Hard are not pinned here, so data
/// imported from them is "imported, not verified".
const OFFICIAL_INPUTS: [(&str, &str, &str); 18] = [
    (
        "arc-agi-1",
        "training/",
        "dbcadd4f86ade07885048da36e097348d97bc2e8f03dddfa970ae56e8923debd",
    ),
    (
        "arc-agi-1",
        "evaluation/",
        "5c3e50a280f0c9f0b8675d39d72f4df096dae3ce26ae69f499c41d872df01851",
    ),
    (
        "arc-agi-2",
        "training/",
        "3c1e3b78c5a4ef4ec904e76e3c671a04517941f306ff4ece4c1aaf4ae8bee033",
    ),
    (
        "arc-agi-2",
        "evaluation/",
        "01a2698570bbb28bef415873bb8ca5acb1fba359f89266552f40ee2ac83ce8f2",
    ),
    (
        "arc-agi-1",
        "ConceptARC corpus/",
        "b355f024e917f9bae96aa128cba3e8218ab831cf2daddff650214b52babfcc6c",
    ),
    (
        "arc-agi-2",
        "ConceptARC corpus/",
        "b355f024e917f9bae96aa128cba3e8218ab831cf2daddff650214b52babfcc6c",
    ),
    (
        "arc-agi-1",
        "arc-agi_concept_challenges.json",
        "4e60bd1de956c2519c3236ba9f2c352c971d5971bfc568ceafa716dd9b1a91fd",
    ),
    (
        "arc-agi-1",
        "arc-agi_concept_solutions.json",
        "3ec5e95e416e49c85dac28475fc5b73f6998d13b7e91ff0219eee48881c327ee",
    ),
    (
        "arc-agi-2",
        "arc-agi_concept_challenges.json",
        "4e60bd1de956c2519c3236ba9f2c352c971d5971bfc568ceafa716dd9b1a91fd",
    ),
    (
        "arc-agi-2",
        "arc-agi_concept_solutions.json",
        "3ec5e95e416e49c85dac28475fc5b73f6998d13b7e91ff0219eee48881c327ee",
    ),
    (
        "arc-agi-2",
        "arc-agi_evaluation2_challenges.json",
        "e7c62a4bd211867c6b538f66b8013b81f299663c82ca062f49a52bf439d6e4e8",
    ),
    (
        "arc-agi-2",
        "arc-agi_evaluation2_solutions.json",
        "84be4f4f39b79e82c36d565fc878830988b094917f052ee7069aef30b33ca8f1",
    ),
    (
        "arc-agi-1",
        "arc-agi_evaluation_challenges.json",
        "2b05f8f7d33b73fdbefd69914c399e9409d1949c7f16aabc78e677443a64b208",
    ),
    (
        "arc-agi-1",
        "arc-agi_evaluation_solutions.json",
        "629622b0eecf42c6cb4da628955ef76ec43214f0d00081f8cf63082ade496c52",
    ),
    (
        "arc-agi-2",
        "arc-agi_training2_challenges.json",
        "779eaba89790ebad9af02514a7efc0aefaf2cf8236f046a31bbf8b9ec48f20f5",
    ),
    (
        "arc-agi-2",
        "arc-agi_training2_solutions.json",
        "9f07a38bd25af5e83aa5bf85c5cb1a1fefdb30f6a755256fa65429e697ca97f9",
    ),
    (
        "arc-agi-1",
        "arc-agi_training_challenges.json",
        "5b02a4753e9088134744d952b048a03f6f23abf4eb6c04e3f27822cf3d439634",
    ),
    (
        "arc-agi-1",
        "arc-agi_training_solutions.json",
        "47212ad04ef4211221ac6141cba8c8d425e20e90da90ace575ef286c5f992534",
    ),
];

/// Why data from an official source kind is not the official data, if it is not: every
/// input the manifest hashed must be one of `OFFICIAL_INPUTS`.
fn unverified_inputs(task: &str, data: &LoadedDataset) -> Option<String> {
    let Some(manifest) = &data.manifest else {
        return Some("no manifest.json records the inputs".into());
    };
    let inputs = &manifest.source.inputs;
    if inputs.is_empty() {
        return Some("the manifest records no input hashes".into());
    }
    let unknown: Vec<&str> = inputs
        .iter()
        .filter(|f| {
            !OFFICIAL_INPUTS
                .iter()
                .any(|(t, _, h)| *t == task && *h == f.sha256)
        })
        .map(|f| f.path.as_str())
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "{} match no known official file's sha256",
            unknown.join(", ")
        )
    })
}

/// `section.key = ours (recipe: theirs)` for every key where the two tables differ.
fn table_differences(section: &str, ours: &Table, recipe: &Table, skip: &[&str]) -> Vec<String> {
    let mut keys: Vec<&String> = ours.keys().chain(recipe.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Value>| v.map_or("unset".to_string(), |v| v.to_string());
    keys.into_iter()
        .filter(|k| !skip.contains(&k.as_str()) && ours.get(*k) != recipe.get(*k))
        .map(|k| {
            format!(
                "{section}.{k} = {} (recipe: {})",
                show(ours.get(k)),
                show(recipe.get(k))
            )
        })
        .collect()
}

impl Setting {
    pub fn of(run: &ResolvedRun, data: &LoadedDataset) -> Result<Setting> {
        let cfg = &run.config;
        let data_source = cfg
            .data
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("the builder's default")
            .to_string();
        let mut deviations = Vec::new();
        if !is_official_source(&cfg.task, &data_source) {
            deviations.push(format!(
                "data from the {data_source} source, not the official files"
            ));
        } else if let Some(why) = unverified_inputs(&cfg.task, data) {
            deviations.push(format!(
                "data imported from the {data_source} source, not verified as the official files: {why} (imported, not verified)"
            ));
        }
        if let (true, Some((val, _))) = (is_official_source(&cfg.task, &data_source), data.val()) {
            let key = if cfg.task.starts_with("arc-") {
                "data.val-tasks"
            } else {
                "data.val-size"
            };
            deviations.push(format!(
                "a validation split of {} examples carved from the official training data, which the recipe trains on ({key} = 0 keeps it all)",
                val.num_examples()
            ));
        }
        let recipe = Preset::load("paper")?.resolve(&cfg.task, &cfg.model, &[])?;
        deviations.extend(table_differences(
            "data",
            &cfg.data,
            &recipe.data,
            &DATA_LOCATION_KEYS,
        ));
        deviations.extend(table_differences("arch", &cfg.arch, &recipe.arch, &[]));
        let as_table = |t: &crate::run::config::TrainConfig| Table::try_from(t.clone());
        deviations.extend(table_differences(
            "train",
            &as_table(&cfg.train)?,
            &as_table(&recipe.train)?,
            &SCHEDULE_ONLY_KEYS,
        ));
        let recipe_steps = resolve_run(&recipe, data)?.total_steps;
        if run.total_steps != recipe_steps {
            deviations.push(format!(
                "{} optimizer steps (recipe: {recipe_steps} on this data)",
                run.total_steps
            ));
        }
        Ok(Setting {
            data_source,
            overrides: cfg.overrides.clone(),
            deviations,
        })
    }

    pub fn is_papers_setting(&self) -> bool {
        self.deviations.is_empty()
    }

    /// One line for tables and chart titles: preset, data source, overrides, verdict.
    pub fn label(&self, preset: &str, description: &str) -> String {
        let overrides = if self.overrides.is_empty() {
            "no overrides".to_string()
        } else {
            format!("--set {}", self.overrides.join(", "))
        };
        let verdict = if self.is_papers_setting() {
            "the papers' setting".to_string()
        } else {
            format!(
                "NOT the papers' setting ({} differences)",
                self.deviations.len()
            )
        };
        format!(
            "{preset}: {description} | data: {} | {overrides} | {verdict}",
            self.data_source
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tiny_data;

    fn setting(preset: &str, overrides: &[&str]) -> Setting {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let cfg = Preset::load(preset)
            .unwrap()
            .resolve("maze-hard", "trm-att", &overrides)
            .unwrap();
        let data = tiny_data();
        Setting::of(&resolve_run(&cfg, &data).unwrap(), &data).unwrap()
    }

    #[test]
    fn the_papers_setting_is_decided_by_facts_not_by_the_preset_name() {
        // `--preset paper` on generated data: used to pass as the papers' setting.
        let generated = setting("paper", &[]);
        assert!(!generated.is_papers_setting());
        assert!(
            generated.deviations[0].contains("generator"),
            "{generated:?}"
        );
        // Files passed as the official source are not taken on their word: without hashes
        // that match the official files' it is "imported, not verified".
        // A validation split carved from the official training data is named too.
        let official = setting("paper", &["data.source=official", "data.from=maze"]);
        assert_eq!(official.deviations.len(), 2, "{official:?}");
        assert!(
            official.deviations[0].contains("(imported, not verified)")
                && official.deviations[1].contains("data.val-size = 0 keeps it all"),
            "{official:?}"
        );
        // On the official ARC files (hashes of ../shared/data's copies) the recipe is the
        // papers' setting (bf16 applied as recipes run it); float32 is a named difference.
        let arc = |overrides: &[&str]| -> Setting {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            let cfg = Preset::load("paper")
                .unwrap()
                .resolve("arc-agi-1", "trm-att", &overrides)
                .unwrap();
            let mut data = tiny_data();
            // Built with data.val-tasks = 0: the official training data, all of it.
            (data.data.val, data.val_metadata) = (None, None);
            let source = datasets::manifest::Source {
                kind: "arc-json".into(),
                description: "test".into(),
                inputs: OFFICIAL_INPUTS
                    .iter()
                    .filter(|(task, name, _)| *task == "arc-agi-1" && name.ends_with('/'))
                    .map(|(_, name, sha256)| datasets::manifest::FileRecord {
                        path: name.to_string(),
                        sha256: sha256.to_string(),
                        bytes: 0,
                    })
                    .collect(),
            };
            let manifest = datasets::manifest::Manifest::new(
                "arc-agi-1",
                "arc-transductive",
                0,
                source,
                serde_json::Value::Null,
            );
            data.manifest = Some(manifest);
            Setting::of(&resolve_run(&cfg, &data).unwrap(), &data).unwrap()
        };
        let official = arc(&[]);
        assert!(official.is_papers_setting(), "{official:?}");
        let f32 = arc(&["arch.forward_dtype=float32"]);
        assert_eq!(
            f32.deviations,
            vec!["arch.forward_dtype = \"float32\" (recipe: \"bfloat16\")".to_string()]
        );
        // An override of the architecture is named, and listed in the label.
        let narrow = setting(
            "paper",
            &[
                "data.source=official",
                "data.from=maze",
                "arch.hidden_size=64",
            ],
        );
        assert_eq!(narrow.deviations.len(), 3, "{narrow:?}");
        assert!(narrow
            .deviations
            .iter()
            .any(|d| d == "arch.hidden_size = 64 (recipe: 512)"));
        let label = narrow.label("paper", "paper recipe");
        assert!(
            label.contains("--set data.source=official, data.from=maze, arch.hidden_size=64")
                && label.contains("NOT the papers' setting"),
            "{label}"
        );
        // A scaled-down preset differs in many places, each named.
        let cpu = setting("cpu", &[]);
        assert!(cpu
            .deviations
            .iter()
            .any(|d| d.starts_with("arch.hidden_size = 64")));
        assert!(cpu.deviations.iter().any(|d| d.contains("optimizer steps")));
    }
}
