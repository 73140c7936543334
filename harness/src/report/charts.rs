//! The comparison's charts, from result records: accuracy against parameters, training
//! compute and inference compute (one point per model, log-scaled cost), learning curves, and
//! accuracy against test-time compute (budgets of supervision steps, halting off and on).
//! Each is written as SVG and PNG.

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

pub fn write_plots(records: &[ResultRecord], dir: &Path) -> Result<Vec<PlotFile>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let r0 = &records[0];
    let each = |f: fn(&ResultRecord) -> String| crate::report::facts::one_or_each(records, f);
    let subtitle = format!(
        "{} | preset {} | budget: equal {} | data {}\n{}",
        each(|r| r.task.clone()),
        each(|r| r.preset.clone()),
        each(|r| r.budget_match.clone()),
        each(|r| crate::science::record::short_hash(&r.dataset_hash, 12)),
        each(|r| r.preset_label.clone())
    );
    let groups = by_model(records);
    let y_label = if groups.iter().any(|(_, rs)| rs.len() > 1) {
        "test accuracy (%): seed mean, widest 95% CI"
    } else {
        "test accuracy (%), 95% interval"
    };
    let mut charts: Vec<(&str, String, String)> = Vec::new();
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
    for (name, title, x_label, cost) in costs {
        let points: Vec<Point> = groups
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
        charts.push((
            name,
            title.to_string(),
            cost_chart_svg(title, &subtitle, x_label, y_label, true, &points)
                .map_err(anyhow::Error::msg)?,
        ));
    }
    // (the point's key across seeds: a step or a budget; x; accuracy). Seeds' points with
    // the same key are averaged, x included (halting uses a different number of steps in
    // each run).
    type Pick<'a> = &'a dyn Fn(&ResultRecord) -> Vec<(u64, f64, Proportion)>;
    let curves = |pick: Pick, suffix: &str, dashed: bool| -> Vec<Curve> {
        groups
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
    };
    let learning = curves(
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
    charts.push((
        "learning_curves",
        title.into(),
        curve_chart_svg(
            title,
            &subtitle,
            "optimizer step (evaluations during training may use a test subset)",
            y_label,
            false,
            &learning,
        )
        .map_err(anyhow::Error::msg)?,
    ));
    // Test-time compute: every budget of supervision steps, with halting off (solid) and on
    // (dashed, at the mean steps used).
    let mut test_time = curves(
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
    test_time.extend(curves(
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
    let trained = r0.config.model_config.halt_max_steps;
    let title = "Test-time compute: exact accuracy against inference FLOPs";
    charts.push((
        "accuracy_vs_test_time_compute",
        title.into(),
        curve_chart_svg(
            title,
            &subtitle,
            &format!(
                "inference FLOPs per puzzle, log scale ({trained} steps trained; solid: every step, dashed: halting)"
            ),
            y_label,
            true,
            &test_time,
        )
        .map_err(anyhow::Error::msg)?,
    ));

    write_files(
        dir,
        charts
            .into_iter()
            .map(|(name, title, svg)| (name.to_string(), title, svg))
            .collect(),
    )
}

/// Each chart as `<name>.svg` and `<name>.png` in `dir`.
pub fn write_files(dir: &Path, charts: Vec<(String, String, String)>) -> Result<Vec<PlotFile>> {
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
