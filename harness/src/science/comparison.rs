//! A comparison's protocol: every model resolved on one dataset, the training budget matched
//! across models (the first sets it), seeds paired by index, and the records of the runs in
//! the comparison's order.

use crate::run::config::{Preset, RunConfig};
use crate::run::queue::Job;
use crate::run::resolve::{resolve_run, ResolvedRun};
use crate::run::train::TrainOutcome;
use crate::science::record::ResultRecord;
use anyhow::{bail, Result};
use clap::ValueEnum;
use datasets::format::LoadedDataset;
use models::flops::step_flops;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum BudgetMatch {
    /// Every model takes the first model's number of optimizer steps.
    Steps,
    /// Every model gets the first model's training FLOPs (steps scaled by cost per step).
    Flops,
    /// Each model keeps its own recipe's budget (as the papers ran them).
    Recipe,
}

impl BudgetMatch {
    pub fn name(self) -> &'static str {
        match self {
            BudgetMatch::Steps => "steps",
            BudgetMatch::Flops => "flops",
            BudgetMatch::Recipe => "recipe",
        }
    }
}

/// Each model's config under `preset` for `task`, all on one dataset.
pub fn model_configs(
    preset: &Preset,
    task: &str,
    models: &[String],
    overrides: &[String],
) -> Result<Vec<RunConfig>> {
    if models.is_empty() {
        bail!("--models is empty");
    }
    let mut configs: Vec<RunConfig> = Vec::new();
    for model in models {
        let cfg = preset.resolve(task, model, overrides)?;
        if configs.iter().any(|c| c.model == cfg.model) {
            bail!("--models names {model} twice");
        }
        configs.push(cfg);
    }
    if let Some(c) = configs[1..].iter().find(|c| c.data != configs[0].data) {
        bail!(
            "preset {} gives {} other data than {}; a comparison needs one dataset",
            preset.name,
            c.model,
            configs[0].model
        );
    }
    Ok(configs)
}

/// Sets every model's step count to the budget `budget` matches: the first model's steps,
/// its training FLOPs, or each model's own recipe.
pub fn match_budgets(
    configs: &mut [RunConfig],
    data: &LoadedDataset,
    budget: BudgetMatch,
) -> Result<()> {
    let resolved: Vec<ResolvedRun> = configs
        .iter()
        .map(|c| resolve_run(c, data))
        .collect::<Result<_>>()?;
    let flops_per_step = |r: &ResolvedRun| {
        step_flops(&r.model_config, r.config.kind()).train_step
            * r.config.train.global_batch_size as f64
    };
    let reference_steps = resolved[0].total_steps;
    let reference_flops = reference_steps as f64 * flops_per_step(&resolved[0]);
    for (cfg, run) in configs.iter_mut().zip(&resolved) {
        let steps = match budget {
            BudgetMatch::Steps => reference_steps,
            BudgetMatch::Flops => ((reference_flops / flops_per_step(run)).round() as u64).max(1),
            BudgetMatch::Recipe => run.total_steps,
        };
        cfg.train.steps = Some(steps);
        cfg.train.epochs = None;
        cfg.train.eval_interval = cfg.train.eval_interval.min(steps);
    }
    Ok(())
}

/// Seed by seed, every model: the comparison's runs in the order of its records and table.
pub fn seed_jobs(configs: &[RunConfig], seeds: u64, runs: &Path) -> Vec<Job> {
    (0..seeds)
        .flat_map(|s| {
            configs.iter().map(move |base| {
                let mut cfg = base.clone();
                cfg.seed = base.seed + s;
                let run_dir = runs.join(format!("{}-seed{}", cfg.model, cfg.seed));
                Job { cfg, run_dir }
            })
        })
        .collect()
}

/// The records of the finished runs in the comparison's order; none while a run is
/// unfinished (an interruption stopped the queue).
pub fn records(
    jobs: &[Job],
    outcomes: Vec<Option<TrainOutcome>>,
    (budget, device): (BudgetMatch, &str),
    data: &LoadedDataset,
) -> Result<Option<Vec<ResultRecord>>> {
    let mut records = Vec::with_capacity(jobs.len());
    for (position, (job, outcome)) in jobs.iter().zip(outcomes).enumerate() {
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        let record = ResultRecord::new(&outcome, &job.run_dir, budget.name(), device, data)?;
        records.push(ResultRecord { position, ..record });
    }
    Ok(Some(records))
}

/// Why the records are not one comparison, if they are not. The statistics pair each model's
/// seed with the other models' same seed, so every record must share the task, data, preset,
/// budget rule and overrides, each model's setting must be the same for all its seeds, and no
/// model may have a seed twice; otherwise runs of two settings, or one run twice, would be
/// paired.
pub fn not_one_comparison(records: &[ResultRecord]) -> Option<String> {
    use crate::science::facts::one_or_each;
    let shared = |r: &ResultRecord| {
        format!(
            "{} on data {} (source {}), preset {}, budget matched by {}, overrides [{}]",
            r.task,
            crate::science::record::short_hash(&r.dataset_hash, 16),
            r.setting.data_source,
            r.preset,
            r.budget_match,
            setting_overrides(r).join(", ")
        )
    };
    let first = records.first()?;
    if records.iter().any(|r| shared(r) != shared(first)) {
        return Some(one_or_each(records, shared));
    }
    for (i, a) in records.iter().enumerate() {
        for b in &records[i + 1..] {
            if a.model != b.model {
                continue;
            }
            if a.seed == b.seed {
                return Some(format!(
                    "{} seed {} appears twice ({} and {}); a run counts once",
                    a.model, a.seed, a.run_dir, b.run_dir
                ));
            }
            if a.setting.deviations != b.setting.deviations {
                return Some(format!(
                    "{} seeds {} and {} differ in setting ({:?} against {:?})",
                    a.model, a.seed, b.seed, a.setting.deviations, b.setting.deviations
                ));
            }
        }
    }
    None
}

/// The overrides that change what runs, in a fixed order: the seed base and the label do not
/// (the seeds are compared one by one), nor does the order the flags were given in.
fn setting_overrides(r: &ResultRecord) -> Vec<&str> {
    let mut kept: Vec<&str> = r
        .setting
        .overrides
        .iter()
        .map(String::as_str)
        .filter(|o| !o.starts_with("seed=") && !o.starts_with("label="))
        .collect();
    kept.sort_unstable();
    kept
}
