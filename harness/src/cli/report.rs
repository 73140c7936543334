//! `harness report RECORDS...`: the table, the paired statistics, the charts and the report
//! of a comparison recomputed from its result records, without training, so a reviewer can
//! check a published comparison with the statistics of this build.

use crate::science::record::{read_records, ResultRecord};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Result records: a `compare` folder, a `results.json`, or a folder of record files
    /// (e.g. `results/reference/maze-hard-cpu/records`); several are read together.
    #[arg(required = true)]
    pub records: Vec<PathBuf>,
    /// Output folder (default: report/<task>-<preset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> Result<u8> {
    let mut records: Vec<ResultRecord> = Vec::new();
    for path in &args.records {
        records.extend(read_records(path)?);
    }
    let Some(r0) = records.first() else {
        bail!("no result records in {:?}", args.records);
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("report").join(format!("{}-{}", r0.task, r0.preset)));
    let dataset_dir = PathBuf::from(&r0.dataset_dir);
    let table = crate::report::comparison::write_comparison(&out, &records, &dataset_dir)?;
    println!("{table}");
    println!(
        "{} records -> {}/table.md, paired.json, paired.csv, plots/, report.html",
        records.len(),
        out.display()
    );
    Ok(0)
}
