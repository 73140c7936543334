//! `report.html`: one self-contained page for a reviewer (no server, no network, every chart
//! inline): what was run and on which data, the comparison table, the charts, the audit of the
//! dataset, and the models' configs side by side with every difference highlighted.

use crate::report::charts::PlotFile;
use crate::science::facts::{across_runs, one_or_each};
use crate::science::paired::PairedDifference;
use crate::science::record::{by_model, ResultRecord};
use crate::science::stats::MIN_SEEDS_FOR_VERDICT;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// The page's head and style: one look for every report.
pub fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{}</title>\n<style>\n\
         body{{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;color:#222;line-height:1.45;padding:0 1em}}\n\
         h1{{font-size:1.6em;margin-bottom:.2em}} h2{{margin-top:1.6em;border-bottom:1px solid #ccc}}\n\
         table{{border-collapse:collapse;margin:.8em 0;font-size:.9em}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\n\
         th{{background:#f2f2f2}} .ci{{color:#666;font-size:.9em}} tr.diff td{{background:#fff3c4}}\n\
         .banner{{background:#fde2e1;border:1px solid #d55e00;padding:.7em 1em;border-radius:4px}}\n\
         .meta td:first-child{{font-weight:bold;white-space:nowrap}} .ok{{color:#087a3b}} .bad{{color:#b00020}}\n\
         pre{{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}} .plot svg{{max-width:100%;height:auto}}\n\
         table.config{{font-family:monospace;font-size:.8em}}\n</style></head><body>\n",
        esc(title)
    )
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Published test accuracies (%) of the papers' own runs, for orientation only.
fn published(task: &str) -> Option<&'static str> {
    match task {
        "sudoku-extreme" => Some("TRM-MLP 87.4, TRM-Att 74.7, HRM 55.0 (exact accuracy)"),
        "maze-hard" => Some("TRM-Att 85.3, HRM 74.5 (exact accuracy, 30x30 Maze-Hard)"),
        "arc-agi-1" => Some("TRM-Att 44.6, HRM 40.3 (pass@2, official evaluator)"),
        "arc-agi-2" => Some("TRM-Att 7.8, HRM 5.0 (pass@2, official evaluator)"),
        _ => None,
    }
}

/// Flattens a JSON value into `a.b.c -> text` rows.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn table_html(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in headers {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr>\n");
    for row in rows {
        s.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            // The interval after a percentage reads as a quieter second part.
            let cell = match cell.split_once(" [") {
                Some((value, ci)) => format!("{} <span class=ci>[{}</span>", esc(value), esc(ci)),
                None if i == 0 => format!("<b>{}</b>", esc(cell)),
                None => esc(cell),
            };
            s.push_str(&format!("<td>{cell}</td>"));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}

/// The models' resolved configs side by side (one column per model, first seed), with rows
/// that differ between models highlighted.
fn config_html(records: &[ResultRecord]) -> String {
    let mut columns: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for (model, runs) in by_model(records) {
        let r = runs[0];
        let mut rows = BTreeMap::new();
        let mut c = r.config.config.clone();
        c.seed = 0;
        let mut value = serde_json::json!({
            "architecture": r.config.model_config,
            "train": c.train,
            "eval": c.eval,
            "data": c.data,
        });
        if let Some(obj) = value.as_object_mut() {
            obj.insert("train.total_steps".into(), r.config.total_steps.into());
            obj.insert(
                "controls".into(),
                serde_json::to_value(&r.controls).unwrap_or_default(),
            );
        }
        flatten("", &value, &mut rows);
        columns.push((model.to_string(), rows));
    }
    let keys: std::collections::BTreeSet<&String> =
        columns.iter().flat_map(|(_, rows)| rows.keys()).collect();
    let mut s = String::from("<table class=config><tr><th>key</th>");
    for (m, _) in &columns {
        s.push_str(&format!("<th>{}</th>", esc(m)));
    }
    s.push_str("</tr>\n");
    let mut differences = 0;
    for key in keys {
        let values: Vec<String> = columns
            .iter()
            .map(|(_, rows)| rows.get(key).cloned().unwrap_or_else(|| "—".into()))
            .collect();
        let differs = values.iter().any(|v| *v != values[0]);
        differences += differs as usize;
        s.push_str(&format!(
            "<tr{}><td>{}</td>",
            if differs { " class=diff" } else { "" },
            esc(key)
        ));
        for v in values {
            s.push_str(&format!("<td>{}</td>", esc(&v)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    format!(
        "<p>{differences} settings differ between the models (highlighted); every other setting is identical. Seeds are shown as 0 here; each run's seed is in the table above.</p>\n{s}"
    )
}

/// Which answer the headline numbers score, from the records' `eval.halting`.
fn answer_rule(records: &[ResultRecord]) -> &'static str {
    let halting = |on: bool| {
        records
            .iter()
            .all(|r| r.controls.halting_at_inference == on)
    };
    if halting(false) {
        "every test example runs all supervision steps"
    } else if halting(true) {
        "each test example answers at its model's own halting step (at most all supervision steps)"
    } else {
        "the models differ in halting at inference (see the audit)"
    }
}

/// Each model's training budget: steps and FLOPs, over its runs.
fn budgets(records: &[ResultRecord]) -> String {
    by_model(records)
        .iter()
        .map(|(model, runs)| {
            let steps: std::collections::BTreeSet<u64> =
                runs.iter().map(|r| r.train_steps).collect();
            let flops = runs.iter().map(|r| r.train_flops).sum::<f64>() / runs.len() as f64;
            let steps: Vec<String> = steps.iter().map(u64::to_string).collect();
            format!(
                "{model}: {} optimizer steps, {} training FLOPs",
                steps.join(" / "),
                plots::chart::human(flops)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What was run, on what, with what: every row computed over all the records.
fn facts_table(records: &[ResultRecord]) -> String {
    let headline = crate::science::paired::headline_metric(&records[0].task);
    let provenance = |r: &ResultRecord| {
        let lines: Vec<String> = r.provenance.iter().map(|p| p.line()).collect();
        if lines.is_empty() {
            "not recorded".to_string()
        } else {
            lines.join(" then ")
        }
    };
    let rows = [
        ("task", across_runs(records, |r| r.task.clone())),
        (
            "dataset",
            across_runs(records, |r| {
                format!("{} (manifest hash {})", r.dataset_dir, r.dataset_hash)
            }),
        ),
        (
            "budget",
            format!(
                "matched by {}: {}",
                across_runs(records, |r| r.budget_match.clone()),
                budgets(records)
            ),
        ),
        (
            "evaluation",
            format!("{}; headline metric, named before the runs: {headline}; exact match of the whole output; 95% Wilson intervals per run", answer_rule(records)),
        ),
        (
            "choices",
            across_runs(records, |r| {
                format!(
                    "evaluations during training on the {} split, the {} checkpoint scored on test",
                    r.selection.during_training, r.selection.scored_checkpoint
                )
            }),
        ),
        ("device", across_runs(records, |r| r.device.clone())),
        ("arithmetic", format!("{}. The same seed on another processor, instruction set or thread count rounds differently and gives other per-seed numbers; the seed-level statistics are what carry over.", across_runs(records, provenance))),
        (
            "code",
            across_runs(records, |r| format!("harness {} at commit {}", r.harness_version, r.git_commit)),
        ),
    ];
    let mut s = String::from("<table class=meta>");
    for (name, value) in rows {
        s.push_str(&format!("<tr><td>{name}</td><td>{}</td></tr>", esc(&value)));
    }
    s.push_str("</table>\n");
    s
}

pub fn write_report(
    path: &Path,
    records: &[ResultRecord],
    paired: &[PairedDifference],
    plots: &[PlotFile],
    dataset_dir: &Path,
) -> Result<()> {
    let r0 = &records[0];
    let models: Vec<&str> = by_model(records).iter().map(|(m, _)| *m).collect();
    let models = models.join(" vs ");
    let mut html = page_head(&format!("{models} on {}: {}", r0.task, r0.preset));
    html.push_str(&format!(
        "<h1>{} on {}</h1>\n<p>Preset <b>{}</b>: {}</p>\n",
        esc(&models),
        esc(&r0.task),
        esc(&r0.preset),
        esc(&one_or_each(records, |r| r.preset_label.clone()))
    ));
    if records.iter().any(|r| !r.setting.is_papers_setting()) {
        html.push_str(&setting_banner(records));
    }
    html.push_str(&facts_table(records));
    html.push_str(&results_html(records, paired));
    html.push_str(&charts_html(plots));
    html.push_str("<h2>Audit of the evaluation setup</h2>\n");
    html.push_str(&setup_audit_html(records));
    html.push_str("<h2>Audit of the data used</h2>\n");
    html.push_str(&data_audit_html(dataset_dir));
    html.push_str("<h2>Configurations side by side</h2>\n");
    html.push_str(&config_html(records));
    html.push_str("</body></html>\n");
    Ok(datasets::fsio::write_atomic(path, html.as_bytes())?)
}

/// The table, what its intervals cover, the paired statistics, and the papers' numbers for
/// orientation.
fn results_html(records: &[ResultRecord], paired: &[PairedDifference]) -> String {
    let task = &records[0].task;
    let mut html = String::from("<h2>Results</h2>\n");
    let (headers, rows) = crate::report::table::comparison_table(records);
    html.push_str(&table_html(&headers, &rows));
    if by_model(records).iter().all(|(_, runs)| runs.len() < 2) {
        html.push_str(&format!("<p class=bad>One training seed per model: the 95% intervals reflect the size of the test set only, not training randomness, which can move these numbers by more than the gap between the models. A verdict needs at least {MIN_SEEDS_FOR_VERDICT} paired seeds (<code>--seeds {MIN_SEEDS_FOR_VERDICT}</code>).</p>\n"));
    } else {
        html.push_str("<p>The rows marked <i>mean of N seeds</i> give the mean exact accuracy across training seeds and its standard deviation; the per-row intervals reflect the test-set size only.</p>\n");
    }
    html.push_str(&paired_html(paired));
    if task == "maze-hard" {
        html.push_str("<p>Exact match counts a maze as solved only when the predicted path is the stored one; random-wall mazes often have several shortest paths, so the valid-shortest-path column (any shortest path from S to G, walls respected) is the fairer reading.</p>\n");
    }
    if let Some((headers, rows)) = crate::report::table::answer_rule_table(records) {
        html.push_str("<h3>Answer selection at test time</h3>\n");
        html.push_str(&format!(
            "<p>{}</p>\n",
            esc(&crate::report::table::answer_rule_caption(task))
        ));
        html.push_str(&table_html(&headers, &rows));
    }
    if let Some(p) = published(task) {
        let scaled_down = records.iter().any(|r| !r.setting.is_papers_setting());
        html.push_str(&format!(
            "<p><i>For orientation only, the papers' own numbers in their setting (full-size models, paper recipe, GPUs){}:</i> {}</p>\n",
            if scaled_down {
                ", NOT comparable with the table above"
            } else {
                ""
            },
            esc(p)
        ));
    }
    html
}

/// The audit of the dataset the runs read, or why it could not run (a reader of committed
/// records may not have the data).
fn data_audit_html(dataset_dir: &Path) -> String {
    match datasets::audit::audit_dir(dataset_dir) {
        Ok(report) => {
            let violations = report.violations();
            let verdict = if violations.is_empty() {
                "<p class=ok>The audit found no protocol violation and every file matches the manifest.</p>".to_string()
            } else {
                let items: String = violations
                    .iter()
                    .map(|v| format!("<li>{}</li>", esc(v)))
                    .collect();
                format!("<p class=bad>The audit found problems:</p><ul>{items}</ul>")
            };
            format!(
                "{verdict}<pre>{}</pre>",
                esc(&datasets::audit::render_table(&[report]))
            )
        }
        Err(e) => format!(
            "<p class=bad>The audit of {} failed: {}</p>",
            esc(&dataset_dir.display().to_string()),
            esc(&e.to_string())
        ),
    }
}

/// The charts inline, each under its title.
pub fn charts_html(plots: &[PlotFile]) -> String {
    let mut s = String::from("<h2>Charts</h2>\n");
    for p in plots {
        s.push_str(&format!(
            "<div class=plot><h3>{}</h3>{}</div>\n",
            esc(&p.title),
            p.svg_text
        ));
    }
    s
}

/// The rules a reviewer applies to the comparison (`harness audit --run`), pass or warn.
fn setup_audit_html(records: &[ResultRecord]) -> String {
    let mut s = String::from("<table><tr><th></th><th>rule</th><th>evidence</th></tr>\n");
    for c in crate::science::setup_audit::audit(records) {
        let (class, word) = match c.verdict {
            crate::science::setup_audit::Verdict::Pass => ("ok", "pass"),
            crate::science::setup_audit::Verdict::Warn => ("bad", "warn"),
        };
        s.push_str(&format!(
            "<tr><td class={class}>{word}</td><td>{}</td><td>{}</td></tr>\n",
            esc(c.rule),
            esc(&c.evidence)
        ));
    }
    s.push_str("</table>\n");
    s
}

/// The paired differences with their intervals and one verdict sentence each.
fn paired_html(paired: &[PairedDifference]) -> String {
    if paired.is_empty() {
        return String::new();
    }
    let pts = |v: f64| format!("{:+.1}", 100.0 * v);
    let interval = |i: Option<(f64, f64)>| {
        i.map_or("—".to_string(), |(lo, hi)| {
            format!("[{}, {}]", pts(lo), pts(hi))
        })
    };
    let mut s = format!(
        "<h3>Paired differences</h3>\n<p>Runs with the same seed index on the same data form a pair; the headline metric was named before the runs, the others are secondary. Seed level: a Student t interval over the pairs and the exact sign-flip permutation p-value; a winner is named only when the interval excludes zero and p &lt; {alpha}, which needs at least {min} pairs. With the examples: a two-level bootstrap (seeds, and one draw of test examples shared by every seed and both models), widened to contain the t interval. Detectable: the true difference these seeds would find with {power:.0}% power.</p>\n<table><tr><th>metric</th><th>difference</th><th>per seed</th><th>mean</th><th>t interval (seeds)</th><th>seeds and examples</th><th>sign-flip p</th><th>detectable</th></tr>\n",
        alpha = crate::science::stats::ALPHA,
        min = crate::science::stats::MIN_SEEDS_FOR_VERDICT,
        power = 100.0 * crate::science::stats::POWER
    );
    for d in paired {
        let role = if d.headline { " (headline)" } else { "" };
        s.push_str(&format!(
            "<tr><td>{}{role}</td><td>{} − {}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td></tr>\n",
            esc(&d.metric),
            esc(&d.a),
            esc(&d.b),
            d.differences.iter().map(|&v| pts(v)).collect::<Vec<_>>().join(", "),
            pts(d.mean()),
            interval(d.seed_level.t_interval),
            interval(d.seeds_and_examples),
            d.seed_level.sign_flip_p,
            d.seed_level.detectable.map_or("—".to_string(), |v| format!("{:.1}", 100.0 * v)),
        ));
    }
    s.push_str("</table>\n<ul>\n");
    for d in paired {
        s.push_str(&format!("<li>{}</li>\n", esc(&d.verdict())));
    }
    s.push_str("</ul>\n");
    s
}

/// Why the runs are not the papers' setting: the data source, the overrides and every
/// difference from the official recipe, per model.
fn setting_banner(records: &[ResultRecord]) -> String {
    let r0 = &records[0];
    let overrides = if r0.setting.overrides.is_empty() {
        "none".to_string()
    } else {
        r0.setting
            .overrides
            .iter()
            .map(|o| format!("<code>--set {}</code>", esc(o)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "<div class=banner><p><b>Not the papers' setting.</b> Preset <b>{}</b>, data from the <b>{}</b> source, overrides: {overrides}. These numbers compare the models with each other under this setting only; they must not be read beside the published numbers. Differences from the official recipe:</p><ul>",
        esc(&r0.preset),
        esc(&r0.setting.data_source)
    );
    for (model, runs) in by_model(records) {
        let deviations = &runs[0].setting.deviations;
        if deviations.is_empty() {
            s.push_str(&format!("<li>{}: none</li>", esc(model)));
        } else {
            s.push_str(&format!(
                "<li>{}: {}</li>",
                esc(model),
                deviations
                    .iter()
                    .map(|d| esc(d))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    s.push_str("</ul></div>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::answer_rule;

    #[test]
    fn the_evaluation_row_names_the_answer_the_numbers_score() {
        let mut records = crate::test_support::reference_records();
        assert!(answer_rule(&records).starts_with("every test example runs all"));
        for r in records.iter_mut().filter(|r| r.model == "hrm") {
            r.controls.halting_at_inference = true;
        }
        assert!(answer_rule(&records).contains("differ"));
        for r in records.iter_mut() {
            r.controls.halting_at_inference = true;
        }
        assert!(answer_rule(&records).contains("own halting step"));
    }
}
