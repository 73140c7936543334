//! The comparison table, one row per record plus each model's mean over seeds, as plain-text
//! cells (a proportion as `33.0% [29.0, 37.2]`): rendered as Markdown by `comparison` and as
//! HTML by `html`, so both show the same columns.

use crate::run::answer_rules::{AnswerRule, RuleScore};
use crate::science::record::{by_model, ResultRecord};
use datasets::score::Proportion;

/// A column: its header and the cell of one record.
type Column = (&'static str, fn(&ResultRecord) -> String);

fn pct(p: &Proportion) -> String {
    format!(
        "{:.1}% [{:.1}, {:.1}]",
        100.0 * p.value,
        100.0 * p.low,
        100.0 * p.high
    )
}

/// The columns of a task's table, in order.
fn columns(task: &str) -> Vec<Column> {
    let mut out: Vec<Column> = vec![
        ("model", |r| r.model.clone()),
        ("seed", |r| r.seed.to_string()),
        ("trainable params", |r| {
            plots::chart::human(r.trainable_parameters as f64)
        }),
        ("buffers", |r| {
            plots::chart::human(r.buffer_parameters as f64)
        }),
        ("train FLOPs", |r| plots::chart::human(r.train_flops)),
        ("inference FLOPs / puzzle", |r| {
            plots::chart::human(r.inference_flops_per_puzzle)
        }),
        ("steps", |r| r.train_steps.to_string()),
        ("exact accuracy (95% CI)", |r| pct(&r.metrics.exact)),
    ];
    if task == "maze-hard" {
        out.push(("valid shortest path (95% CI)", |r| {
            r.metrics
                .maze_valid_path
                .as_ref()
                .map(pct)
                .unwrap_or_default()
        }));
    }
    if task.starts_with("arc-") {
        out.extend(arc_columns());
    }
    out.extend::<[Column; 5]>([
        ("token accuracy", |r| pct(&r.metrics.token)),
        ("mean halting step", |r| {
            format!("{:.2}", r.metrics.mean_halting_step)
        }),
        ("exact at halting step", |r| pct(&r.metrics.exact_at_halt)),
        ("test examples", |r| r.metrics.examples.to_string()),
        ("train wall time", |r| {
            format!("{:.0} s", r.train_wall_seconds)
        }),
    ]);
    out.extend::<[Column; 3]>([
        ("train FLOPs / solved puzzle", |r| {
            per_solved(r, r.train_flops, plots::chart::human)
        }),
        ("inference FLOPs / solved puzzle", |r| {
            let total = headline_inference_flops(r) * r.metrics.examples as f64;
            per_solved(r, total, plots::chart::human)
        }),
        ("train wall time / solved puzzle", |r| {
            per_solved(r, r.train_wall_seconds, |v| format!("{v:.2} s"))
        }),
    ]);
    out
}

/// Inference FLOPs per puzzle of the headline answer: every trained step, or with halting at
/// inference the steps each example ran until its model's rule fired.
fn headline_inference_flops(r: &ResultRecord) -> f64 {
    let trained = r.controls.supervision_steps;
    let halted = r.metrics.test_time.iter().find(|p| p.steps == trained);
    match (r.controls.halting_at_inference, halted) {
        (true, Some(p)) => p.inference_flops_per_puzzle_halting,
        _ => r.inference_flops_per_puzzle,
    }
}

/// A run's total cost over the test puzzles its headline metric counts as solved (ARC: tasks).
fn per_solved(r: &ResultRecord, total: f64, show: fn(f64) -> String) -> String {
    match crate::science::paired::headline_proportion(&r.task, &r.metrics) {
        Some(p) if p.successes > 0 => show(total / p.successes as f64),
        Some(_) => "none solved".into(),
        None => String::new(),
    }
}

fn arc_columns() -> [Column; 4] {
    [
        ("pass@1 strict", |r| {
            r.metrics
                .arc
                .as_ref()
                .map(|a| pct(&a.strict[&1]))
                .unwrap_or_default()
        }),
        ("pass@2 strict", |r| {
            r.metrics
                .arc
                .as_ref()
                .map(|a| pct(&a.strict[&2]))
                .unwrap_or_default()
        }),
        ("pass@2 ARC rule", |r| {
            let a = r.metrics.arc.as_ref();
            a.map(|a| format!("{:.1}%", 100.0 * a.fractional[&2]))
                .unwrap_or_default()
        }),
        ("pass@2 pooled over checkpoints", |r| {
            let pooled = r.arc_pooled_over_checkpoints.as_ref();
            pooled
                .map(|p| {
                    let n = p.checkpoints.len();
                    format!("{} ({n} checkpoints)", pct(&p.scores.strict[&2]))
                })
                .unwrap_or_default()
        }),
    ]
}

/// The comparison table: column headers and plain-text cells.
pub fn comparison_table(records: &[ResultRecord]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let task = records.first().map_or("", |r| r.task.as_str());
    let columns = columns(task);
    let headers: Vec<&'static str> = columns.iter().map(|(h, _)| *h).collect();
    let mut rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| columns.iter().map(|(_, cell)| cell(r)).collect())
        .collect();
    rows.extend(seed_means(records, headers.len()));
    (headers, rows)
}

/// With several seeds, a row per model: exact accuracy's mean and spread across seeds (the
/// Wilson intervals of the rows above cover test-set sampling only, not training randomness).
fn seed_means(records: &[ResultRecord], width: usize) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (model, runs) in by_model(records) {
        let values: Vec<f64> = runs.iter().map(|r| r.metrics.exact.value).collect();
        if values.len() < 2 {
            continue;
        }
        let mut row = vec![String::new(); width];
        row[0] = format!("{model} (mean of {} seeds)", values.len());
        row[1] = "all".into();
        row[7] = spread(&values);
        rows.push(row);
    }
    rows
}

/// What the answer rules score each example by: the task's per-example headline.
pub fn answer_rule_caption(task: &str) -> String {
    let by = if task == "maze-hard" {
        "a valid shortest path"
    } else {
        "exact match"
    };
    format!(
        "Answer selection at test time: each example's answer after one of its trained supervision steps, chosen by a rule, scored by {by} (per example, so for ARC before voting over versions). Steps and FLOPs are those the rule runs per puzzle; a selection failure is a wrong answer where some trained step was right (the oracle's gap)."
    )
}

/// Per model and answer rule: the per-example headline at the rule's answer (mean over
/// seeds, with its spread), the steps and FLOPs it runs, and the share of its wrong answers
/// that are selection failures (pooled over seeds). None when no record scored the rules.
pub fn answer_rule_table(
    records: &[ResultRecord],
) -> Option<(Vec<&'static str>, Vec<Vec<String>>)> {
    let headers = vec![
        "model",
        "rule",
        "right",
        "steps run",
        "inference FLOPs / puzzle",
        "wrong answers that are selection failures",
    ];
    let mut rows = Vec::new();
    for (model, runs) in by_model(records) {
        for rule in AnswerRule::ALL {
            let scores: Vec<&RuleScore> = runs
                .iter()
                .filter_map(|r| r.metrics.answer_rules.iter().find(|s| s.rule == rule))
                .collect();
            if scores.is_empty() {
                continue;
            }
            let n = scores.len() as f64;
            let mean = |f: fn(&RuleScore) -> f64| scores.iter().map(|s| f(s)).sum::<f64>() / n;
            let right = match scores.as_slice() {
                [one] => pct(&one.right),
                _ => spread(&scores.iter().map(|s| s.right.value).collect::<Vec<_>>()),
            };
            let failures: u64 = scores.iter().map(|s| s.failures).sum();
            let selection: u64 = scores.iter().map(|s| s.selection_failures).sum();
            rows.push(vec![
                format!(
                    "{model} ({} seed{})",
                    scores.len(),
                    if scores.len() == 1 { "" } else { "s" }
                ),
                rule.name().to_string(),
                right,
                format!("{:.2}", mean(|s| s.mean_steps)),
                plots::chart::human(mean(|s| s.inference_flops_per_puzzle)),
                match failures {
                    0 => "no wrong answers".to_string(),
                    _ => format!(
                        "{:.1}% ({selection} of {failures})",
                        100.0 * selection as f64 / failures as f64
                    ),
                },
            ]);
        }
    }
    (!rows.is_empty()).then_some((headers, rows))
}

/// Mean and sample standard deviation over seeds, in percent.
fn spread(values: &[f64]) -> String {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    format!("{:.1}% ± {:.1} (sd)", 100.0 * mean, 100.0 * sd)
}
