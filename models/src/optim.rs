//! The optimisers of the official recipes, in f32 as the official kernels compute:
//! - AdamATan2 (`adam_atan2_backend`): decoupled decay first, no epsilon,
//!   `p -= lr * atan2(m_hat, sqrt(v_hat))`;
//! - sign-SGD for the rows of the sparse puzzle embedding present in a batch
//!   (`CastedSparseEmbeddingSignSGD_Distributed`): gradients summed per id,
//!   `w = w (1 - lr wd) - lr sign(sum)`; absent rows untouched;
//! - EMA of the trainable parameters (`EMAHelper`): `shadow = (1 - mu) p + mu shadow`;
//! - linear warm-up then cosine decay to a minimum ratio (`cosine_schedule_with_warmup_lr_lambda`).
//!
//! Each runs on host slices (what the CPU kernels run in place) and as candle tensor ops on
//! the parameters' own device (`device_*`), so a GPU step copies nothing to the host;
//! AdamATan2's arithmetic is written once for both (`Lanes`).

use candle_core::{DType, Result, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamAtan2Config {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
}

/// First and second moments of one parameter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl Moments {
    pub fn zeros(n: usize) -> Self {
        Moments {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }
}

/// The scalars of one AdamATan2 step, rounded to f32 as the CUDA kernel receives them.
#[derive(Debug, Clone, Copy)]
pub struct AdamScalars {
    step_size: f32,
    wd_alpha: f32,
    bc1_recip: f32,
    bc2_sqrt: f32,
    mb1: f32,
    mb2: f32,
}

impl AdamScalars {
    /// At step number `t` (1-based) with learning rate `lr` (already scheduled).
    pub fn new(cfg: &AdamAtan2Config, lr: f64, t: u64) -> Self {
        AdamScalars {
            step_size: lr as f32,
            wd_alpha: (1.0 - lr * cfg.weight_decay) as f32,
            bc1_recip: (1.0 / (1.0 - cfg.beta1.powi(t as i32))) as f32,
            bc2_sqrt: (1.0 - cfg.beta2.powi(t as i32)).sqrt() as f32,
            mb1: (1.0 - cfg.beta1) as f32,
            mb2: (1.0 - cfg.beta2) as f32,
        }
    }

    /// `m += (1 - b1)(g - m)`, `v += (1 - b2)(g^2 - v)`, on lanes of any kind.
    pub fn moments<L: Lanes>(&self, m: &L, v: &L, g: &L) -> std::result::Result<(L, L), L::Error> {
        let m = m.plus(&g.minus(m)?.times(self.mb1)?)?;
        let v = v.plus(&g.squared()?.minus(v)?.times(self.mb2)?)?;
        Ok((m, v))
    }

    /// Decoupled decay, then `p -= lr * atan2(m_hat, sqrt(v_hat))`, on lanes of any kind.
    pub fn updated<L: Lanes>(&self, p: &L, m: &L, v: &L) -> std::result::Result<L, L::Error> {
        let m_hat = m.times(self.bc1_recip)?;
        let v_hat = v.root()?.over(self.bc2_sqrt)?;
        let step = m_hat.atan2(&v_hat)?.times(self.step_size)?;
        p.times(self.wd_alpha)?.minus(&step)
    }

    /// `moments` on host slices, in place (the CPU kernel's loop).
    pub fn update_moments(&self, m: &mut [f32], v: &mut [f32], g: &[f32]) {
        assert!(
            m.len() == g.len() && v.len() == g.len(),
            "moment and gradient sizes differ"
        );
        for ((m, v), g) in m.iter_mut().zip(v.iter_mut()).zip(g) {
            let Ok((m1, v1)) = self.moments(m, v, g);
            (*m, *v) = (m1, v1);
        }
    }

    /// `updated` on host slices, in place (the CPU kernel's loop).
    pub fn apply(&self, p: &mut [f32], m: &[f32], v: &[f32]) {
        assert!(
            m.len() == p.len() && v.len() == p.len(),
            "moment and parameter sizes differ"
        );
        for ((p, m), v) in p.iter_mut().zip(m).zip(v) {
            let Ok(p1) = self.updated(p, m, v);
            *p = p1;
        }
    }

    /// `moments` then `updated` on the device, in tensor ops: `param` (any shape) comes back
    /// updated with the new `(param, m, v)` for the caller to store; `m`, `v` and `grad` are
    /// flat.
    pub fn device_step(
        &self,
        param: &Tensor,
        m: &Tensor,
        v: &Tensor,
        grad: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let g = grad.flatten_all()?.to_dtype(DType::F32)?;
        let (m, v) = self.moments(m, v, &g)?;
        let p = self.updated(&param.flatten_all()?, &m, &v)?;
        Ok((p.reshape(param.shape())?, m, v))
    }
}

/// The arithmetic an AdamATan2 step needs, on one f32 lane (the CPU kernels' loops) or on
/// whole tensors (any device): the step is written once, in `AdamScalars::moments` and
/// `updated`, and each kind keeps its own rounding (a tensor divides by a scalar through its
/// reciprocal, as candle does; a lane divides).
pub trait Lanes: Sized {
    type Error;
    fn plus(&self, other: &Self) -> std::result::Result<Self, Self::Error>;
    fn minus(&self, other: &Self) -> std::result::Result<Self, Self::Error>;
    fn times(&self, k: f32) -> std::result::Result<Self, Self::Error>;
    fn over(&self, k: f32) -> std::result::Result<Self, Self::Error>;
    fn squared(&self) -> std::result::Result<Self, Self::Error>;
    fn root(&self) -> std::result::Result<Self, Self::Error>;
    /// `atan2(self, x)` for `x >= 0`.
    fn atan2(&self, x: &Self) -> std::result::Result<Self, Self::Error>;
}

impl Lanes for f32 {
    type Error = std::convert::Infallible;
    fn plus(&self, other: &Self) -> std::result::Result<Self, Self::Error> {
        Ok(self + other)
    }
    fn minus(&self, other: &Self) -> std::result::Result<Self, Self::Error> {
        Ok(self - other)
    }
    fn times(&self, k: f32) -> std::result::Result<Self, Self::Error> {
        Ok(self * k)
    }
    fn over(&self, k: f32) -> std::result::Result<Self, Self::Error> {
        Ok(self / k)
    }
    fn squared(&self) -> std::result::Result<Self, Self::Error> {
        Ok(self * self)
    }
    fn root(&self) -> std::result::Result<Self, Self::Error> {
        Ok(self.sqrt())
    }
    fn atan2(&self, x: &Self) -> std::result::Result<Self, Self::Error> {
        Ok(f32::atan2(*self, *x))
    }
}

impl Lanes for Tensor {
    type Error = candle_core::Error;
    fn plus(&self, other: &Self) -> Result<Self> {
        self + other
    }
    fn minus(&self, other: &Self) -> Result<Self> {
        self - other
    }
    fn times(&self, k: f32) -> Result<Self> {
        self.affine(k.into(), 0.0)
    }
    fn over(&self, k: f32) -> Result<Self> {
        self / f64::from(k)
    }
    fn squared(&self) -> Result<Self> {
        self.sqr()
    }
    fn root(&self) -> Result<Self> {
        self.sqrt()
    }
    fn atan2(&self, x: &Self) -> Result<Self> {
        atan2_nonnegative_x(self, x)
    }
}

/// `atan2(y, x)` for `x >= 0`, elementwise in f32 tensor ops (candle has no atan): the
/// octant reduction to `|t| <= tan(pi/8)`, then the odd Taylor series to `t^15`, whose
/// remainder (`< 2e-8`) is below f32's rounding.
pub fn atan2_nonnegative_x(y: &Tensor, x: &Tensor) -> Result<Tensor> {
    let ay = y.abs()?;
    let hi = ay.maximum(x)?;
    let lo = ay.minimum(x)?;
    let positive = hi.gt(0.0)?;
    // 0 / 0 where both are 0: that lane is replaced by 0 below.
    let a = positive.where_cond(&(&lo / &hi)?, &hi.zeros_like()?)?;
    let upper = a.gt(std::f64::consts::FRAC_PI_8.tan())?;
    let reduced = upper.where_cond(&((&a - 1.0)? / (&a + 1.0)?)?, &a)?;
    let t2 = reduced.sqr()?;
    let mut series = t2.ones_like()?.affine(0.0, -1.0 / 15.0)?;
    for k in (0..7).rev() {
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        series = (series * &t2)?.affine(1.0, sign / (2 * k + 1) as f64)?;
    }
    let atan_a = upper.where_cond(
        &(&reduced * &series)?.affine(1.0, std::f64::consts::FRAC_PI_4)?,
        &(&reduced * &series)?,
    )?;
    let angle = ay
        .gt(x)?
        .where_cond(&atan_a.affine(-1.0, std::f64::consts::FRAC_PI_2)?, &atan_a)?;
    angle * y.sign()?
}

/// One AdamATan2 step at step number `t` (1-based) with learning rate `lr` (already scheduled).
pub fn adam_atan2_step(
    cfg: &AdamAtan2Config,
    lr: f64,
    t: u64,
    p: &mut [f32],
    g: &[f32],
    state: &mut Moments,
) {
    assert_eq!(p.len(), g.len(), "parameter and gradient sizes differ");
    let s = AdamScalars::new(cfg, lr, t);
    s.update_moments(&mut state.m, &mut state.v, g);
    s.apply(p, &state.m, &state.v);
}

/// `torch.sign`: 0 stays 0 (unlike `f32::signum`).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Sign-SGD on the rows of `table` (`[rows, width]`, row-major) named by `ids`, whose local
/// gradients (`[ids.len(), width]`) are summed per distinct id first. Returns the distinct ids
/// and their summed gradients, in ascending id order as `torch.unique` gives them.
pub fn sparse_sign_sgd_step(
    table: &mut [f32],
    width: usize,
    ids: &[u32],
    local_grads: &[f32],
    lr: f64,
    weight_decay: f64,
) -> (Vec<u32>, Vec<f32>) {
    let mut unique: Vec<u32> = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut summed = vec![0f32; unique.len() * width];
    for (k, id) in ids.iter().enumerate() {
        let row = unique.binary_search(id).expect("id is in the list");
        for j in 0..width {
            summed[row * width + j] += local_grads[k * width + j];
        }
    }
    let decay = (1.0 - lr * weight_decay) as f32;
    let lr = lr as f32;
    for (row, &id) in unique.iter().enumerate() {
        let w = &mut table[id as usize * width..(id as usize + 1) * width];
        for j in 0..width {
            w[j] = w[j] * decay - lr * sign(summed[row * width + j]);
        }
    }
    (unique, summed)
}

/// `sparse_sign_sgd_step` on the device, in place on `table` (`[rows, width]` f32): the
/// rows of `ids` (`[B]` u32) get `w (1 - lr wd) - lr sign(sum)`, with each id's gradients
/// (`local_grads`, `[B, width]`) summed by a `[B, B]` same-id matrix, so repeated ids write
/// the same row; rows outside the batch are untouched.
pub fn device_sparse_sign_sgd(
    table: &Tensor,
    ids: &Tensor,
    local_grads: &Tensor,
    lr: f64,
    weight_decay: f64,
) -> Result<()> {
    let (b, width) = local_grads.dims2()?;
    // An id beyond the table would make `index_select` and `scatter_set` misbehave on a GPU.
    let rows_in_table = table.dim(0)?;
    let largest = crate::host::scalar::<u32>(&ids.max(0)?)? as usize;
    if largest >= rows_in_table {
        candle_core::bail!("puzzle id {largest} is beyond the table's {rows_in_table} rows");
    }
    let same_id = ids
        .unsqueeze(1)?
        .broadcast_eq(&ids.unsqueeze(0)?)?
        .to_dtype(DType::F32)?;
    let summed = same_id.matmul(&local_grads.to_dtype(DType::F32)?)?;
    let decay = f64::from((1.0 - lr * weight_decay) as f32);
    let rows = table.index_select(ids, 0)?;
    let updated = (rows.affine(decay, 0.0)? - summed.sign()?.affine(f64::from(lr as f32), 0.0)?)?;
    let index = ids.unsqueeze(1)?.broadcast_as((b, width))?.contiguous()?;
    table.scatter_set(&index, &updated, 0)
}

/// `shadow = (1 - mu) * param + mu * shadow` on the device (the new shadow).
pub fn device_ema(shadow: &Tensor, param: &Tensor, mu: f64) -> Result<Tensor> {
    let (a, b) = (f64::from((1.0 - mu) as f32), f64::from(mu as f32));
    param.affine(a, 0.0)? + shadow.affine(b, 0.0)?
}

/// `shadow = (1 - mu) * param + mu * shadow`, with both factors rounded to f32.
pub fn ema_update(shadow: &mut [f32], param: &[f32], mu: f64) {
    let (a, b) = ((1.0 - mu) as f32, mu as f32);
    for (s, &p) in shadow.iter_mut().zip(param) {
        *s = a * p + b * *s;
    }
}

/// Learning-rate multiplier at `step`: linear warm-up over `warmup` steps, then cosine from 1
/// down to `min_ratio` at `total` steps (`num_cycles = 0.5`).
pub fn lr_multiplier(step: u64, warmup: u64, total: u64, min_ratio: f64) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        assert_eq!(lr_multiplier(0, 10, 110, 0.1), 0.0);
        assert!((lr_multiplier(5, 10, 110, 0.1) - 0.5).abs() < 1e-12);
        assert!((lr_multiplier(10, 10, 110, 0.1) - 1.0).abs() < 1e-12);
        assert!((lr_multiplier(60, 10, 110, 0.1) - 0.55).abs() < 1e-12);
        assert!((lr_multiplier(110, 10, 110, 0.1) - 0.1).abs() < 1e-12);
        assert_eq!(lr_multiplier(50, 100, 100, 1.0), 0.5);
    }

    #[test]
    fn first_adam_step_is_a_signed_quarter_pi() {
        let cfg = AdamAtan2Config {
            lr: 1e-3,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.95,
        };
        let mut p = vec![1.0f32, 1.0, 1.0];
        let mut s = Moments::zeros(3);
        adam_atan2_step(&cfg, cfg.lr, 1, &mut p, &[2.0, -0.5, 0.0], &mut s);
        let q = (1e-3f32) * std::f32::consts::FRAC_PI_4;
        assert!((p[0] - (1.0 - q)).abs() < 1e-7 && (p[1] - (1.0 + q)).abs() < 1e-7);
        assert_eq!(p[2], 1.0);
    }
}
