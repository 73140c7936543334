//! Everything a comparison's folder holds, from its records alone: `results.json`/`.csv`,
//! test-time and answer-rule rows, the paired statistics, the charts, `table.md` and `report.html` (what
//! `harness report` recomputes); and the rows `compare` appends to the results table.

use crate::report::csv::{append_csv, write_csv};
use crate::science::paired::{paired_differences, PairedDifference};
use crate::science::record::ResultRecord;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Records, plots and the report of one comparison, and its rows appended to the results
/// table in `results_dir`; returns the table as written.
pub fn write_outputs(
    out: &Path,
    results_dir: &Path,
    records: &[ResultRecord],
    dataset_dir: &Path,
) -> Result<String> {
    let table = write_comparison(out, records, dataset_dir)?;
    let (task, preset) = (&records[0].task, &records[0].preset);
    append_csv(&results_dir.join(format!("{task}-{preset}.csv")), records)?;
    let records_dir = results_dir.join("records");
    std::fs::create_dir_all(&records_dir)
        .with_context(|| format!("creating {}", records_dir.display()))?;
    for r in records {
        let name = format!(
            "{}-{}-{}-seed{}-{}.json",
            r.task, r.preset, r.model, r.seed, r.created_unix
        );
        datasets::format::write_json(&records_dir.join(name), r)?;
    }
    Ok(table)
}

/// Everything a comparison's folder holds, computed from its records alone (what
/// `harness report` recomputes): `results.json`/`.csv`, `test_time.csv`, the paired
/// statistics, the charts, `table.md` and `report.html`. Returns the table.
pub fn write_comparison(
    out: &Path,
    records: &[ResultRecord],
    dataset_dir: &Path,
) -> Result<String> {
    if let Some(why) = crate::science::comparison::not_one_comparison(records) {
        bail!("these records are not one comparison: {why}; report each on its own");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    datasets::format::write_json(&out.join("results.json"), &records)?;
    write_csv(&out.join("results.csv"), records)?;
    crate::run::csv::write(
        &out.join("test_time.csv"),
        crate::report::csv::TEST_TIME_HEADER,
        &crate::report::csv::test_time_rows(records),
    )?;
    crate::run::csv::write(
        &out.join("answer_rules.csv"),
        crate::report::csv::ANSWER_RULES_HEADER,
        &crate::report::csv::answer_rule_rows(records),
    )?;
    let paired = paired_differences(records);
    datasets::format::write_json(&out.join("paired.json"), &paired)?;
    crate::run::csv::write(
        &out.join("paired.csv"),
        crate::report::csv::PAIRED_HEADER,
        &crate::report::csv::paired_rows(&paired),
    )?;
    let plots = crate::report::charts::write_plots(records, &out.join("plots"))?;
    let table = render_table(records, &paired);
    datasets::fsio::write_atomic(&out.join("table.md"), table.as_bytes())?;
    crate::report::html::write_report(
        &out.join("report.html"),
        records,
        &paired,
        &plots,
        dataset_dir,
    )?;
    Ok(table)
}

/// The comparison as a Markdown table (also printed).
pub fn render_table(records: &[ResultRecord], paired: &[PairedDifference]) -> String {
    let across = |f: fn(&ResultRecord) -> String| crate::science::facts::one_or_each(records, f);
    let mut s = format!(
        "{} / preset {}, budget matched by {}, dataset {}\n\n",
        across(|r| r.task.clone()),
        across(|r| format!("{} ({})", r.preset, r.preset_label)),
        across(|r| r.budget_match.clone()),
        across(|r| crate::science::record::short_hash(&r.dataset_hash, 16))
    );
    let (headers, rows) = crate::report::table::comparison_table(records);
    s.push_str(&markdown(&headers, &rows));
    if !paired.is_empty() {
        s.push_str(&format!(
            "\nPaired by seed (headline metric, named before the runs: {}; a verdict needs p < {} on the exact sign-flip test and an interval that excludes zero, so at least {} paired seeds):\n\n",
            crate::science::paired::headline_metric(&records[0].task),
            crate::science::stats::ALPHA,
            crate::science::stats::MIN_SEEDS_FOR_VERDICT
        ));
        for d in paired {
            s.push_str(&format!("- {}\n", d.verdict()));
        }
    }
    if let Some((headers, rows)) = crate::report::table::answer_rule_table(records) {
        s.push_str(&format!(
            "\n{}\n\n",
            crate::report::table::answer_rule_caption(&records[0].task)
        ));
        s.push_str(&markdown(&headers, &rows));
    }
    s
}

fn markdown(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", headers.join(" | "));
    s.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
    for row in rows {
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s
}
