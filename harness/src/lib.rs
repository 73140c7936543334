//! `harness`: the TRM-vs-HRM benchmark's command line and everything below it, in four
//! layers, each importing only from those below (`tests/layers.rs` checks it):
//! `cli` (a file per subcommand: parse, call, print) over `report` (CSV rows, tables,
//! charts, HTML) over `science` (records, statistics, comparisons, sweeps, audits) over `run`
//! (config, data, the training loop, evaluation, the run directory).

pub mod cli;
pub mod report;
pub mod run;
pub mod science;
#[cfg(test)]
mod test_support;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Benchmark harness comparing the Tiny Recursive Model (TRM) and the Hierarchical Reasoning Model (HRM)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build task datasets (Sudoku-Extreme, Maze-Hard, ARC-AGI-1/2) or inspect one.
    #[command(subcommand)]
    Data(cli::data::DataCommand),
    /// Report what each split of one or more dataset directories contains, what leaks from
    /// test into training, and whether the data keeps its declared protocol. Exits non-zero
    /// when a protocol is broken or the files no longer match their manifest.
    Audit(cli::audit::AuditArgs),
    /// Compare our models with tensors recorded from the official PyTorch code (a folder in
    /// the `golden/` format) and print the largest deviation of every tensor. Exits 1 when a
    /// tensor is out of tolerance.
    Parity(cli::parity::ParityArgs),
    /// Time one training step and one evaluation step of TRM-Att and HRM on this machine
    /// (Sudoku shape), against the machine's measured f32 GEMM rate and the official PyTorch
    /// code's times.
    Bench(run::bench::BenchArgs),
    /// The analytic peak memory of one training step (weights, optimiser state, puzzle
    /// table, the graph's activations) and the micro-batches that fit a device; --measure
    /// checks the estimate against two real steps on this CPU. Exits 1 when it does not fit.
    Plan(cli::plan::PlanArgs),
    /// Train one model on one task under a preset (official loop, EMA evaluation,
    /// checkpoints; Ctrl-C saves and exits, --resume continues).
    Train(cli::train::TrainArgs),
    /// Evaluate a run directory or a checkpoint under the harness's protocol and write its
    /// predictions and scores.
    Eval(cli::eval::EvalArgs),
    /// Train and evaluate several models on the same data under the same budget and
    /// protocol; write a table, result records, plots and an HTML report.
    Compare(cli::compare::CompareArgs),
    /// Draw the comparison charts (SVG and PNG) from a results.json.
    Plot(cli::plot::PlotArgs),
    /// Run a plan's cells (models x seeds x axes over config keys), each a resumable run
    /// directory named by the hash of its config, data and code; --status lists them.
    Sweep(cli::sweep::SweepArgs),
    /// Gather a sweep's finished cells into one results file, charts and a report.
    Collect(cli::collect::CollectArgs),
    /// Recompute a comparison's table, paired statistics, charts and report from its result
    /// records, without training.
    Report(cli::report::ReportArgs),
}

/// Runs the command line `args` (program name first). Exit codes: 0 success, 1 a check
/// failed (e.g. an audit found a protocol violation), 2 an error (reported in the `Err`).
pub fn run<I, T>(args: I) -> anyhow::Result<u8>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version are not errors.
            e.print()?;
            return Ok(0);
        }
        Err(e) => return Err(anyhow::anyhow!(e.to_string())),
    };
    match cli.command {
        Command::Data(cmd) => cli::data::run(cmd),
        Command::Audit(args) => cli::audit::run(args),
        Command::Parity(args) => cli::parity::run(args),
        Command::Plan(args) => cli::plan::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Compare(args) => cli::compare::run(args),
        Command::Plot(args) => cli::plot::run(args),
        Command::Sweep(args) => cli::sweep::run(args),
        Command::Collect(args) => cli::collect::run(args),
        Command::Report(args) => cli::report::run(args),
    }
}
