//! Adaptive computation time, shared by both models (official `..._ACTV1.forward`): a
//! persistent batch of slots; each call resets the slots that halted, loads their new data
//! from the incoming batch, runs one supervision step, and decides who halts.

use crate::frame::InnerCarry;
use crate::model::RecursiveModel;
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::ops::Range;

/// One batch: `inputs` u32 `[B, S]`, `labels` i64 `[B, S]` with -100 where ignored,
/// `puzzle_identifiers` u32 `[B]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub inputs: Tensor,
    pub labels: Tensor,
    pub puzzle_identifiers: Tensor,
}

/// The label of positions no loss reads: the one the data loader writes.
pub use datasets::loader::IGNORE_LABEL;

#[derive(Debug, Clone)]
pub struct Carry {
    pub inner: InnerCarry,
    /// Supervision steps taken by each slot's current example.
    pub steps: Vec<u32>,
    pub halted: Vec<bool>,
    /// The examples currently in the slots.
    pub examples: Batch,
}

/// Values holding one entry per slot along their first axis (tensors, host vectors, and
/// structs of them: `Batch`, `InnerCarry`, `Carry`): the slots `rows` of one, and the slots
/// of several one after another.
pub trait PerSlot: Sized {
    /// Slots `rows`.
    fn rows(&self, rows: Range<usize>) -> Result<Self>;
    /// The parts' slots one after another.
    fn cat<P: Borrow<Self>>(parts: &[P]) -> Result<Self>;
}

impl PerSlot for Tensor {
    fn rows(&self, rows: Range<usize>) -> Result<Self> {
        self.narrow(0, rows.start, rows.len())
    }

    fn cat<P: Borrow<Self>>(parts: &[P]) -> Result<Self> {
        Tensor::cat(&parts.iter().map(|p| p.borrow()).collect::<Vec<_>>(), 0)
    }
}

impl<T: Clone> PerSlot for Vec<T> {
    fn rows(&self, rows: Range<usize>) -> Result<Self> {
        Ok(self[rows].to_vec())
    }

    fn cat<P: Borrow<Self>>(parts: &[P]) -> Result<Self> {
        Ok(parts
            .iter()
            .flat_map(|p| p.borrow().iter().cloned())
            .collect())
    }
}

/// `PerSlot` for a struct, field by field.
macro_rules! per_slot_fields {
    ($ty:ident { $($field:ident),+ }) => {
        impl PerSlot for $ty {
            fn rows(&self, rows: Range<usize>) -> Result<Self> {
                Ok($ty {
                    $($field: self.$field.rows(rows.clone())?),+
                })
            }

            fn cat<P: Borrow<Self>>(parts: &[P]) -> Result<Self> {
                Ok($ty {
                    $($field: PerSlot::cat(
                        &parts.iter().map(|p| &p.borrow().$field).collect::<Vec<_>>(),
                    )?),+
                })
            }
        }
    };
}

per_slot_fields!(Batch {
    inputs,
    labels,
    puzzle_identifiers
});
impl PerSlot for InnerCarry {
    fn rows(&self, rows: Range<usize>) -> Result<Self> {
        let states = self.states.iter().map(|s| s.rows(rows.clone()));
        Ok(InnerCarry::new(self.names, states.collect::<Result<_>>()?))
    }

    fn cat<P: Borrow<Self>>(parts: &[P]) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| candle_core::Error::msg("no carries to concatenate"))?
            .borrow();
        let states = (0..first.states.len()).map(|i| {
            let column: Vec<&Tensor> = parts.iter().map(|p| &p.borrow().states[i]).collect();
            <Tensor as PerSlot>::cat(&column)
        });
        Ok(InnerCarry::new(first.names, states.collect::<Result<_>>()?))
    }
}
per_slot_fields!(Carry {
    inner,
    steps,
    halted,
    examples
});

impl Carry {
    /// The carry as checkpoint tensors (`carry.*`, the official names `z_H`, `z_L` for the
    /// states), one entry per slot along each tensor's first axis.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let device = self.inner.output().device();
        let steps: Vec<i64> = self.steps.iter().map(|&s| i64::from(s)).collect();
        let halted: Vec<u8> = self.halted.iter().map(|&h| u8::from(h)).collect();
        let states = self.inner.names.iter().zip(&self.inner.states);
        let mut tensors: Vec<(String, Tensor)> = states
            .map(|(name, state)| (format!("carry.{name}"), state.clone()))
            .collect();
        tensors.extend([
            ("carry.steps".into(), Tensor::new(steps, device)?),
            ("carry.halted".into(), Tensor::new(halted, device)?),
            ("carry.inputs".into(), self.examples.inputs.clone()),
            ("carry.labels".into(), self.examples.labels.clone()),
            (
                "carry.puzzle_identifiers".into(),
                self.examples.puzzle_identifiers.clone(),
            ),
        ]);
        Ok(tensors)
    }

    /// The carry `to_tensors` wrote into `state` for a model with the states `names`, if it
    /// holds one; one with other states is refused by name.
    pub fn from_tensors(
        state: &HashMap<String, Tensor>,
        names: &'static [&'static str],
    ) -> Result<Option<Carry>> {
        let mut held: Vec<&str> = state
            .keys()
            .filter_map(|k| k.strip_prefix("carry.z_"))
            .collect();
        if held.is_empty() {
            return Ok(None);
        }
        held.sort_unstable();
        let mut wanted: Vec<&str> = names.iter().map(|n| n.trim_start_matches("z_")).collect();
        wanted.sort_unstable();
        if held != wanted {
            return Err(candle_core::Error::msg(format!(
                "the checkpoint's carry holds the states {held:?} (as z_*), this model's are {names:?}"
            )));
        }
        let get = |name: &str| {
            state
                .get(name)
                .cloned()
                .ok_or_else(|| candle_core::Error::msg(format!("checkpoint lacks {name}")))
        };
        Ok(Some(Carry {
            inner: InnerCarry::new(
                names,
                names
                    .iter()
                    .map(|n| get(&format!("carry.{n}")))
                    .collect::<Result<_>>()?,
            ),
            steps: crate::host::vec1::<i64>(&get("carry.steps")?)?
                .iter()
                .map(|&s| s as u32)
                .collect(),
            halted: crate::host::vec1::<u8>(&get("carry.halted")?)?
                .iter()
                .map(|&h| h != 0)
                .collect(),
            examples: Batch {
                inputs: get("carry.inputs")?,
                labels: get("carry.labels")?,
                puzzle_identifiers: get("carry.puzzle_identifiers")?,
            },
        }))
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
            .frame()
            .initial_carry(b, model.config().full_seq_len())?,
        steps: vec![0; b],
        halted: vec![true; b],
        examples: batch.clone(),
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
    let device = batch.inputs.device();
    let (inner, examples) = load_halted_slots(model, carry, batch)?;
    let (rows, puzzle_rows) =
        puzzle_rows(puzzle_table, &examples.puzzle_identifiers, opts.puzzle_grad)?;

    let x = model.frame().input_embeddings(&examples.inputs, &rows)?;
    let stepped = model.supervision_step(&inner, &x)?;
    let (logits, q_halt, q_continue) = model.frame().heads(stepped.output())?;
    let new_inner = stepped.detach();

    let max_steps = model.config().halt_max_steps as u32;
    let steps = steps_after(carry);
    let is_last: Vec<bool> = steps.iter().map(|&s| s >= max_steps).collect();
    let mut halted = is_last.clone();
    let mut target_q_continue = None;
    if opts.training && max_steps > 1 {
        if opts.halt_early {
            halt_by_rule(
                model,
                (&q_halt, &q_continue),
                &steps,
                opts.min_steps,
                &mut halted,
            )?;
        }
        if model.learns_continue() {
            target_q_continue = Some(continue_target(model, &new_inner, &x, &is_last, device)?);
        }
    }
    let new_carry = Carry {
        inner: new_inner,
        steps,
        halted,
        examples,
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

/// Each slot's supervision steps after this call: 1 where it took a new example.
fn steps_after(carry: &Carry) -> Vec<u32> {
    carry
        .steps
        .iter()
        .zip(&carry.halted)
        .map(|(&s, &h)| if h { 1 } else { s + 1 })
        .collect()
}

/// The states and examples of the slots for this call: fresh states and the incoming
/// batch's rows where the slot halted last call, the carried ones elsewhere.
fn load_halted_slots(
    model: &dyn RecursiveModel,
    carry: &Carry,
    batch: &Batch,
) -> Result<(InnerCarry, Batch)> {
    let halted = Tensor::from_vec(
        carry.halted.iter().map(|&h| h as u8).collect::<Vec<_>>(),
        carry.halted.len(),
        batch.inputs.device(),
    )?;
    let fresh = if carry.halted.iter().any(|&h| h) {
        model
            .frame()
            .initial_carry(carry.halted.len(), model.config().full_seq_len())?
    } else {
        carry.inner.clone()
    };
    let select = |on_true: &Tensor, on_false: &Tensor| {
        select_rows(&carry.halted, &halted, on_true, on_false)
    };
    let states = fresh.states.iter().zip(&carry.inner.states);
    let inner = InnerCarry::new(
        fresh.names,
        states.map(|(f, c)| select(f, c)).collect::<Result<_>>()?,
    );
    let examples = Batch {
        inputs: select(&batch.inputs, &carry.examples.inputs)?,
        labels: select(&batch.labels, &carry.examples.labels)?,
        puzzle_identifiers: select(
            &batch.puzzle_identifiers,
            &carry.examples.puzzle_identifiers,
        )?,
    };
    Ok((inner, examples))
}

/// The slots' rows of the puzzle table, and the same rows as a variable when their gradient
/// is wanted (`StepOutput::puzzle_rows`).
fn puzzle_rows(
    puzzle_table: &Tensor,
    ids: &Tensor,
    with_grad: bool,
) -> Result<(Tensor, Option<Var>)> {
    let rows = puzzle_table.index_select(ids, 0)?;
    let var = if with_grad {
        Some(Var::from_tensor(&rows)?)
    } else {
        None
    };
    let rows = var.as_ref().map_or(rows, |v| v.as_tensor().clone());
    Ok((rows, var))
}

/// Training's early halting: a slot also halts where the model's rule says so on its
/// `(q_halt, q_continue)` logits, but not before its exploration floor `min_steps`.
fn halt_by_rule(
    model: &dyn RecursiveModel,
    (q_halt, q_continue): (&Tensor, &Tensor),
    steps: &[u32],
    min_steps: Option<&[u32]>,
    halted: &mut [bool],
) -> Result<()> {
    let qh = crate::host::vec1::<f32>(&q_halt.to_dtype(DType::F32)?)?;
    let qc = crate::host::vec1::<f32>(&q_continue.to_dtype(DType::F32)?)?;
    for (i, h) in halted.iter_mut().enumerate() {
        *h |= model.halts(qh[i], qc[i]);
    }
    if let Some(min_steps) = min_steps {
        for ((h, &s), &min) in halted.iter_mut().zip(steps).zip(min_steps) {
            *h &= s >= min;
        }
    }
    Ok(())
}

/// HRM's Q-learning target for q_continue, from one more step on the new carry without a
/// graph: `sigmoid(q_halt')` on a slot's last step, else `sigmoid(max(q_halt', q_continue'))`.
fn continue_target(
    model: &dyn RecursiveModel,
    new_inner: &InnerCarry,
    x: &Tensor,
    is_last: &[bool],
    device: &Device,
) -> Result<Tensor> {
    let (next_halt, next_continue) = crate::layers::no_grad(|| -> Result<_> {
        let next = model.supervision_step(new_inner, &x.detach())?;
        let (_, halt, cont) = model.frame().heads(next.output())?;
        Ok((halt, cont))
    })?;
    let last = Tensor::from_vec(
        is_last.iter().map(|&l| l as u8).collect::<Vec<_>>(),
        is_last.len(),
        device,
    )?;
    let best = last.where_cond(&next_halt, &next_halt.maximum(&next_continue)?)?;
    Ok(candle_nn::ops::sigmoid(&best)?.detach())
}
