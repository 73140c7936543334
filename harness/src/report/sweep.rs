//! A sweep's outputs for a reader: the records as `results.json`/`.csv`, the comparison at
//! equal compute (`iso_compute.json`), accuracy-against-cost charts with each family's
//! frontier, and `report.html`.

use crate::report::charts::PlotFile;
use crate::report::csv::write_csv;
use crate::report::html::{esc, page_head};
use crate::science::ablation::Effect;
use crate::science::collect::{frontier, groups, Collected, Cost, Group, Metric};
use crate::science::paired::PairedDifference;
use crate::science::record::ResultRecord;
use anyhow::Result;
use plots::chart::{frontier_chart_svg, human, Curve, Point, PALETTE};
use std::path::Path;

/// Everything `harness collect` writes into the sweep folder `dir`.
pub fn write_sweep(dir: &Path, (cells, skipped): &Collected) -> Result<()> {
    let records: Vec<ResultRecord> = cells.iter().map(|(_, r)| r.clone()).collect();
    datasets::format::write_json(&dir.join("results.json"), &records)?;
    write_csv(&dir.join("results.csv"), &records)?;
    let groups = groups(cells);
    let iso = crate::science::iso_compute::from_groups(&groups);
    datasets::format::write_json(&dir.join("iso_compute.json"), &iso)?;
    let effects = crate::science::ablation::effects(&groups);
    if !effects.is_empty() {
        datasets::format::write_json(&dir.join("ablations.json"), &effects)?;
        let md = ablation_markdown(&effects, &groups);
        datasets::fsio::write_atomic(&dir.join("ablations.md"), md.as_bytes())?;
    }
    let plots = write_charts(&groups, &dir.join("plots"))?;
    let report = Report {
        groups: &groups,
        iso: &iso,
        effects: &effects,
        skipped,
        plots: &plots,
    };
    write_report(&dir.join("report.html"), &report)
}

/// The ablation table's rows: per family and variant, what it changes, the seeds, both
/// means, the paired difference with its interval and p-value, and the reading.
fn ablation_rows(effects: &[Effect]) -> Vec<[String; 8]> {
    let pts = |v: f64| format!("{:+.1}", 100.0 * v);
    effects
        .iter()
        .map(|e| {
            let d = e.difference.as_ref();
            [
                e.model.clone(),
                e.variant.clone(),
                e.overrides.join(" "),
                e.paired_seeds.to_string(),
                match (e.reference_mean, e.variant_mean) {
                    (Some(r), Some(v)) => format!("{:.1}% → {:.1}%", 100.0 * r, 100.0 * v),
                    _ => String::new(),
                },
                d.map_or(missing(e), |d| match d.interval() {
                    Some((lo, hi)) => format!("{} [{}, {}]", pts(d.mean()), pts(lo), pts(hi)),
                    None => pts(d.mean()),
                }),
                d.map_or(String::new(), |d| {
                    format!("{:.3}", d.seed_level.sign_flip_p)
                }),
                d.map_or(String::new(), reading),
            ]
        })
        .collect()
}

/// Why an effect has no difference.
fn missing(e: &Effect) -> String {
    match e.reference {
        None => "no finished reference runs at these axis values".into(),
        Some(_) => "no paired runs (same seed, same data, both scored)".into(),
    }
}

const ABLATION_HEADERS: [&str; 8] = [
    "family",
    "variant",
    "changes",
    "paired seeds",
    "reference → variant (mean)",
    "difference, points [95% interval]",
    "sign-flip p",
    "reading",
];

fn reading(d: &PairedDifference) -> String {
    use crate::science::stats::Reading;
    match d.reading {
        Reading::AAhead => "the variant is ahead".into(),
        Reading::BAhead => "the reference is ahead".into(),
        Reading::NotApart => "not told apart".into(),
        Reading::TooFewSeeds => format!(
            "no verdict: {} of {} seeds favour the variant",
            d.seed_level.favour_a, d.seed_level.n
        ),
    }
}

/// `ablations.md`: the caption, the table and each effect's sentence, from the records.
fn ablation_markdown(effects: &[Effect], groups: &[Group]) -> String {
    let r0 = groups[0].runs[0];
    let mut s = format!(
        "{} / preset {}: each variant against its family's reference ({}), paired by seed on {} (the headline metric); a verdict needs p < {} and an interval that excludes zero, so at least {} paired seeds.\n\n",
        r0.task,
        r0.preset,
        effects
            .iter()
            .find_map(|e| e.reference.as_deref())
            .unwrap_or("none finished"),
        crate::science::paired::headline_metric(&r0.task),
        crate::science::stats::ALPHA,
        crate::science::stats::MIN_SEEDS_FOR_VERDICT
    );
    s.push_str(&format!(
        "| {} |\n|{}\n",
        ABLATION_HEADERS.join(" | "),
        "---|".repeat(8)
    ));
    for row in ablation_rows(effects) {
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s.push('\n');
    for d in effects.iter().filter_map(|e| e.difference.as_ref()) {
        s.push_str(&format!("- {}\n", d.verdict()));
    }
    s
}

fn ablation_html(effects: &[Effect]) -> String {
    if effects.is_empty() {
        return String::new();
    }
    let mut s = String::from("<h2>Ablations</h2>\n<p>Each variant against its family's reference at the same axis values, paired by seed, on the headline metric, with the statistics of the comparison report (a verdict only where the seeds support one).</p>\n<table><tr>");
    for h in ABLATION_HEADERS {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr>\n");
    for row in ablation_rows(effects) {
        s.push_str("<tr>");
        for cell in row {
            s.push_str(&format!("<td>{}</td>", esc(&cell)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<ul>\n");
    for d in effects.iter().filter_map(|e| e.difference.as_ref()) {
        s.push_str(&format!("<li>{}</li>\n", esc(&d.verdict())));
    }
    s.push_str("</ul>\n");
    s
}

fn write_charts(groups: &[Group], dir: &Path) -> Result<Vec<PlotFile>> {
    let r0 = groups[0].runs[0];
    let subtitle = format!(
        "{} | preset {} | {} configurations, {} runs | data {}\ndots: mean over seeds, bars: range over seeds; lines: each family's frontier",
        r0.task,
        r0.preset,
        groups.len(),
        groups.iter().map(|g| g.runs.len()).sum::<usize>(),
        crate::science::record::short_hash(&r0.dataset_hash, 12)
    );
    let mut metrics: Vec<(&str, &str, Metric)> =
        vec![("exact", "exact accuracy", |r| Some(r.metrics.exact))];
    if r0.task == "maze-hard" {
        metrics.push(("valid_path", "valid shortest path", |r| {
            r.metrics.maze_valid_path
        }));
    }
    let costs: [(&str, &str, Cost); 3] = [
        ("parameters", "trainable parameters", |r| {
            r.trainable_parameters as f64
        }),
        ("train_flops", "training FLOPs", |r| r.train_flops),
        ("inference_flops", "inference FLOPs per puzzle", |r| {
            r.inference_flops_per_puzzle
        }),
    ];
    let models: Vec<&str> = groups.iter().fold(Vec::new(), |mut m, g| {
        if !m.contains(&g.model) {
            m.push(g.model);
        }
        m
    });
    let mut charts = Vec::new();
    for (metric_name, metric_label, metric) in &metrics {
        for (cost_name, cost_label, cost) in &costs {
            let mut points = Vec::new();
            let mut frontiers = Vec::new();
            for (i, model) in models.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()].to_string();
                let mut family = Vec::new();
                for g in groups.iter().filter(|g| g.model == *model) {
                    let Some((y, low, high)) = g.summary(*metric) else {
                        continue;
                    };
                    let x = g.cost(*cost);
                    family.push((x, y));
                    points.push(Point {
                        label: g.label(),
                        x,
                        y,
                        low,
                        high,
                        colour: colour.clone(),
                    });
                }
                let line = frontier(family);
                frontiers.push(Curve {
                    label: model.to_string(),
                    points: line.into_iter().map(|(x, y)| (x, y, y, y)).collect(),
                    colour,
                    dashed: false,
                });
            }
            let title = format!("Sweep: {metric_label} against {cost_label}");
            let svg = frontier_chart_svg(
                &title,
                &subtitle,
                &format!("{cost_label} (log scale)"),
                &format!("test {metric_label} (%)"),
                &points,
                &frontiers,
            )
            .map_err(anyhow::Error::msg)?;
            charts.push((format!("sweep_{metric_name}_vs_{cost_name}"), title, svg));
        }
    }
    crate::report::charts::write_files(dir, charts)
}

/// The sweep's setting, computed over every cell: the preset and data source, the
/// overrides every cell shares, the axes that vary, and how many runs are the papers' setting.
fn sweep_facts(groups: &[Group]) -> String {
    let records: Vec<ResultRecord> = groups
        .iter()
        .flat_map(|g| g.runs.iter().map(|r| (*r).clone()))
        .collect();
    let across = |f: fn(&ResultRecord) -> String| crate::science::facts::across_runs(&records, f);
    let shared: Vec<&String> = records[0]
        .setting
        .overrides
        .iter()
        .filter(|o| records.iter().all(|r| r.setting.overrides.contains(o)))
        .collect();
    let mut axes: Vec<String> = groups
        .iter()
        .flat_map(|g| {
            g.assignments
                .iter()
                .map(|a| a.split('=').next().unwrap_or(a).to_string())
        })
        .collect();
    axes.sort();
    axes.dedup();
    let papers = records
        .iter()
        .filter(|r| r.setting.is_papers_setting())
        .count();
    let rows = [
        ("preset", across(|r| r.preset.clone())),
        (
            "data",
            across(|r| {
                format!(
                    "{} source, manifest hash {}",
                    r.setting.data_source, r.dataset_hash
                )
            }),
        ),
        (
            "overrides in every cell",
            if shared.is_empty() {
                "none".to_string()
            } else {
                shared
                    .iter()
                    .map(|o| format!("--set {o}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        ),
        (
            "axes",
            if axes.is_empty() {
                "none".into()
            } else {
                axes.join(", ")
            },
        ),
        (
            "setting",
            format!("{papers} of {} runs in the papers' setting", records.len()),
        ),
    ];
    let mut s = String::from("<table class=meta>");
    for (name, value) in rows {
        s.push_str(&format!("<tr><td>{name}</td><td>{}</td></tr>", esc(&value)));
    }
    s.push_str("</table>\n");
    s
}

/// What the sweep's report shows.
struct Report<'a> {
    groups: &'a [Group<'a>],
    iso: &'a [crate::science::iso_compute::IsoPoint],
    effects: &'a [Effect],
    skipped: &'a [String],
    plots: &'a [PlotFile],
}

fn write_report(path: &Path, report: &Report) -> Result<()> {
    let Report {
        groups,
        iso,
        effects,
        skipped,
        plots,
    } = *report;
    let r0 = groups[0].runs[0];
    let mut html = page_head(&format!("Sweep on {}: {}", r0.task, r0.preset));
    html.push_str(&format!(
        "<h1>Sweep on {}</h1>\n{}",
        esc(&r0.task),
        sweep_facts(groups)
    ));
    html.push_str("<h2>Cells</h2>\n<table><tr><th>model</th><th>axes</th><th>seeds</th><th>exact accuracy: mean [range over seeds]</th><th>trainable params</th><th>train FLOPs</th><th>inference FLOPs / puzzle</th></tr>\n");
    for g in groups {
        let (y, lo, hi) = g.summary(|r| Some(r.metrics.exact)).unwrap_or_default();
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}% <span class=ci>[{:.1}, {:.1}]</span></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(g.model),
            esc(&g.label()),
            g.runs.len(),
            100.0 * y,
            100.0 * lo,
            100.0 * hi,
            human(g.cost(|r| r.trainable_parameters as f64)),
            human(g.cost(|r| r.train_flops)),
            human(g.cost(|r| r.inference_flops_per_puzzle)),
        ));
    }
    html.push_str("</table>\n");
    html.push_str(&ablation_html(effects));
    html.push_str(&iso_html(iso));
    if !skipped.is_empty() {
        html.push_str("<p class=bad>Cells not collected:</p><ul>");
        for s in skipped {
            html.push_str(&format!("<li>{}</li>", esc(s)));
        }
        html.push_str("</ul>\n");
    }
    html.push_str(&crate::report::html::charts_html(plots));
    html.push_str("</body></html>\n");
    Ok(datasets::fsio::write_atomic(path, html.as_bytes())?)
}

/// The families at equal training compute, with one sentence per budget.
fn iso_html(iso: &[crate::science::iso_compute::IsoPoint]) -> String {
    if iso.is_empty() {
        return "<p>The families' training budgets do not overlap: no comparison at equal compute.</p>\n".into();
    }
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let mut s = String::from("<h2>At equal training compute</h2>\n<p>At each budget, each family's configuration is the best one (mean headline metric over its seeds, on the split named) whose training FLOPs are at most the budget: a step function, never an interpolation between configurations. The two choices are then scored on the test split, paired by seed, with the statistics of the comparison report.</p>\n<table><tr><th>budget (training FLOPs)</th><th>first family's choice</th><th>second family's choice</th><th>chosen on</th><th>test difference</th></tr>\n");
    for p in iso {
        let choice = |c: &crate::science::iso_compute::Choice, model: &str| {
            format!(
                "{model} {} ({} FLOPs, {} on {})",
                c.config,
                human(c.train_flops),
                pct(c.chosen_by),
                p.chosen_on
            )
        };
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><b>{:+.1}</b></td></tr>\n",
            human(p.train_flops),
            esc(&choice(&p.a, &p.difference.a)),
            esc(&choice(&p.b, &p.difference.b)),
            esc(&p.chosen_on),
            100.0 * p.difference.mean(),
        ));
    }
    s.push_str("</table>\n<ul>\n");
    for p in iso {
        let caveat = if p.chosen_on == "test" {
            " The configurations were chosen on the test split (the records have no validation scores), so this difference is optimistic."
        } else {
            ""
        };
        s.push_str(&format!(
            "<li>At {} training FLOPs: {}{caveat}</li>\n",
            human(p.train_flops),
            esc(&p.difference.verdict()),
        ));
    }
    s.push_str("</ul>\n");
    s
}
