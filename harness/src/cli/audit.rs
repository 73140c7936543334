//! `harness audit DIR...`: the data's audit (the table on screen, the full report as JSON);
//! `harness audit --run COMPARISON...`: the evaluation setup's audit of each comparison.

use anyhow::{bail, Context, Result};
use datasets::audit::{audit_dir, render_table};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Dataset directories (built by `harness data build` or the official Python builders).
    dirs: Vec<PathBuf>,
    /// Comparisons to audit for their evaluation setup: a `compare` output folder, its
    /// `results.json`, or a folder of record files (repeatable).
    #[arg(long = "run")]
    runs: Vec<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: AuditArgs) -> Result<u8> {
    if args.dirs.is_empty() && args.runs.is_empty() {
        bail!("give dataset directories, or --run with comparison folders");
    }
    if !args.dirs.is_empty() && !args.runs.is_empty() {
        bail!("audit either datasets or comparisons (--run), not both at once");
    }
    if !args.runs.is_empty() {
        return audit_runs(&args);
    }
    let reports = args
        .dirs
        .iter()
        .map(|d| {
            let _spinner =
                crate::run::progress::Spinner::start(format!("auditing {}", d.display()));
            audit_dir(d).with_context(|| format!("auditing {}", d.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    print!("{}", render_table(&reports));
    if let Some(path) = &args.json {
        datasets::format::write_json(path, &reports)?;
    }
    let violations: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.violations()
                .into_iter()
                .map(move |v| format!("{}: {v}", r.dir))
        })
        .collect();
    if violations.is_empty() {
        println!("audit passed: every dataset keeps its protocol and matches its manifest");
        Ok(0)
    } else {
        eprintln!("audit failed:");
        for v in &violations {
            eprintln!("  {v}");
        }
        Ok(1)
    }
}

/// Exit 1 when any rule warns, so a script can gate on it.
fn audit_runs(args: &AuditArgs) -> Result<u8> {
    let mut all = Vec::new();
    let mut warnings = 0;
    for path in &args.runs {
        let records = crate::science::record::read_records(path)?;
        let checks = crate::science::setup_audit::audit(&records);
        println!("{}:", path.display());
        print!("{}", crate::science::setup_audit::render(&checks));
        warnings += checks
            .iter()
            .filter(|c| c.verdict == crate::science::setup_audit::Verdict::Warn)
            .count();
        all.push(serde_json::json!({ "comparison": path.display().to_string(), "checks": checks }));
    }
    if let Some(path) = &args.json {
        datasets::format::write_json(path, &all)?;
    }
    if warnings == 0 {
        println!("evaluation setup: every rule passes");
        Ok(0)
    } else {
        println!("evaluation setup: {warnings} warnings");
        Ok(1)
    }
}
