//! The comparison's charts, from result records: accuracy against parameters, training
//! compute and inference compute (one point per model, log-scaled cost), learning curves, and
//! accuracy against test-time compute (budgets of supervision steps, halting off and on).
//! Each is written as SVG and PNG.

use crate::run::answer_rules::AnswerRule;
use crate::science::record::{by_model, ResultRecord};
use anyhow::{Context, Result};
use datasets::score::Proportion;
use plots::chart::{cost_chart_svg, curve_chart_svg, Curve, Point, PALETTE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct PlotFile {
    pub title: String,
    pub svg: PathBuf,
    pub png: PathBuf,
    pub svg_text: String,
}

/// Mean over seeds, with the widest interval among them (conservative).
fn combine(ps: &[Proportion]) -> (f64, f64, f64) {
    let n = ps.len().max(1) as f64;
    (
        ps.iter().map(|p| p.value).sum::<f64>() / n,
        ps.iter().map(|p| p.low).fold(1.0, f64::min),
        ps.iter().map(|p| p.high).fold(0.0, f64::max),
    )
}

fn label(model: &str, seeds: usize) -> String {
    if seeds > 1 {
        format!("{model} ({seeds} seeds)")
    } else {
        model.to_string()
    }
}

/// One chart: file name, title, SVG text.
type Chart = (String, String, String);

/// What every chart of a comparison shares: the models' runs, the subtitle, the y axis.
struct Frame<'a> {
    groups: Vec<(&'a str, Vec<&'a ResultRecord>)>,
    subtitle: String,
    y_label: &'static str,
}

/// The points of one curve per model, keyed across seeds (a step or a budget): seeds'
/// points with the same key are averaged, x included (halting uses a different number of
/// steps in each run).
type Pick<'a> = &'a dyn Fn(&ResultRecord) -> Vec<(u64, f64, Proportion)>;

pub fn write_plots(records: &[ResultRecord], dir: &Path) -> Result<Vec<PlotFile>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let each = |f: fn(&ResultRecord) -> String| crate::science::facts::one_or_each(records, f);
    let groups = by_model(records);
    let frame = Frame {
        subtitle: format!(
            "{} | preset {} | budget: equal {} | data {}\n{}",
            each(|r| r.task.clone()),
            each(|r| r.preset.clone()),
            each(|r| r.budget_match.clone()),
            each(|r| crate::science::record::short_hash(&r.dataset_hash, 12)),
            each(|r| r.preset_label.clone())
        ),
        y_label: if groups.iter().any(|(_, rs)| rs.len() > 1) {
            "test accuracy (%): seed mean, widest 95% CI"
        } else {
            "test accuracy (%), 95% interval"
        },
        groups,
    };
    let mut charts = cost_charts(&frame)?;
    charts.push(learning_chart(&frame)?);
    charts.push(test_time_chart(
        &frame,
        records[0].config.model_config.halt_max_steps,
    )?);
    if records.iter().any(|r| !r.metrics.answer_rules.is_empty()) {
        charts.push(answer_rule_chart(&frame)?);
    }
    write_files(dir, charts)
}

/// Each answer rule's accuracy, one curve per model over the rules in a fixed order (x = the
/// rule's number in the axis label). Every rule but halting runs all trained steps, so on an
/// inference-FLOPs axis four of the five would sit on one vertical line; their FLOPs are in
/// the table beside the chart.
fn answer_rule_chart(frame: &Frame) -> Result<Chart> {
    let mut curves = Vec::new();
    let mut task = "";
    for (i, (model, rs)) in frame.groups.iter().enumerate() {
        let scored: Vec<&&ResultRecord> = rs
            .iter()
            .filter(|r| !r.metrics.answer_rules.is_empty())
            .collect();
        task = scored.first().map_or(task, |r| r.task.as_str());
        let mut points = Vec::new();
        for (k, rule) in AnswerRule::ALL.into_iter().enumerate() {
            let rights: Vec<Proportion> = rs
                .iter()
                .filter_map(|r| r.metrics.answer_rules.iter().find(|s| s.rule == rule))
                .map(|s| s.right)
                .collect();
            if !rights.is_empty() {
                let (y, low, high) = combine(&rights);
                points.push(((k + 1) as f64, y, low, high));
            }
        }
        curves.push(Curve {
            label: label(model, scored.len()),
            points,
            colour: PALETTE[i % PALETTE.len()].into(),
            dashed: false,
        });
    }
    let y_label = format!(
        "{} (%): seed mean, widest 95% CI",
        if task == "maze-hard" {
            "valid shortest path"
        } else {
            "exact match per example"
        }
    );
    let rules: Vec<String> = AnswerRule::ALL
        .iter()
        .enumerate()
        .map(|(k, r)| format!("{} {}", k + 1, r.name()))
        .collect();
    let title = "Answer selection: accuracy of each rule (the step an answer is read at)";
    let x_label = format!("answer rule: {}", rules.join(", "));
    let svg = curve_chart_svg(title, &frame.subtitle, &x_label, &y_label, false, &curves)
        .map_err(anyhow::Error::msg)?;
    Ok(("accuracy_by_answer_rule".into(), title.into(), svg))
}

/// Exact accuracy against parameters, training FLOPs and inference FLOPs: a point per model.
fn cost_charts(frame: &Frame) -> Result<Vec<Chart>> {
    type Cost = fn(&ResultRecord) -> f64;
    // (file name, title, x label, cost of a record)
    let costs: [(&str, &str, &str, Cost); 3] = [
        (
            "accuracy_vs_parameters",
            "Exact accuracy against trainable parameters",
            "trainable parameters (log scale)",
            |r| r.trainable_parameters as f64,
        ),
        (
            "accuracy_vs_train_flops",
            "Exact accuracy against training compute",
            "training FLOPs, matmuls (log scale)",
            |r| r.train_flops,
        ),
        (
            "accuracy_vs_inference_flops",
            "Exact accuracy against inference compute",
            "inference FLOPs per puzzle, all supervision steps (log scale)",
            |r| r.inference_flops_per_puzzle,
        ),
    ];
    let mut charts = Vec::new();
    for (name, title, x_label, cost) in costs {
        let points: Vec<Point> = frame
            .groups
            .iter()
            .enumerate()
            .map(|(i, (model, rs))| {
                let exact: Vec<Proportion> = rs.iter().map(|r| r.metrics.exact).collect();
                let (y, low, high) = combine(&exact);
                Point {
                    label: label(model, rs.len()),
                    x: rs.iter().map(|r| cost(r)).sum::<f64>() / rs.len() as f64,
                    y,
                    low,
                    high,
                    colour: PALETTE[i % PALETTE.len()].into(),
                }
            })
            .collect();
        let svg = cost_chart_svg(
            title,
            &frame.subtitle,
            x_label,
            frame.y_label,
            true,
            &points,
        )
        .map_err(anyhow::Error::msg)?;
        charts.push((name.to_string(), title.to_string(), svg));
    }
    Ok(charts)
}

/// One curve per model of the points `pick` gives, averaged over its seeds.
fn seed_curves(frame: &Frame, pick: Pick, suffix: &str, dashed: bool) -> Vec<Curve> {
    frame
        .groups
        .iter()
        .enumerate()
        .map(|(i, (model, rs))| {
            let mut at: BTreeMap<u64, (Vec<f64>, Vec<Proportion>)> = BTreeMap::new();
            for r in rs {
                for (key, x, p) in pick(r) {
                    let (xs, ps) = at.entry(key).or_default();
                    xs.push(x);
                    ps.push(p);
                }
            }
            let mut points: Vec<(f64, f64, f64, f64)> = at
                .into_values()
                .map(|(xs, ps)| {
                    let (y, lo, hi) = combine(&ps);
                    (xs.iter().sum::<f64>() / xs.len() as f64, y, lo, hi)
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Curve {
                label: format!("{}{suffix}", label(model, rs.len())),
                points,
                colour: PALETTE[i % PALETTE.len()].into(),
                dashed,
            }
        })
        .collect()
}

/// Exact accuracy on the validation split at each evaluation of the runs.
fn learning_chart(frame: &Frame) -> Result<Chart> {
    let curves = seed_curves(
        frame,
        &|r| {
            r.learning_curve
                .iter()
                .map(|(s, p)| (*s, *s as f64, *p))
                .collect()
        },
        "",
        false,
    );
    let title = "Learning curves: exact accuracy during training";
    let svg = curve_chart_svg(
        title,
        &frame.subtitle,
        "optimizer step (validation split; during training possibly its first examples)",
        frame.y_label,
        false,
        &curves,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(("learning_curves".into(), title.into(), svg))
}

/// Test-time compute: every budget of supervision steps, with halting off (solid) and on
/// (dashed, at the mean steps used).
fn test_time_chart(frame: &Frame, trained: usize) -> Result<Chart> {
    let mut curves = seed_curves(
        frame,
        &|r| {
            r.metrics
                .test_time
                .iter()
                .map(|p| (p.steps as u64, p.inference_flops_per_puzzle, p.exact))
                .collect()
        },
        "",
        false,
    );
    curves.extend(seed_curves(
        frame,
        &|r| {
            r.metrics
                .test_time
                .iter()
                .map(|p| {
                    (
                        p.steps as u64,
                        p.inference_flops_per_puzzle_halting,
                        p.exact_halting,
                    )
                })
                .collect()
        },
        " halting",
        true,
    ));
    let title = "Test-time compute: exact accuracy against inference FLOPs";
    let x_label = format!(
        "inference FLOPs per puzzle, log scale ({trained} steps trained; solid: every step, dashed: halting)"
    );
    let svg = curve_chart_svg(
        title,
        &frame.subtitle,
        &x_label,
        frame.y_label,
        true,
        &curves,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(("accuracy_vs_test_time_compute".into(), title.into(), svg))
}

/// Each chart as `<name>.svg` and `<name>.png` in `dir`.
pub fn write_files(dir: &Path, charts: Vec<Chart>) -> Result<Vec<PlotFile>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for (name, title, svg_text) in charts {
        let svg = dir.join(format!("{name}.svg"));
        let png = dir.join(format!("{name}.png"));
        datasets::fsio::write_atomic(&svg, svg_text.as_bytes())?;
        let bytes = plots::png::svg_to_png(&svg_text)
            .map_err(|e| anyhow::anyhow!("rendering {}: {e}", png.display()))?;
        datasets::fsio::write_atomic(&png, &bytes)?;
        out.push(PlotFile {
            title,
            svg,
            png,
            svg_text,
        });
    }
    Ok(out)
}
