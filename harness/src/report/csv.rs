//! Result records as CSV rows: one row per record (`results.csv`, the appended
//! `<task>-<preset>.csv`), test-time compute in long form, and the paired statistics.

use crate::run::csv::opt6;
use crate::run::device::Provenance;
use crate::science::paired::PairedDifference;
use crate::science::record::{ResultRecord, SCHEMA_VERSION};
use anyhow::{Context, Result};
use std::path::Path;

pub const CSV_HEADER: &str = "created_unix,task,model,preset,preset_label,data_source,overrides,papers_setting,seed,budget_match,device,dataset_hash,train_steps,global_batch_size,ema_rate,act_in_training,supervision_steps,halting_at_inference,H_cycles,L_cycles,train_versions_per_group,trainable_parameters,buffer_parameters,train_flops,inference_flops_per_puzzle,test_examples,exact,exact_low,exact_high,token,token_low,token_high,mean_halting_step,exact_at_halt,maze_valid_path,maze_valid_path_low,maze_valid_path_high,arc_pass1,arc_pass2,arc_pass2_fractional,arc_pooled_pass2,arc_pooled_pass2_fractional,arc_pooled_checkpoints,val_examples,val_exact,val_maze_valid_path,evaluated_during_training,processor,kernel_path,threads,train_wall_seconds,git_commit,run_dir,L_layers,H_layers,act_continue_loss,gradient,puzzle_embedding";

pub fn csv_row(r: &ResultRecord) -> Vec<String> {
    let m = &r.metrics;
    let valid = m.maze_valid_path;
    let arc_strict = |k: usize| opt6(m.arc.as_ref().map(|a| a.strict[&k].value));
    let pooled = r.arc_pooled_over_checkpoints.as_ref();
    let val = r.validation.as_ref();
    vec![
        r.created_unix.to_string(),
        r.task.clone(),
        r.model.clone(),
        r.preset.clone(),
        r.preset_label.clone(),
        r.setting.data_source.clone(),
        r.setting.overrides.join(" "),
        r.setting.is_papers_setting().to_string(),
        r.seed.to_string(),
        r.budget_match.clone(),
        r.device.clone(),
        r.dataset_hash.clone(),
        r.train_steps.to_string(),
        r.global_batch_size.to_string(),
        opt6(r.controls.ema),
        r.controls.act_in_training.to_string(),
        r.controls.supervision_steps.to_string(),
        r.controls.halting_at_inference.to_string(),
        r.controls.h_cycles.to_string(),
        r.controls.l_cycles.to_string(),
        format!("{:.4}", r.controls.train_versions_per_group),
        r.trainable_parameters.to_string(),
        r.buffer_parameters.to_string(),
        format!("{:.6e}", r.train_flops),
        format!("{:.6e}", r.inference_flops_per_puzzle),
        m.examples.to_string(),
        format!("{:.6}", m.exact.value),
        format!("{:.6}", m.exact.low),
        format!("{:.6}", m.exact.high),
        format!("{:.6}", m.token.value),
        format!("{:.6}", m.token.low),
        format!("{:.6}", m.token.high),
        format!("{:.4}", m.mean_halting_step),
        format!("{:.6}", m.exact_at_halt.value),
        opt6(valid.map(|v| v.value)),
        opt6(valid.map(|v| v.low)),
        opt6(valid.map(|v| v.high)),
        arc_strict(1),
        arc_strict(2),
        opt6(m.arc.as_ref().map(|a| a.fractional[&2])),
        opt6(pooled.map(|p| p.scores.strict[&2].value)),
        opt6(pooled.map(|p| p.scores.fractional[&2])),
        pooled.map_or(String::new(), |p| p.checkpoints.len().to_string()),
        val.map_or(String::new(), |v| v.examples.to_string()),
        opt6(val.map(|v| v.exact.value)),
        opt6(val.and_then(|v| v.maze_valid_path).map(|p| p.value)),
        r.selection.during_training.clone(),
        join_provenance(r, |p| p.processor.clone()),
        join_provenance(r, |p| p.kernel_path.clone()),
        join_provenance(r, |p| p.threads.to_string()),
        format!("{:.1}", r.train_wall_seconds),
        r.git_commit.clone(),
        r.run_dir.clone(),
    ]
    .into_iter()
    .chain(ablation_cells(r.controls.ablation.as_ref()))
    .collect()
}

/// The ablation switches' cells, empty for records made before they were recorded.
fn ablation_cells(a: Option<&crate::science::record::Ablation>) -> [String; 5] {
    let Some(a) = a else {
        return Default::default();
    };
    [
        a.l_layers.to_string(),
        a.h_layers.map_or(String::new(), |h| h.to_string()),
        a.act_continue_loss.to_string(),
        a.gradient.clone(),
        a.puzzle_embedding.to_string(),
    ]
}

/// One field of every processor setup that trained the run, joined by ` + `.
fn join_provenance(r: &ResultRecord, field: impl Fn(&Provenance) -> String) -> String {
    let mut values: Vec<String> = r.provenance.iter().map(field).collect();
    values.dedup();
    values.join(" + ")
}

pub const TEST_TIME_HEADER: &str =
    "model,seed,steps,halting,exact,exact_low,exact_high,mean_steps,inference_flops_per_puzzle";

/// Test-time compute in long form: one row per record, budget and halting setting.
pub fn test_time_rows(records: &[ResultRecord]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for r in records {
        for p in &r.metrics.test_time {
            for (halting, exact, steps, flops) in [
                (false, p.exact, p.steps as f64, p.inference_flops_per_puzzle),
                (
                    true,
                    p.exact_halting,
                    p.mean_steps_halting,
                    p.inference_flops_per_puzzle_halting,
                ),
            ] {
                rows.push(vec![
                    r.model.clone(),
                    r.seed.to_string(),
                    p.steps.to_string(),
                    halting.to_string(),
                    format!("{:.6}", exact.value),
                    format!("{:.6}", exact.low),
                    format!("{:.6}", exact.high),
                    format!("{steps:.4}"),
                    format!("{flops:.6e}"),
                ]);
            }
        }
    }
    rows
}

pub const ANSWER_RULES_HEADER: &str =
    "model,seed,rule,right,right_low,right_high,mean_steps,inference_flops_per_puzzle,failures,selection_failures";

/// Answer selection in long form: one row per record and rule (none for records made before
/// the rules were scored).
pub fn answer_rule_rows(records: &[ResultRecord]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for r in records {
        for s in &r.metrics.answer_rules {
            rows.push(vec![
                r.model.clone(),
                r.seed.to_string(),
                s.rule.name().to_string(),
                format!("{:.6}", s.right.value),
                format!("{:.6}", s.right.low),
                format!("{:.6}", s.right.high),
                format!("{:.4}", s.mean_steps),
                format!("{:.6e}", s.inference_flops_per_puzzle),
                s.failures.to_string(),
                s.selection_failures.to_string(),
            ]);
        }
    }
    rows
}

/// Writes exactly these rows (header first), replacing the file atomically.
pub fn write_csv(path: &Path, records: &[ResultRecord]) -> Result<()> {
    let rows: Vec<Vec<String>> = records.iter().map(csv_row).collect();
    crate::run::csv::write(path, CSV_HEADER, &rows)
}

/// Appends rows to a CSV table, writing the header first when the file is new; refuses a file
/// whose header belongs to another schema rather than mixing columns.
pub fn append_csv(path: &Path, records: &[ResultRecord]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let rows: Vec<Vec<String>> = records.iter().map(csv_row).collect();
    crate::run::csv::append(path, CSV_HEADER, &rows)
        .with_context(|| format!("schema {SCHEMA_VERSION}"))
        .map(|_| ())
}

pub const PAIRED_HEADER: &str = "metric,headline,a,b,seeds,differences,mean,sd,t_low,t_high,sign_flip_p,interval_low,interval_high,interval_method,detectable,favour_a,favour_b,reading";

pub fn paired_rows(diffs: &[PairedDifference]) -> Vec<Vec<String>> {
    let join = |v: Vec<String>| v.join(" ");
    let opt6 = crate::run::csv::opt6;
    diffs
        .iter()
        .map(|d| {
            let s = &d.seed_level;
            let (t, i) = (s.t_interval, d.interval());
            vec![
                d.metric.clone(),
                d.headline.to_string(),
                d.a.clone(),
                d.b.clone(),
                join(d.seeds.iter().map(u64::to_string).collect()),
                join(d.differences.iter().map(|v| format!("{v:.6}")).collect()),
                format!("{:.6}", s.mean),
                opt6(s.sd),
                opt6(t.map(|t| t.0)),
                opt6(t.map(|t| t.1)),
                format!("{:.6}", s.sign_flip_p),
                opt6(i.map(|i| i.0)),
                opt6(i.map(|i| i.1)),
                d.method(),
                opt6(s.detectable),
                s.favour_a.to_string(),
                s.favour_b.to_string(),
                serde_json::to_value(d.reading)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            ]
        })
        .collect()
}
