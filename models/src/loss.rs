//! The official loss head (`models/losses.py: ACTLossHead`): token cross-entropy (stablemax in
//! f64 by default, or softmax) averaged per sequence and summed over the batch, plus the
//! halting BCE against exact correctness and, for HRM, the continue BCE against its target:
//! `total = lm_loss + 0.5 * (q_halt_loss + q_continue_loss)`.

use crate::act::{act_step, ActOptions, Batch, Carry, StepOutput, IGNORE_LABEL};
use crate::host;
use crate::model::RecursiveModel;
use candle_core::{DType, Result, Tensor, D};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LossType {
    StablemaxCrossEntropy,
    SoftmaxCrossEntropy,
}

/// Stablemax's `s(x)`: `x + 1` for x >= 0, `1 / ((1 - x) + 1e-30)` for x < 0.
///
/// The epsilon is added after `1 - x`, as the official code does: folded into the constant
/// (`1 + 1e-30`, which is 1 in f64) the unused branch is `1/0 = inf` at x = 1, and
/// `where_cond`'s backward turns its zero gradient times inf into NaN.
fn stablemax_s(x: &Tensor) -> Result<Tensor> {
    let negative = x.lt(0.0)?;
    let inv = ((x.affine(-1.0, 1.0)? + 1e-30)?).recip()?;
    negative.where_cond(&inv, &(x + 1.0)?)
}

/// `log(s(x) / sum s(x))` over the last axis.
pub fn log_stablemax(x: &Tensor) -> Result<Tensor> {
    let s = stablemax_s(x)?;
    s.broadcast_div(&s.sum_keepdim(D::Minus1)?)?.log()
}

pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

/// Per-token cross-entropy `[B, S]`, 0 where the label is ignored: stablemax in f64,
/// softmax in f32, as the official functions.
pub fn token_cross_entropy(logits: &Tensor, labels: &Tensor, loss: LossType) -> Result<Tensor> {
    let valid = labels.ne(IGNORE_LABEL)?;
    let safe_labels = valid
        .where_cond(labels, &labels.zeros_like()?)?
        .to_dtype(DType::U32)?;
    let logp = match loss {
        LossType::StablemaxCrossEntropy => log_stablemax(&logits.to_dtype(DType::F64)?)?,
        LossType::SoftmaxCrossEntropy => log_softmax(&logits.to_dtype(DType::F32)?)?,
    };
    let picked = logp
        .gather(&safe_labels.unsqueeze(D::Minus1)?, D::Minus1)?
        .squeeze(D::Minus1)?;
    valid.where_cond(&picked, &picked.zeros_like()?)?.neg()
}

/// `BCEWithLogits(x, y)` summed: `max(x, 0) - x y + log(1 + exp(-|x|))`.
pub fn bce_with_logits_sum(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let softplus = ((x.abs()?.neg()?.exp()? + 1.0)?).log()?;
    (x.relu()? - (x * y)?)?.add(&softplus)?.sum_all()
}

/// The metrics the official head reports, over slots that halted this step and have labels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub count: i64,
    pub accuracy: f32,
    pub exact_accuracy: i64,
    pub q_halt_accuracy: i64,
    pub steps: i64,
    pub lm_loss: f64,
    pub q_halt_loss: f32,
    pub q_continue_loss: Option<f32>,
}

impl Metrics {
    /// Every field is a sum over slots, so pieces of a batch add up to the whole.
    pub fn add(&self, other: &Metrics) -> Metrics {
        Metrics {
            count: self.count + other.count,
            accuracy: self.accuracy + other.accuracy,
            exact_accuracy: self.exact_accuracy + other.exact_accuracy,
            q_halt_accuracy: self.q_halt_accuracy + other.q_halt_accuracy,
            steps: self.steps + other.steps,
            lm_loss: self.lm_loss + other.lm_loss,
            q_halt_loss: self.q_halt_loss + other.q_halt_loss,
            q_continue_loss: self
                .q_continue_loss
                .zip(other.q_continue_loss)
                .map(|(a, b)| a + b),
        }
    }

    /// The fields as numbers, for a sum over ranks (`from_values` reads them back).
    pub fn values(&self) -> [f64; 8] {
        [
            self.count as f64,
            self.accuracy as f64,
            self.exact_accuracy as f64,
            self.q_halt_accuracy as f64,
            self.steps as f64,
            self.lm_loss,
            self.q_halt_loss as f64,
            self.q_continue_loss.map_or(0.0, f64::from),
        ]
    }

    pub fn from_values(v: &[f64], has_continue: bool) -> Metrics {
        Metrics {
            count: v[0] as i64,
            accuracy: v[1] as f32,
            exact_accuracy: v[2] as i64,
            q_halt_accuracy: v[3] as i64,
            steps: v[4] as i64,
            lm_loss: v[5],
            q_halt_loss: v[6] as f32,
            q_continue_loss: has_continue.then_some(v[7] as f32),
        }
    }
}

pub struct LossOutput {
    /// f64 scalar carrying the graph.
    pub total: Tensor,
    pub metrics: Metrics,
}

/// One ACT call (`act::act_step`) and its loss on the new carry's examples.
pub fn act_step_with_loss(
    model: &dyn RecursiveModel,
    carry: &Carry,
    batch: &Batch,
    puzzle_table: &Tensor,
    opts: ActOptions<'_>,
    loss: LossType,
) -> Result<(Carry, StepOutput, LossOutput)> {
    let (next, out) = act_step(model, carry, batch, puzzle_table, opts)?;
    let loss = act_loss(&out, &next.examples.labels, &next.halted, &next.steps, loss)?;
    Ok((next, out, loss))
}

/// The loss and metrics of one ACT call, given the carry's labels, halted flags and steps.
pub fn act_loss(
    out: &StepOutput,
    labels: &Tensor,
    halted: &[bool],
    steps: &[u32],
    loss: LossType,
) -> Result<LossOutput> {
    let scores = SlotScores::of(out, labels)?;
    let terms = LossTerms::of(out, labels, &scores, loss)?;
    let metrics = terms.metrics(&scores, halted, steps)?;
    Ok(LossOutput {
        total: terms.total,
        metrics,
    })
}

/// Per slot: how its prediction scored against its labels.
struct SlotScores {
    /// 1 where every label was predicted, f32 `[B]` (the halting head's target).
    targets: Tensor,
    /// The label count, at least 1, f64 `[B]`.
    divisor: Tensor,
    counts: Vec<usize>,
    q_halt: Vec<f32>,
    seq_is_correct: Vec<bool>,
    correct_share: Vec<f32>,
}

impl SlotScores {
    /// Label counts and hits on the device: only `[B]` vectors come to the host.
    fn of(out: &StepOutput, labels: &Tensor) -> Result<Self> {
        let valid = labels.ne(IGNORE_LABEL)?.to_dtype(DType::F32)?;
        let hits = (out
            .logits
            .argmax(D::Minus1)?
            .to_dtype(DType::I64)?
            .eq(labels)?
            .to_dtype(DType::F32)?
            * &valid)?;
        let (count_t, correct_t) = (valid.sum(D::Minus1)?, hits.sum(D::Minus1)?);
        let targets = correct_t.eq(&count_t)?.to_dtype(DType::F32)?;
        let divisor = count_t.maximum(1.0)?.to_dtype(DType::F64)?;
        let counts: Vec<usize> = host::vec1::<f32>(&count_t)?
            .iter()
            .map(|&c| c as usize)
            .collect();
        let correct = host::vec1::<f32>(&correct_t)?;
        let q_halt = host::vec1::<f32>(&out.q_halt.to_dtype(DType::F32)?)?;
        let seq_is_correct = counts
            .iter()
            .zip(&correct)
            .map(|(&c, &k)| k as usize == c)
            .collect();
        let correct_share = counts
            .iter()
            .zip(&correct)
            .map(|(&c, &k)| k / c.max(1) as f32)
            .collect();
        Ok(SlotScores {
            targets,
            divisor,
            counts,
            q_halt,
            seq_is_correct,
            correct_share,
        })
    }
}

/// The loss's terms, on the device with their graph.
struct LossTerms {
    lm_loss: Tensor,
    q_halt_loss: Tensor,
    q_continue_loss: Option<Tensor>,
    /// `lm_loss + 0.5 * (q_halt_loss + q_continue_loss)`, f64.
    total: Tensor,
}

impl LossTerms {
    fn of(out: &StepOutput, labels: &Tensor, scores: &SlotScores, loss: LossType) -> Result<Self> {
        let per_token = token_cross_entropy(&out.logits, labels, loss)?;
        let lm_loss = per_token
            .to_dtype(DType::F64)?
            .sum(D::Minus1)?
            .div(&scores.divisor)?
            .sum_all()?;
        let q_halt_loss = bce_with_logits_sum(&out.q_halt.to_dtype(DType::F32)?, &scores.targets)?;
        let q_continue_loss = match &out.target_q_continue {
            Some(t) => Some(bce_with_logits_sum(
                &out.q_continue.to_dtype(DType::F32)?,
                t,
            )?),
            None => None,
        };
        let q_sum = match &q_continue_loss {
            Some(c) => (&q_halt_loss + c)?,
            None => q_halt_loss.clone(),
        };
        let total = (&lm_loss + (q_sum * 0.5)?.to_dtype(DType::F64)?)?;
        Ok(LossTerms {
            lm_loss,
            q_halt_loss,
            q_continue_loss,
            total,
        })
    }

    /// The official metrics over the slots that halted this step and have labels.
    fn metrics(&self, scores: &SlotScores, halted: &[bool], steps: &[u32]) -> Result<Metrics> {
        let valid: Vec<bool> = halted
            .iter()
            .zip(&scores.counts)
            .map(|(&h, &c)| h && c > 0)
            .collect();
        let (seq_is_correct, q_halt) = (&scores.seq_is_correct, &scores.q_halt);
        Ok(Metrics {
            count: valid.iter().filter(|&&v| v).count() as i64,
            accuracy: valid
                .iter()
                .zip(&scores.correct_share)
                .filter(|(&v, _)| v)
                .map(|(_, &a)| a)
                .sum(),
            exact_accuracy: valid
                .iter()
                .zip(seq_is_correct)
                .filter(|(&v, &c)| v && c)
                .count() as i64,
            q_halt_accuracy: (0..valid.len())
                .filter(|&i| valid[i] && ((q_halt[i] >= 0.0) == seq_is_correct[i]))
                .count() as i64,
            steps: (0..valid.len())
                .filter(|&i| valid[i])
                .map(|i| steps[i] as i64)
                .sum(),
            lm_loss: host::scalar::<f64>(&self.lm_loss)?,
            q_halt_loss: host::scalar::<f32>(&self.q_halt_loss)?,
            q_continue_loss: self
                .q_continue_loss
                .as_ref()
                .map(host::scalar::<f32>)
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn stablemax_gradient_is_finite_at_a_logit_of_one() {
        // x = 1 makes the unused negative branch 1 / (1 - x): the case that gave NaN.
        let x = Var::from_tensor(&Tensor::new(&[[1.0f64, -2.0, 0.0, 3.5]], &Device::Cpu).unwrap())
            .unwrap();
        let loss = log_stablemax(x.as_tensor()).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        assert!(g[0].iter().all(|v| v.is_finite()), "gradient {g:?}");
    }
}
