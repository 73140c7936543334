//! Whether a run is in the papers' setting, decided from what the run did and never from the
//! preset's name: where its data came from, every `--set` override, and each difference
//! between its resolved config and the official recipe (the `paper` preset resolved for the
//! same task and model, on the same data).

use crate::config::Preset;
use crate::train::{resolve_run, ResolvedRun};
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
        }
        let recipe = Preset::load("paper")?.resolve(&cfg.task, &cfg.model, &[])?;
        deviations.extend(table_differences(
            "data",
            &cfg.data,
            &recipe.data,
            &DATA_LOCATION_KEYS,
        ));
        deviations.extend(table_differences("arch", &cfg.arch, &recipe.arch, &[]));
        let as_table = |t: &crate::config::TrainConfig| Table::try_from(t.clone());
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
        // On the official files the recipe is the papers' setting (bf16 applied as recipes
        // run it); computing in float32 instead is a named difference.
        let official = setting("paper", &["data.source=official", "data.from=maze"]);
        assert!(official.is_papers_setting(), "{official:?}");
        let f32 = setting(
            "paper",
            &[
                "data.source=official",
                "data.from=maze",
                "arch.forward_dtype=float32",
            ],
        );
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
