//! The comparison table, one row per record plus each model's mean over seeds, as plain-text
//! cells: rendered as Markdown by `comparison` and as HTML by `html`, so both show the same
//! columns.

use crate::science::record::{by_model, ResultRecord};

/// The comparison table, one row per record: column headers and plain-text cells (a
/// proportion as `33.0% [29.0, 37.2]`). Rendered as Markdown by `compare` and as HTML by the
/// report, so both show the same columns.
pub fn comparison_table(records: &[ResultRecord]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let maze = records.first().is_some_and(|r| r.task == "maze-hard");
    let arc = records.first().is_some_and(|r| r.task.starts_with("arc-"));
    let pct = |p: &datasets::score::Proportion| {
        format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * p.value,
            100.0 * p.low,
            100.0 * p.high
        )
    };
    let mut headers = vec![
        "model",
        "seed",
        "trainable params",
        "buffers",
        "train FLOPs",
        "inference FLOPs / puzzle",
        "steps",
        "exact accuracy (95% CI)",
    ];
    if maze {
        headers.push("valid shortest path (95% CI)");
    }
    if arc {
        headers.extend([
            "pass@1 strict",
            "pass@2 strict",
            "pass@2 ARC rule",
            "pass@2 pooled over checkpoints",
        ]);
    }
    headers.extend([
        "token accuracy",
        "mean halting step",
        "exact at halting step",
        "test examples",
        "train wall time",
    ]);
    let h = plots::chart::human;
    let rows = records
        .iter()
        .map(|r| {
            let m = &r.metrics;
            let mut row = vec![
                r.model.clone(),
                r.seed.to_string(),
                h(r.trainable_parameters as f64),
                h(r.buffer_parameters as f64),
                h(r.train_flops),
                h(r.inference_flops_per_puzzle),
                r.train_steps.to_string(),
                pct(&m.exact),
            ];
            if maze {
                row.push(m.maze_valid_path.as_ref().map(pct).unwrap_or_default());
            }
            if arc {
                let a = m.arc.as_ref();
                row.push(a.map(|a| pct(&a.strict[&1])).unwrap_or_default());
                row.push(a.map(|a| pct(&a.strict[&2])).unwrap_or_default());
                row.push(
                    a.map(|a| format!("{:.1}%", 100.0 * a.fractional[&2]))
                        .unwrap_or_default(),
                );
                row.push(
                    r.arc_pooled_over_checkpoints
                        .as_ref()
                        .map(|p| {
                            format!(
                                "{} ({} checkpoints)",
                                pct(&p.scores.strict[&2]),
                                p.checkpoints.len()
                            )
                        })
                        .unwrap_or_default(),
                );
            }
            row.extend([
                pct(&m.token),
                format!("{:.2}", m.mean_halting_step),
                pct(&m.exact_at_halt),
                m.examples.to_string(),
                format!("{:.0} s", r.train_wall_seconds),
            ]);
            row
        })
        .collect::<Vec<_>>();
    let mut rows = rows;
    // With several seeds, a summary per model: mean and spread across seeds (the Wilson
    // intervals above cover test-set sampling only, not training randomness).
    for (model, runs) in by_model(records) {
        let values: Vec<f64> = runs.iter().map(|r| r.metrics.exact.value).collect();
        if values.len() < 2 {
            continue;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let mut row = vec![String::new(); headers.len()];
        row[0] = format!("{model} (mean of {} seeds)", values.len());
        row[1] = "all".into();
        row[7] = format!("{:.1}% ± {:.1} (sd)", 100.0 * mean, 100.0 * sd);
        rows.push(row);
    }
    (headers, rows)
}
