//! `harness bench`: seconds per training and evaluation step of each model at a preset's or
//! the Sudoku shape, beside the GEMM rate measured in the same run (`run::bench`).

use crate::run::bench::{preset_cases, sudoku_cases, time_case, BenchArgs};
use anyhow::{bail, Result};

pub fn run(args: BenchArgs) -> Result<u8> {
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    if args.batch_shards == Some(0) {
        bail!("--batch-shards must be at least 1");
    }
    let device = crate::run::device::default_device()?;
    let cases = match &args.preset {
        Some(p) => preset_cases(&args, p, &device)?,
        None => sudoku_cases(&args, &device)?,
    };
    println!(
        "{:<8} {:<22} {:>9} | {:>9} {:>8} {:>7} {:>6} | {:>9} {:>8} {:>7} {:>6} | {:>8}",
        "model",
        "shape",
        "GEMM GF/s",
        "train s",
        "GFLOP",
        "GF/s",
        "/GEMM",
        "eval s",
        "GFLOP",
        "GF/s",
        "/GEMM",
        "peak MB"
    );
    let mut rows = Vec::new();
    for case in &cases {
        let r = time_case(case, (args.repeats, args.batch_shards), &device)?;
        println!(
            "{:<8} {:<22} {:>9.1} | {:>9.4} {:>8.2} {:>7.1} {:>6.2} | {:>9.4} {:>8.2} {:>7.1} {:>6.2} | {:>8.0}",
            r.model,
            r.shape,
            r.gemm_gflops,
            r.train_seconds,
            r.train_gflop,
            r.train_gflop / r.train_seconds,
            r.train_gflop / r.train_seconds / r.gemm_gflops,
            r.eval_seconds,
            r.eval_gflop,
            r.eval_gflop / r.eval_seconds,
            r.eval_gflop / r.eval_seconds / r.gemm_gflops,
            r.peak_rss_mb
        );
        rows.push(r);
    }
    println!("GF/s: matmul FLOPs per second of the step; /GEMM: that over the f32 GEMM rate measured at the projection shape in this run");
    if let Some(path) = &args.json {
        datasets::format::write_json(path, &rows)?;
    }
    Ok(0)
}
