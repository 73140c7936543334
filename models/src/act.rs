//! Adaptive computation time, shared by both models (official `..._ACTV1.forward`): a
//! persistent batch of slots; each call resets the slots that halted, loads their new data
//! from the incoming batch, runs one supervision step, and decides who halts.

use crate::model::RecursiveModel;
use crate::shell::InnerCarry;
use candle_core::{DType, Result, Tensor, Var};
use rand::Rng;

/// One batch: `inputs` u32 `[B, S]`, `labels` i64 `[B, S]` with -100 where ignored,
/// `puzzle_identifiers` u32 `[B]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub inputs: Tensor,
    pub labels: Tensor,
    pub puzzle_identifiers: Tensor,
}

pub const IGNORE_LABEL: i64 = -100;

impl Batch {
    /// Rows `rows` of every tensor.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Result<Batch> {
        let take = |t: &Tensor| t.narrow(0, rows.start, rows.len());
        Ok(Batch {
            inputs: take(&self.inputs)?,
            labels: take(&self.labels)?,
            puzzle_identifiers: take(&self.puzzle_identifiers)?,
        })
    }

    /// The batches' rows one after another.
    pub fn cat(parts: &[Batch]) -> Result<Batch> {
        let join =
            |f: fn(&Batch) -> &Tensor| Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0);
        Ok(Batch {
            inputs: join(|b| &b.inputs)?,
            labels: join(|b| &b.labels)?,
            puzzle_identifiers: join(|b| &b.puzzle_identifiers)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Carry {
    pub inner: InnerCarry,
    /// Supervision steps taken by each slot's current example.
    pub steps: Vec<u32>,
    pub halted: Vec<bool>,
    /// The examples currently in the slots.
    pub data: Batch,
}

impl Carry {
    /// Slots `rows`.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Result<Carry> {
        let take = |t: &Tensor| t.narrow(0, rows.start, rows.len());
        Ok(Carry {
            inner: InnerCarry {
                z_h: take(&self.inner.z_h)?,
                z_l: take(&self.inner.z_l)?,
            },
            steps: self.steps[rows.clone()].to_vec(),
            halted: self.halted[rows.clone()].to_vec(),
            data: self.data.rows(rows)?,
        })
    }

    /// The carries' slots one after another.
    pub fn cat(parts: &[Carry]) -> Result<Carry> {
        let join =
            |f: fn(&Carry) -> &Tensor| Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0);
        Ok(Carry {
            inner: InnerCarry {
                z_h: join(|c| &c.inner.z_h)?,
                z_l: join(|c| &c.inner.z_l)?,
            },
            steps: parts.iter().flat_map(|c| c.steps.clone()).collect(),
            halted: parts.iter().flat_map(|c| c.halted.clone()).collect(),
            data: Batch::cat(&parts.iter().map(|c| c.data.clone()).collect::<Vec<_>>())?,
        })
    }
}

#[derive(Debug)]
pub struct StepOutput {
    pub logits: Tensor,
    pub q_halt: Tensor,
    pub q_continue: Tensor,
    /// HRM's bootstrapped target for q_continue (training only).
    pub target_q_continue: Option<Tensor>,
    /// The puzzle-embedding rows of the slots, as a variable when their gradient is wanted
    /// (official `local_weights`), for the sparse sign-SGD step.
    pub puzzle_rows: Option<Var>,
}

/// Every slot starts halted, so the first call loads the whole batch.
pub fn initial_carry(model: &dyn RecursiveModel, batch: &Batch) -> Result<Carry> {
    let b = batch.inputs.dim(0)?;
    Ok(Carry {
        inner: model
            .shell()
            .initial_carry(b, model.config().full_seq_len())?,
        steps: vec![0; b],
        halted: vec![true; b],
        data: batch.clone(),
    })
}

/// Rows of `on_true` where `rows` is set, of `on_false` elsewhere (no work when all or none
/// are set: most steps reset no slot, the first resets all).
fn select_rows(
    rows: &[bool],
    mask: &Tensor,
    on_true: &Tensor,
    on_false: &Tensor,
) -> Result<Tensor> {
    if rows.iter().all(|&r| r) {
        return Ok(on_true.clone());
    }
    if !rows.iter().any(|&r| r) {
        return Ok(on_false.clone());
    }
    let mut shape = vec![on_true.dim(0)?];
    shape.extend(std::iter::repeat_n(1, on_true.rank() - 1));
    mask.reshape(shape)?
        .broadcast_as(on_true.shape())?
        .where_cond(on_true, on_false)
}

/// The exploration of one call for `slots` slots, drawn in slot order (as one call over
/// the whole global batch would): each slot's minimum number of steps before it may halt, 0
/// where it does not explore. Nothing is drawn when exploration is off, so a run without it
/// leaves the stream untouched.
pub fn exploration_min_steps<R: Rng>(
    cfg: &crate::config::ModelConfig,
    opts: (bool, bool),
    rng: &mut R,
    slots: usize,
) -> Option<Vec<u32>> {
    let (training, halt_early) = opts;
    let max_steps = cfg.halt_max_steps as u32;
    if !(training && halt_early && max_steps > 1 && cfg.halt_exploration_prob > 0.0) {
        return None;
    }
    Some(
        (0..slots)
            .map(|_| {
                if rng.random::<f64>() < cfg.halt_exploration_prob {
                    rng.random_range(2..=max_steps)
                } else {
                    0
                }
            })
            .collect(),
    )
}

/// Options of one call.
pub struct ActOptions<'a> {
    pub training: bool,
    /// In training, a slot halts before `halt_max_steps` when the model's rule says so (with
    /// exploration), as the official ACT; false runs every slot through all of them (the
    /// halting head still learns).
    pub halt_early: bool,
    /// Track the gradient of the puzzle-embedding rows.
    pub puzzle_grad: bool,
    /// Each slot's exploration (`exploration_min_steps`), or none.
    pub min_steps: Option<&'a [u32]>,
}

/// One call of the ACT wrapper: one supervision step of every slot.
pub fn act_step(
    model: &dyn RecursiveModel,
    carry: &Carry,
    batch: &Batch,
    puzzle_table: &Tensor,
    opts: ActOptions<'_>,
) -> Result<(Carry, StepOutput)> {
    let cfg = model.config();
    let device = batch.inputs.device();
    let halted = Tensor::from_vec(
        carry.halted.iter().map(|&h| h as u8).collect::<Vec<_>>(),
        carry.halted.len(),
        device,
    )?;
    let fresh = if carry.halted.iter().any(|&h| h) {
        model
            .shell()
            .initial_carry(carry.halted.len(), cfg.full_seq_len())?
    } else {
        carry.inner.clone()
    };
    let inner = InnerCarry {
        z_h: select_rows(&carry.halted, &halted, &fresh.z_h, &carry.inner.z_h)?,
        z_l: select_rows(&carry.halted, &halted, &fresh.z_l, &carry.inner.z_l)?,
    };
    let data = Batch {
        inputs: select_rows(&carry.halted, &halted, &batch.inputs, &carry.data.inputs)?,
        labels: select_rows(&carry.halted, &halted, &batch.labels, &carry.data.labels)?,
        puzzle_identifiers: select_rows(
            &carry.halted,
            &halted,
            &batch.puzzle_identifiers,
            &carry.data.puzzle_identifiers,
        )?,
    };
    let rows = puzzle_table.index_select(&data.puzzle_identifiers, 0)?;
    let puzzle_rows = if opts.puzzle_grad {
        Some(Var::from_tensor(&rows)?)
    } else {
        None
    };
    let rows = puzzle_rows.as_ref().map_or(rows, |v| v.as_tensor().clone());

    let x = model.shell().input_embeddings(&data.inputs, &rows)?;
    let stepped = model.supervision_step(&inner, &x)?;
    let (logits, q_halt, q_continue) = model.shell().heads(&stepped.z_h)?;
    let new_inner = InnerCarry {
        z_h: stepped.z_h.detach(),
        z_l: stepped.z_l.detach(),
    };

    let max_steps = cfg.halt_max_steps as u32;
    let steps: Vec<u32> = carry
        .steps
        .iter()
        .zip(&carry.halted)
        .map(|(&s, &h)| if h { 1 } else { s + 1 })
        .collect();
    let is_last: Vec<bool> = steps.iter().map(|&s| s >= max_steps).collect();
    let mut new_halted = is_last.clone();
    let mut target_q_continue = None;
    if opts.training && max_steps > 1 {
        if opts.halt_early {
            let qh = crate::host::vec1::<f32>(&q_halt.to_dtype(DType::F32)?)?;
            let qc = crate::host::vec1::<f32>(&q_continue.to_dtype(DType::F32)?)?;
            for (i, h) in new_halted.iter_mut().enumerate() {
                *h |= model.halts(qh[i], qc[i]);
            }
        }
        if let (true, Some(min_steps)) = (opts.halt_early, opts.min_steps) {
            for ((h, &s), &min) in new_halted.iter_mut().zip(&steps).zip(min_steps) {
                *h &= s >= min;
            }
        }
        if model.learns_continue() {
            // Q-learning target from one more step on the new carry, without a graph.
            let (next_halt, next_continue) = crate::layers::no_grad(|| -> Result<_> {
                let next = model.supervision_step(&new_inner, &x.detach())?;
                let (_, halt, cont) = model.shell().heads(&next.z_h)?;
                Ok((halt, cont))
            })?;
            let last = Tensor::from_vec(
                is_last.iter().map(|&l| l as u8).collect::<Vec<_>>(),
                is_last.len(),
                device,
            )?;
            let best = last.where_cond(&next_halt, &next_halt.maximum(&next_continue)?)?;
            target_q_continue = Some(candle_nn::ops::sigmoid(&best)?.detach());
        }
    }
    let new_carry = Carry {
        inner: new_inner,
        steps,
        halted: new_halted,
        data,
    };
    Ok((
        new_carry,
        StepOutput {
            logits,
            q_halt,
            q_continue,
            target_q_continue,
            puzzle_rows,
        },
    ))
}
