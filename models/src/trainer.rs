//! One optimiser step per ACT call, as the official `pretrain.train_batch`: the loss of every
//! slot divided by the global batch, backward, AdamATan2 on the trainable parameters, sign-SGD
//! on the puzzle-embedding rows of the batch, the carry kept for the next call.

use crate::act::{
    act_step, exploration_min_steps, initial_carry, ActOptions, Batch, Carry, PerSlot,
};
use crate::collective::{rank_rows, Collective, SingleRank};
use crate::config::ModelConfig;
use crate::hrm::Hrm;
use crate::init::init_varmap;
use crate::loss::{act_step_with_loss, LossType, Metrics};
use crate::model::{ModelKind, RecursiveModel};
use crate::optim::{device_sparse_sign_sgd, AdamAtan2Config, AdamScalars};
use crate::params::Parameters;
use crate::transformer::Transformer;
use crate::trm::Trm;
use crate::trm_hier6::TrmHier6;
use crate::trm_singlez::TrmSingleZ;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const PUZZLE_TABLE: &str = "model.inner.puzzle_emb.weights";
/// Buffers: in the state dict, not updated by AdamATan2.
const BUFFERS: [&str; 3] = ["model.inner.H_init", "model.inner.L_init", PUZZLE_TABLE];

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimConfig {
    pub adam: AdamAtan2Config,
    pub puzzle_emb_lr: f64,
    pub puzzle_emb_weight_decay: f64,
    pub loss: LossType,
    /// EMA rate of the trainable parameters (TRM: 0.999), or none (HRM's recipe).
    pub ema: Option<f64>,
    /// ACT in training: slots halt early by the model's rule (`ActOptions::halt_early`).
    pub halt_early: bool,
}

/// One step's gradients: of a piece of this rank's slots, of all of them, or (after the
/// exchange) of the whole global batch, checked finite.
struct StepGradients {
    /// In the order of `Trainer::params`.
    params: Vec<Tensor>,
    /// `[slots, puzzle_emb_ndim]` rows of the puzzle table the slots used.
    puzzle_rows: Option<Tensor>,
    /// Each slot's puzzle id `[slots]`.
    ids: Tensor,
    metrics: Metrics,
}

impl StepGradients {
    /// Another piece's gradients added, its slots after these.
    fn add(self, other: StepGradients) -> Result<StepGradients> {
        let params = self
            .params
            .iter()
            .zip(&other.params)
            .map(|(a, b)| a + b)
            .collect::<Result<_>>()?;
        let puzzle_rows = match (self.puzzle_rows, other.puzzle_rows) {
            (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)?),
            (a, b) => a.or(b),
        };
        Ok(StepGradients {
            params,
            puzzle_rows,
            ids: Tensor::cat(&[self.ids, other.ids], 0)?,
            metrics: self.metrics.add(&other.metrics),
        })
    }
}

pub struct Trainer {
    pub model: Box<dyn RecursiveModel>,
    pub varmap: VarMap,
    /// Trainable parameters in name order, with their moments and EMA shadows.
    params: Parameters,
    pub optim: OptimConfig,
    /// Optimiser steps taken.
    pub step: u64,
    pub carry: Option<Carry>,
    /// Optimiser updates by the in-place CPU kernels (the default on the CPU), or by device
    /// tensor ops (elsewhere; on the CPU for the test that both give the same update).
    pub fused_updates: bool,
    /// This rank's slots run as this many pieces, one graph in memory at a time.
    pub micro_batches: usize,
    /// Each micro-batch runs as this many shards at once, one per worker thread, each
    /// single-threaded inside (`cpu_batch_shards`); 1 runs it whole, with threaded ops.
    pub batch_shards: usize,
    /// The data-parallel ranks this trainer is one of.
    pub group: std::sync::Arc<dyn Collective>,
}

/// The model of `kind` over the tensors of `vb` (rooted at the state dict's top,
/// `model.inner` below).
pub fn build_model(
    vb: &VarBuilder,
    cfg: &ModelConfig,
    kind: ModelKind,
    device: &Device,
) -> Result<Box<dyn RecursiveModel>> {
    let inner = vb.pp("model").pp("inner");
    Ok(match kind {
        ModelKind::Trm => Box::new(Trm::new(&inner, cfg, device)?),
        ModelKind::Hrm => Box::new(Hrm::new(&inner, cfg, device)?),
        ModelKind::TrmSingleZ => Box::new(TrmSingleZ::new(&inner, cfg, device)?),
        ModelKind::TrmHier6 => Box::new(TrmHier6::new(&inner, cfg, device)?),
        ModelKind::Transformer => Box::new(Transformer::new(&inner, cfg, device)?),
    })
}

/// How many shards a CPU step splits its batch into, for `threads` worker threads. At the
/// small shapes of CPU training a step is thousands of operations of microseconds each, and
/// threading each one costs more in waking and waiting than it saves; one shard per worker,
/// each running whole ops single-threaded, keeps every core busy instead. Measured at
/// every shape we time (results/bench-side-by-side.md), so no crossover back to op-level
/// threads is taken; a shard keeps at least one slot.
pub fn cpu_batch_shards(cfg: &ModelConfig, threads: usize) -> usize {
    threads.clamp(1, cfg.batch_size.max(1))
}

impl Trainer {
    /// A freshly initialised model (official initialisation, seeded).
    pub fn new(
        cfg: &ModelConfig,
        kind: ModelKind,
        optim: OptimConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let varmap = init_varmap(cfg, kind, seed, DType::F32, device)?;
        let model = build_model(
            &VarBuilder::from_varmap(&varmap, DType::F32, device),
            cfg,
            kind,
            device,
        )?;
        let trainable: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .filter(|(name, _)| !BUFFERS.contains(&name.as_str()))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        let params = Parameters::new(trainable, optim.ema.is_some())?;
        Ok(Trainer {
            model,
            varmap,
            params,
            optim,
            step: 0,
            carry: None,
            fused_updates: device.is_cpu(),
            micro_batches: 1,
            batch_shards: match device.is_cpu() {
                true => cpu_batch_shards(cfg, rayon::current_num_threads()),
                false => 1,
            },
            group: std::sync::Arc::new(SingleRank),
        })
    }

    pub fn puzzle_table(&self) -> Var {
        self.varmap
            .data()
            .lock()
            .expect("varmap")
            .get(PUZZLE_TABLE)
            .expect("the model has a puzzle table")
            .clone()
    }

    /// One ACT call of every slot and one optimiser step; `lr_scale` is the schedule's
    /// multiplier. `batch` is the global batch: this rank holds its rows (`rank_rows`) and
    /// runs them as `micro_batches` pieces, each with its own graph; the pieces' and ranks'
    /// gradients are summed before the one step, so neither count changes the update.
    pub fn train_step(
        &mut self,
        batch: &Batch,
        lr_scale: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Metrics> {
        let global = batch.inputs.dim(0)?;
        let local = rank_rows(global, self.group.rank(), self.group.world());
        // Drawn for the global batch on every rank, so no rank count changes them.
        let exploration = exploration_min_steps(
            self.model.config(),
            (true, self.optim.halt_early),
            rng,
            global,
        );
        let batch = batch.rows(local.clone())?;
        let carry = self.rank_carry(&batch, local.clone(), global)?;
        let table = self.puzzle_table();
        let pieces = self.micro_batches.max(1) * self.batch_shards.max(1);
        let pieces: Vec<_> = (0..pieces)
            .map(|i| rank_rows(local.len(), i, pieces))
            .filter(|piece| !piece.is_empty())
            .collect();
        let piece_step = |piece: &std::ops::Range<usize>| {
            let slots = local.start + piece.start..local.start + piece.end;
            let opts = ActOptions {
                training: true,
                halt_early: self.optim.halt_early,
                puzzle_grad: true,
                min_steps: exploration.as_ref().map(|m| &m[slots]),
            };
            // With its graph even when the worker that runs it waits in a `no_grad` block.
            let (next, out, loss) = crate::layers::with_grad(|| {
                act_step_with_loss(
                    self.model.as_ref(),
                    &carry.rows(piece.clone())?,
                    &batch.rows(piece.clone())?,
                    table.as_tensor(),
                    opts,
                    self.optim.loss,
                )
            })?;
            let grads = (&loss.total * (1.0 / global as f64))?.backward()?;
            Ok((self.gradients(&grads, &out, &next, loss.metrics)?, next))
        };
        let mut summed: Option<StepGradients> = None;
        let mut next_carries = Vec::new();
        // A wave of `batch_shards` pieces at once, one per worker; the sum keeps piece order,
        // so the update depends on the piece count only, never on which worker ran what. A
        // lone piece runs on a worker too: the kernels' parallel loops called from outside the
        // pool would each hand their work to it and wait, hundreds of times a step.
        for wave in pieces.chunks(self.batch_shards.max(1)) {
            let results: Vec<Result<(StepGradients, Carry)>> =
                wave.par_iter().map(piece_step).collect();
            for result in results {
                let (piece_grads, next) = result?;
                summed = Some(match summed {
                    None => piece_grads,
                    Some(s) => s.add(piece_grads)?,
                });
                next_carries.push(next);
            }
        }
        let grads = self.exchanged(summed.expect("a rank holds at least one slot"))?;
        self.step += 1;
        self.apply(&grads, lr_scale)?;
        self.carry = Some(match next_carries.len() {
            1 => next_carries.pop().expect("one carry"),
            _ => Carry::cat(&next_carries)?,
        });
        Ok(grads.metrics)
    }

    /// This rank's slots of the carry: its own, its rows of a checkpoint's carry of the
    /// whole batch (which holds every rank's slots), or fresh ones before the first step.
    fn rank_carry(
        &mut self,
        batch: &Batch,
        local: std::ops::Range<usize>,
        global: usize,
    ) -> Result<Carry> {
        match self.carry.take() {
            Some(c) if c.steps.len() == local.len() => Ok(c),
            Some(c) if c.steps.len() == global => c.rows(local),
            Some(c) => Err(candle_core::Error::msg(format!(
                "the carry holds {} slots, neither this rank's {} nor the whole batch of {global}",
                c.steps.len(),
                local.len()
            ))),
            None => initial_carry(self.model.as_ref(), batch),
        }
    }

    /// The gradients of one piece (zeros for a parameter the loss does not reach, which
    /// still decays, as in the official optimiser).
    fn gradients(
        &self,
        grads: &candle_core::backprop::GradStore,
        out: &crate::act::StepOutput,
        next: &Carry,
        metrics: Metrics,
    ) -> Result<StepGradients> {
        let params = self
            .params
            .iter()
            .map(|p| match grads.get(p.var.as_tensor()) {
                Some(g) => g.to_dtype(DType::F32),
                None => p.var.as_tensor().zeros_like(),
            })
            .collect::<Result<Vec<_>>>()?;
        let puzzle_rows = out
            .puzzle_rows
            .as_ref()
            .and_then(|rows| grads.get(rows.as_tensor()))
            .map(|g| g.to_dtype(DType::F32))
            .transpose()?;
        Ok(StepGradients {
            params,
            puzzle_rows,
            ids: next.examples.puzzle_identifiers.clone(),
            metrics,
        })
    }

    /// This rank's gradients summed with the other ranks' (the puzzle rows and ids of every
    /// rank gathered, as the official distributed sign-SGD), provided the loss and every
    /// gradient are finite: nothing is applied otherwise, since one NaN reaches every weight.
    fn exchanged(&self, local: StepGradients) -> Result<StepGradients> {
        let has_continue = local.metrics.q_continue_loss.is_some();
        let device = local.ids.device().clone();
        let mut tensors = local.params;
        tensors.push(Tensor::new(&local.metrics.values(), &device)?);
        let mut tensors = self.group.all_reduce_sum(tensors)?;
        let metrics = crate::host::vec1::<f64>(&tensors.pop().expect("the metrics"))?;
        let metrics = Metrics::from_values(&metrics, has_continue);
        let puzzle_rows = local
            .puzzle_rows
            .map(|rows| self.group.all_gather(&rows))
            .transpose()?;
        let grads = StepGradients {
            params: tensors,
            puzzle_rows,
            ids: self.group.all_gather(&local.ids)?,
            metrics,
        };
        self.check_finite(&grads)?;
        Ok(grads)
    }

    fn check_finite(&self, grads: &StepGradients) -> Result<()> {
        let metrics = &grads.metrics;
        if !metrics.lm_loss.is_finite() || !metrics.q_halt_loss.is_finite() {
            return Err(candle_core::Error::msg(format!(
                "the loss is not finite (lm_loss {}, q_halt_loss {})",
                metrics.lm_loss, metrics.q_halt_loss
            )));
        }
        // Sign-SGD reads only signs, where a NaN would pass as 0: checked too.
        // One sum per tensor and one download: a NaN or an infinity anywhere shows in it.
        let named = self
            .params
            .iter()
            .map(|p| p.name.as_str())
            .chain(grads.puzzle_rows.iter().map(|_| PUZZLE_TABLE));
        let tensors: Vec<&Tensor> = grads.params.iter().chain(&grads.puzzle_rows).collect();
        let sums = Tensor::stack(
            &tensors
                .iter()
                .map(|t| t.sum_all())
                .collect::<Result<Vec<_>>>()?,
            0,
        )?;
        let sums = crate::host::vec1::<f32>(&sums)?;
        if let Some((name, sum)) = named.zip(&sums).find(|(_, s)| !s.is_finite()) {
            return Err(candle_core::Error::msg(format!(
                "the gradient of {name} is not finite (its sum is {sum})"
            )));
        }
        Ok(())
    }

    /// AdamATan2 (and EMA) on the trainable parameters, sign-SGD on the batch's rows of the
    /// puzzle table (`grads.ids`, one per slot), in place.
    fn apply(&mut self, grads: &StepGradients, lr_scale: f64) -> Result<()> {
        let ids = &grads.ids;
        let lr = self.optim.adam.lr * lr_scale;
        let scalars = AdamScalars::new(&self.optim.adam, lr, self.step);
        self.params
            .step(&grads.params, scalars, self.optim.ema, self.fused_updates)?;
        if let Some(local) = &grads.puzzle_rows {
            let table = self.puzzle_table();
            let (lr, wd) = (
                self.optim.puzzle_emb_lr * lr_scale,
                self.optim.puzzle_emb_weight_decay,
            );
            if self.fused_updates {
                crate::kernels::optim::sparse_sign_sgd(table.as_tensor(), ids, local, lr, wd)?;
            } else {
                device_sparse_sign_sgd(table.as_tensor(), ids, local, lr, wd)?;
            }
        }
        Ok(())
    }

    /// Every tensor of the state dict (weights and buffers), detached (shared storage).
    fn detached_tensors(&self) -> Vec<(String, Tensor)> {
        self.varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect()
    }

    /// The model over detached copies of the weights (shared storage), so inference records
    /// no graph and frees each activation as soon as it is used; with `use_ema`, the EMA
    /// weights replace the trainable ones (buffers and the puzzle table stay live), as the
    /// official evaluation does.
    pub fn inference_model(
        &self,
        cfg: &ModelConfig,
        kind: ModelKind,
        use_ema: bool,
    ) -> Result<Box<dyn RecursiveModel>> {
        let device = self.puzzle_table().as_tensor().device().clone();
        let mut tensors: std::collections::HashMap<String, Tensor> =
            self.detached_tensors().into_iter().collect();
        if let (true, Some(shadows)) = (use_ema, self.params.ema_weights()?) {
            tensors.extend(shadows);
        }
        build_model(
            &VarBuilder::from_tensors(tensors, DType::F32, &device),
            cfg,
            kind,
            &device,
        )
    }

    /// One evaluation call (no halting on q) of `model` (see `inference_model`) from
    /// `carry`: the argmax predictions and the halting logits, without the training loss.
    /// The rows run as `batch_shards` shards at once: the same outputs to within the last
    /// bits (a GEMM rounds by its row count), the same bits for a shard count on any threads.
    pub fn eval_step(
        &self,
        model: &dyn RecursiveModel,
        carry: &Carry,
        batch: &Batch,
    ) -> Result<(Carry, EvalStep)> {
        let rows = batch.inputs.dim(0)?;
        let shards = self.batch_shards.clamp(1, rows.max(1));
        if shards == 1 {
            // On a worker, for the reason `train_step` gives.
            return rayon::scope(|_| self.eval_rows(model, carry, batch));
        }
        let parts: Vec<Result<(Carry, EvalStep)>> = (0..shards)
            .into_par_iter()
            .map(|i| {
                let part = rank_rows(rows, i, shards);
                self.eval_rows(model, &carry.rows(part.clone())?, &batch.rows(part)?)
            })
            .collect();
        let (carries, steps): (Vec<Carry>, Vec<EvalStep>) = parts
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let mut step = EvalStep {
            preds: Vec::with_capacity(rows),
            q_halt: Vec::with_capacity(rows),
            q_continue: Vec::with_capacity(rows),
        };
        for part in steps {
            step.preds.extend(part.preds);
            step.q_halt.extend(part.q_halt);
            step.q_continue.extend(part.q_continue);
        }
        Ok((Carry::cat(&carries)?, step))
    }

    fn eval_rows(
        &self,
        model: &dyn RecursiveModel,
        carry: &Carry,
        batch: &Batch,
    ) -> Result<(Carry, EvalStep)> {
        let table = self.puzzle_table();
        let opts = ActOptions {
            training: false,
            halt_early: false,
            puzzle_grad: false,
            min_steps: None,
        };
        let (next, out) = act_step(model, carry, batch, &table.as_tensor().detach(), opts)?;
        let logits = |t: &Tensor| crate::host::vec1::<f32>(&t.to_dtype(DType::F32)?);
        let step = EvalStep {
            preds: crate::host::vec2::<u32>(&out.logits.argmax(candle_core::D::Minus1)?)?,
            q_halt: logits(&out.q_halt)?,
            q_continue: logits(&out.q_continue)?,
        };
        Ok((next, step))
    }
}

/// What one evaluation call returns per slot.
pub struct EvalStep {
    /// Argmax predictions `[B][S]`.
    pub preds: Vec<Vec<u32>>,
    pub q_halt: Vec<f32>,
    pub q_continue: Vec<f32>,
}

/// Everything a run needs to continue exactly where it stopped.
impl Trainer {
    /// Tensors of the full training state under official names (weights and buffers) plus
    /// `optim.m.*`, `optim.v.*`, `ema.*`, the carry (`carry.*`) and the step. `carry` is this
    /// trainer's own, or with several ranks the slots of all of them (`Carry::cat` in rank
    /// order), so that any rank count that divides the batch can continue from it.
    pub fn state_tensors(&self, carry: Option<&Carry>) -> Result<Vec<(String, Tensor)>> {
        let device = self.puzzle_table().as_tensor().device().clone();
        let mut out: Vec<(String, Tensor)> = self.detached_tensors().into_iter().collect();
        out.extend(self.params.state_tensors()?);
        out.push((
            "optim.step".into(),
            Tensor::new(&[self.step as i64], &device)?,
        ));
        if let Some(c) = carry {
            out.extend(c.to_tensors()?);
        }
        Ok(out)
    }

    /// Loads model weights only (an official or exported state dict: every weight and buffer
    /// under its official name); the EMA shadows, if any, become copies of them.
    pub fn load_weights(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        // Strict, as PyTorch's load_state_dict: a tensor the model lacks means another model.
        {
            let vars = self.varmap.data().lock().expect("varmap");
            let mut unexpected: Vec<&String> =
                state.keys().filter(|k| !vars.contains_key(*k)).collect();
            unexpected.sort();
            if let Some(first) = unexpected.first() {
                return Err(candle_core::Error::msg(format!(
                    "the state dict has {} tensors this model lacks, e.g. {first}: it belongs to another model or size",
                    unexpected.len()
                )));
            }
        }
        for (name, var) in self.varmap.data().lock().expect("varmap").iter() {
            let t = state
                .get(name)
                .ok_or_else(|| candle_core::Error::msg(format!("the state dict lacks {name}")))?;
            if t.dims() != var.as_tensor().dims() {
                return Err(candle_core::Error::msg(format!(
                    "{name} has shape {:?} in the state dict, {:?} in the model",
                    t.dims(),
                    var.as_tensor().dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        self.params.reset_ema()?;
        Ok(())
    }

    /// Restores a state written by `state_tensors` into this (identically configured) trainer.
    pub fn restore(&mut self, state: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str| {
            state
                .get(name)
                .ok_or_else(|| candle_core::Error::msg(format!("checkpoint lacks {name}")))
        };
        for (name, var) in self.varmap.data().lock().expect("varmap").iter() {
            var.set(&get(name)?.to_dtype(DType::F32)?)?;
        }
        self.params.restore(state)?;
        self.step = crate::host::vec1::<i64>(get("optim.step")?)?[0] as u64;
        self.carry = Carry::from_tensors(state, self.model.kind().state_names())?;
        Ok(())
    }
}
