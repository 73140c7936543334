//! `harness collect DIR`: a sweep's finished cells into one results file, charts with each
//! family's frontier, the comparison at equal compute and a report.

use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CollectArgs {
    /// A sweep's output folder (written by `harness sweep`).
    pub dir: PathBuf,
}

pub fn run(args: CollectArgs) -> Result<u8> {
    let collected = crate::science::collect::read_cells(&args.dir)?;
    let (cells, skipped) = &collected;
    for s in skipped {
        println!("skipped {s}");
    }
    if cells.is_empty() {
        bail!("{}: no cell has finished yet", args.dir.display());
    }
    crate::report::sweep::write_sweep(&args.dir, &collected)?;
    println!(
        "collected {} of {} cells: {}/results.json, results.csv, plots/, report.html",
        cells.len(),
        cells.len() + skipped.len(),
        args.dir.display()
    );
    Ok(0)
}
