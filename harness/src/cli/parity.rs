//! `harness parity --golden DIR`: our models against the official code's recorded tensors.

use anyhow::{Context, Result};
use models::parity::{run_golden, run_optimizer_golden, Golden, Tolerances};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ParityArgs {
    /// A golden folder: config.json, weights.safetensors (or .pt), batch/trace/optim.safetensors.
    #[arg(long, required = true)]
    golden: Vec<PathBuf>,
    /// The weights file inside each folder.
    #[arg(long, default_value = "weights.safetensors")]
    weights: String,
    /// Relative tolerance of forward tensors (to the tensor's largest entry).
    #[arg(long, default_value_t = 1e-4)]
    forward_rtol: f64,
    /// Relative tolerance of gradients.
    #[arg(long, default_value_t = 1e-3)]
    gradient_rtol: f64,
    /// Relative tolerance of the optimiser results.
    #[arg(long, default_value_t = 1e-5)]
    optimizer_rtol: f64,
    /// Run the models in this `forward_dtype` (the golden tensors are float32); with
    /// bfloat16 every tolerance but the losses' becomes `--bf16-rtol` (`Tolerances::bf16`).
    #[arg(long, default_value = "float32", value_parser = ["float32", "bfloat16"])]
    forward_dtype: String,
    /// bf16 tolerance of every tensor, relative to its largest entry (the official code's own
    /// bf16 run moves by up to 0.19: `bench/bf16_yardstick.py`).
    #[arg(long, default_value_t = 0.56)]
    bf16_rtol: f64,
}

pub fn run(args: ParityArgs) -> Result<u8> {
    let tol = if args.forward_dtype == "bfloat16" {
        Tolerances::bf16(args.bf16_rtol)
    } else {
        Tolerances {
            forward: args.forward_rtol,
            gradient: args.gradient_rtol,
            ..Tolerances::default()
        }
    };
    let device = crate::run::device::default_device()?;
    let mut failed = 0;
    for dir in &args.golden {
        // One read of the folder serves both comparisons.
        let mut golden = Golden::open_with_weights(dir, &args.weights, &device)
            .with_context(|| format!("reading {}", dir.display()))?;
        golden.config.forward_dtype = args.forward_dtype.clone();
        let mut deviations =
            run_golden(&golden, tol).with_context(|| format!("running {}", dir.display()))?;
        if dir.join("optim.safetensors").exists() {
            deviations.extend(
                run_optimizer_golden(&golden, args.optimizer_rtol)
                    .with_context(|| format!("optimiser check of {}", dir.display()))?,
            );
        }
        println!(
            "{} ({}, {})",
            dir.display(),
            crate::run::device::describe(&device),
            args.forward_dtype
        );
        println!(
            "  {:<62} {:>11} {:>10} {:>10}",
            "tensor", "max|diff|", "relative", "tolerance"
        );
        for d in &deviations {
            let mark = if d.ok() { "" } else { "  <-- out of tolerance" };
            println!(
                "  {:<62} {:>11.3e} {:>10.2e} {:>10.2e}{mark}",
                d.name,
                d.max_abs_diff,
                d.relative(),
                d.tolerance
            );
        }
        let bad = deviations.iter().filter(|d| !d.ok()).count();
        let worst = models::parity::largest_relative(&deviations);
        println!(
            "  {} tensors, {} out of tolerance, largest relative deviation {:.2e}\n",
            deviations.len(),
            bad,
            worst
        );
        failed += bad;
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
