//! `harness plan --measure`: two real training steps on this CPU at a plan's shape, the peak
//! of live heap bytes and of resident memory they reach, against the plan's estimate.

use crate::run::config::RunConfig;
use crate::run::heap::MI_OPTION_PURGE_DELAY;
use crate::run::memory::{gb, Plan};
use anyhow::{anyhow, Context, Result};
use candle_core::Device;

/// Peak resident memory of this process so far (`VmHWM`), and now (`VmRSS`), in bytes.
fn resident() -> Result<(u64, u64)> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("/proc/self/status has no {name}"))?;
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("/proc/self/status: unreadable {name}"))?;
        Ok(kb * 1024)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Two training steps at the plan's shape on the CPU: the peak of the bytes live on the
/// heap over what was live before the model existed, and the growth of the peak resident
/// memory (with freed pages returned at once), against the estimate. Returns (estimate,
/// peak live, resident growth).
pub fn measure(run: &RunConfig, p: &Plan) -> Result<(u64, u64, u64)> {
    // Freed pages go back to the kernel at once while measuring, so that the resident size
    // follows what is live (`main` otherwise keeps them for speed).
    // SAFETY: sets a process-wide allocator option; mimalloc reads it at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let (_, rss_before) = resident()?;
    let (live_before, _) = crate::run::heap::live_and_peak();
    crate::run::heap::reset_peak();
    measured_steps(run, p)?;
    let (_, peak_live) = crate::run::heap::live_and_peak();
    let (peak_rss, _) = resident()?;
    let live = peak_live.saturating_sub(live_before);
    let rss = peak_rss.saturating_sub(rss_before);
    println!(
        "measured over two steps: peak live heap {} (estimate / measured = {:.2}); peak resident memory grew by {} (estimate / resident = {:.2})",
        gb(live),
        p.peak as f64 / live.max(1) as f64,
        gb(rss),
        p.peak as f64 / rss.max(1) as f64
    );
    Ok((p.peak, live, rss))
}

fn measured_steps(run: &RunConfig, p: &Plan) -> Result<()> {
    use rand::{Rng, SeedableRng};
    let cfg = &p.model_config;
    let device = Device::Cpu;
    let mut trainer = models::trainer::Trainer::new(
        cfg,
        run.kind(),
        crate::run::resolve::optim_config(run)?,
        run.seed,
        &device,
    )?;
    trainer.micro_batches = p.micro_batches;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(run.seed);
    let (b, s) = (cfg.batch_size, cfg.seq_len);
    for _ in 0..2 {
        let tokens: Vec<u32> = (0..b * s)
            .map(|_| rng.random_range(1..cfg.vocab_size as u32))
            .collect();
        let labels: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let ids: Vec<u32> = (0..b)
            .map(|_| rng.random_range(0..cfg.num_puzzle_identifiers as u32))
            .collect();
        let batch = models::act::Batch {
            inputs: candle_core::Tensor::from_vec(tokens, (b, s), &device)?,
            labels: candle_core::Tensor::from_vec(labels, (b, s), &device)?,
            puzzle_identifiers: candle_core::Tensor::from_vec(ids, b, &device)?,
        };
        trainer.train_step(&batch, 1.0, &mut rng)?;
    }
    Ok(())
}
