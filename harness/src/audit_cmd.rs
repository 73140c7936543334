//! `harness audit DIR...`: the table on screen, the full report as JSON.

use anyhow::{Context, Result};
use datasets::audit::{audit_dir, render_table};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Dataset directories (built by `harness data build` or the official Python builders).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: AuditArgs) -> Result<u8> {
    let reports = args
        .dirs
        .iter()
        .map(|d| {
            let _spinner = crate::progress::Spinner::start(format!("auditing {}", d.display()));
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
