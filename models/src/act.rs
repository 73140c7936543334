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

#[derive(Debug, Clone)]
pub struct Carry {
    pub inner: InnerCarry,
    /// Supervision steps taken by each slot's current example.
    pub steps: Vec<u32>,
    pub halted: Vec<bool>,
    /// The examples currently in the slots.
    pub data: Batch,
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

/// Options of one call.
pub struct ActOptions<'a, R: Rng> {
    pub training: bool,
    /// In training, a slot halts before `halt_max_steps` when the model's rule says so (with
    /// exploration), as the official ACT; false runs every slot through all of them (the
    /// halting head still learns).
    pub halt_early: bool,
    /// Track the gradient of the puzzle-embedding rows.
    pub puzzle_grad: bool,
    /// Draws the exploration (only used in training with a positive probability).
    pub rng: &'a mut R,
}

/// One call of the ACT wrapper: one supervision step of every slot.
pub fn act_step<R: Rng>(
    model: &dyn RecursiveModel,
    carry: &Carry,
    batch: &Batch,
    puzzle_table: &Tensor,
    opts: ActOptions<'_, R>,
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
        if opts.halt_early && cfg.halt_exploration_prob > 0.0 {
            for (i, h) in new_halted.iter_mut().enumerate() {
                let min_steps = if opts.rng.random::<f64>() < cfg.halt_exploration_prob {
                    opts.rng.random_range(2..=max_steps)
                } else {
                    0
                };
                *h &= steps[i] >= min_steps;
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
