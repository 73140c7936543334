//! Data-parallel ranks as threads (`train --gpus N`): ranks 1..N follow rank 0's
//! instructions (step, evaluate a stage, stop), drawing the same global batch and exploration
//! from the same seeded streams, holding their rows of the slots and summing gradients with the
//! others; each evaluates its share of the batches into a file that rank 0 merges.

use crate::run::eval::{run_shard, to_batch, EvalSplit, Protocol, Stage};
use crate::run::resolve::{planned_trainer, ResolvedRun, TrainOptions};
use crate::run::state::RunState;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use datasets::format::LoadedDataset;
use datasets::loader::TrainSampler;
use datasets::sample::stream_rng;
use models::act::Carry;
use models::collective::{Collective, ThreadGroup};
use models::optim::lr_multiplier;
use models::trainer::Trainer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the ranks' trainers exchange gradients through: NCCL with `--features nccl`, else
/// the threads' own group (device-to-device copies). The rounds of `next_round` and
/// `barrier` always go through the threads' group.
pub fn gradient_exchanges(
    ranks: &[Arc<ThreadGroup>],
    devices: &[Device],
) -> Result<Vec<Arc<dyn Collective>>> {
    #[cfg(feature = "nccl")]
    if devices.iter().all(Device::is_cuda) {
        let _ = ranks;
        return Ok(models::nccl::NcclGroup::new(devices)?
            .into_iter()
            .map(|g| Arc::new(g) as Arc<dyn Collective>)
            .collect());
    }
    let _ = devices;
    Ok(ranks
        .iter()
        .map(|r| r.clone() as Arc<dyn Collective>)
        .collect())
}

/// A failing rank ends the others' waits: in the rounds of the threads' group and in the
/// gradient exchange (the same group, or NCCL's communicators, aborted).
pub fn abort_everywhere(rank: &ThreadGroup, exchange: &dyn Collective, why: &str) {
    rank.abort(why);
    exchange.abort(why);
}

/// Every rank must hold as many slots as the others: NCCL's all-gather of the puzzle rows
/// moves the same count from every rank, so unequal shares would hang or mix rows.
pub fn refuse_uneven_ranks(batch: usize, ranks: usize) -> Result<()> {
    if batch < ranks {
        bail!("--gpus {ranks}: the global batch of {batch} slots leaves a rank without one");
    }
    if !batch.is_multiple_of(ranks) {
        let fits: Vec<String> = (2..=batch.min(64))
            .filter(|r| batch.is_multiple_of(*r))
            .take(6)
            .map(|r| r.to_string())
            .collect();
        bail!(
            "--gpus {ranks}: the global batch of {batch} slots does not split evenly over {ranks} ranks ({} left over); every rank must hold the same number of slots. Rank counts that divide {batch}: {}",
            batch % ranks,
            match fits.is_empty() {
                true => "none above 1".to_string(),
                false => fits.join(", "),
            }
        );
    }
    Ok(())
}

/// What the ranks do next, as rank 0 says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Stop,
    Step,
    Evaluate(Stage),
    /// Hand rank 0 this rank's slots of the carry, for its checkpoint (`gather_carry`).
    Save,
}

impl Next {
    const ALL: [Next; 6] = [
        Next::Stop,
        Next::Step,
        Next::Evaluate(Stage::DuringTraining),
        Next::Evaluate(Stage::FinalValidation),
        Next::Evaluate(Stage::FinalTest),
        Next::Save,
    ];
}

/// Rank 0's `Next` (the others give none), read by every rank: its index in `Next::ALL`,
/// summed with the others' zeros.
pub fn next_round(rank: &ThreadGroup, mine: Option<Next>) -> Result<Next> {
    let code = mine.map_or(0, |n| Next::ALL.iter().position(|&m| m == n).unwrap_or(0));
    let flag = Tensor::new(&[code as f32], &Device::Cpu)?;
    let sum = rank.all_reduce_sum(vec![flag])?;
    let code = models::host::vec1::<f32>(&sum[0])?[0] as usize;
    Next::ALL
        .get(code)
        .copied()
        .with_context(|| format!("rank 0 sent an unknown instruction {code}"))
}

/// Every rank's slots of the carry, in rank order: the carry of the whole batch, which a
/// checkpoint holds so that it can continue on any rank count. Every rank calls it in the
/// same round (they step in lockstep, so all hold a carry or none does).
pub fn gather_carry(rank: &ThreadGroup, carry: Option<&Carry>) -> Result<Option<Carry>> {
    let Some(c) = carry else {
        return Ok(None);
    };
    // Through the checkpoint's own encoding, so the two cannot drift apart.
    let whole = c
        .to_tensors()?
        .into_iter()
        .map(|(name, t)| Ok((name, rank.all_gather(&t)?)))
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    Ok(Carry::from_tensors(&whole, c.inner.names)?)
}

/// Waits until every rank has arrived.
pub fn barrier(rank: &ThreadGroup) -> Result<()> {
    rank.all_reduce_sum(vec![Tensor::new(&[0f32], &Device::Cpu)?])?;
    Ok(())
}

/// Where rank `r` writes its share of the evaluation of `split` at `step`.
pub fn shard_file(run_dir: &Path, step: u64, split: EvalSplit, r: usize) -> PathBuf {
    run_dir
        .join("eval-shards")
        .join(format!("step_{step}.{}.rank{r}.json", split.name()))
}

/// This rank's share of the evaluation at `stage` of its trainer's step, written to its file.
pub fn evaluate_shard(
    run: &ResolvedRun,
    data: &LoadedDataset,
    trainer: &Trainer,
    (rank, stage): (&ThreadGroup, Stage),
    run_dir: &Path,
) -> Result<()> {
    let cfg = &run.config;
    let model = trainer.inference_model(&run.model_config, cfg.kind(), cfg.train.ema)?;
    let protocol = Protocol::of(run, stage);
    let pass = run_shard(
        trainer,
        model.as_ref(),
        data,
        &protocol,
        (rank.rank(), rank.world()),
    )?;
    let path = shard_file(run_dir, trainer.step, stage.split(), rank.rank());
    std::fs::create_dir_all(path.parent().expect("a shard file has a folder"))
        .with_context(|| format!("creating the folder of {}", path.display()))?;
    datasets::format::write_json(&path, &pass)?;
    Ok(())
}

/// A rank other than 0: the same trainer, batches and exploration as rank 0, stepping while
/// rank 0 does.
pub fn follow(
    run: &ResolvedRun,
    data: &LoadedDataset,
    opts: &TrainOptions,
    (rank, exchange): (Arc<ThreadGroup>, Arc<dyn Collective>),
    device: &Device,
    (run_dir, resume): (&Path, Option<&(RunState, PathBuf)>),
) -> Result<()> {
    let cfg = &run.config;
    let mut trainer = planned_trainer(run, opts, device)?;
    trainer.group = exchange;
    let mut sampler = TrainSampler::new(
        &data.data.train,
        data.metadata("train"),
        cfg.train.global_batch_size,
        stream_rng(cfg.seed, 1),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", data.dir.display()))?;
    let mut exploration = stream_rng(cfg.seed, 2);
    if let Some((state, checkpoint)) = resume {
        let global = cfg.train.global_batch_size;
        state.restore_rank(
            checkpoint,
            (&mut trainer, global),
            &mut sampler,
            &mut exploration,
        )?;
    }
    loop {
        match next_round(&rank, None)? {
            Next::Stop => return Ok(()),
            Next::Save => {
                gather_carry(&rank, trainer.carry.as_ref())?;
                continue;
            }
            Next::Evaluate(stage) => {
                evaluate_shard(run, data, &trainer, (&rank, stage), run_dir)?;
                barrier(&rank)?;
                continue;
            }
            Next::Step => {}
        }
        let batch = to_batch(&sampler.next_batch(), device)?;
        let t = &cfg.train;
        let lr_scale = lr_multiplier(
            trainer.step + 1,
            t.lr_warmup_steps,
            run.total_steps,
            t.lr_min_ratio,
        );
        trainer.train_step(&batch, lr_scale, &mut exploration)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use std::sync::Mutex;

    /// A gradient exchange of its own (NCCL's place), recording its abort.
    struct Exchange(Mutex<Option<String>>);

    impl Collective for Exchange {
        fn rank(&self) -> usize {
            0
        }
        fn world(&self) -> usize {
            2
        }
        fn all_reduce_sum(&self, tensors: Vec<Tensor>) -> candle_core::Result<Vec<Tensor>> {
            Ok(tensors)
        }
        fn all_gather(&self, tensor: &Tensor) -> candle_core::Result<Tensor> {
            Ok(tensor.clone())
        }
        fn abort(&self, why: &str) {
            *self.0.lock().unwrap() = Some(why.to_string());
        }
    }

    #[test]
    fn a_failing_rank_aborts_the_rounds_and_the_gradient_exchange() {
        let ranks = ThreadGroup::new(vec![Device::Cpu, Device::Cpu]);
        let exchange = Exchange(Mutex::new(None));
        abort_everywhere(&ranks[0], &exchange, "out of memory");
        assert_eq!(exchange.0.lock().unwrap().as_deref(), Some("out of memory"));
        let t = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = ranks[1].all_gather(&t).unwrap_err().to_string();
        assert!(err.contains("rank 0: out of memory"), "{err}");
    }
}
