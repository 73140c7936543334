//! `harness plot results.json --out DIR`: the comparison charts from result records.

use crate::report::charts::write_plots;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PlotArgs {
    /// A `results.json` written by `harness compare` (a list of result records).
    pub results: PathBuf,
    /// Folder for the SVG and PNG files.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: PlotArgs) -> Result<u8> {
    let records = crate::science::record::read_records(&args.results)?;
    if records.is_empty() {
        anyhow::bail!("{} holds no result records", args.results.display());
    }
    for p in write_plots(&records, &args.out)? {
        println!("{} -> {}", p.title, p.png.display());
    }
    Ok(0)
}
