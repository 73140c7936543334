//! Non-causal multi-head attention from the fused projection `qkv` `[B, S, 3 H D]` (heads
//! q 0..H, k H..2H, v 2H..3H) to the heads' outputs `[B, S, H D]`, ready for `o_proj`:
//! rotary embedding on q and k, `softmax(q k^T / sqrt(D)) v`, with no transposed copies and
//! one `[S, S]` score block per head at a time (never `[B, H, S, S]`), held transposed (keys
//! by queries) so the softmax runs across queries (`softmax_columns`). Parallel over batch
//! entries.
//!
//! Backward (flash-style, recomputing the scores): `dV = P^T dO`, `dP = dO V^T`,
//! `dS = P (dP - rowsum(dP P))`, `dQ = dS K / sqrt(D)`, `dK = dS^T Q / sqrt(D)`, then the
//! rotation undone on dQ and dK.

use super::{for_float, matmul, slice, Real, ROW_LANES};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Rotary tables `[positions, D]` (cos, sin) in the rotate-half layout, f32 as the official
/// code computes them (and widened to f64 for runs in f64): the host copy of
/// `attention::Rotary`'s tables, made by `Rotary::new`.
#[derive(Debug, Clone)]
pub struct RotaryTables {
    pub cos: Arc<Vec<f32>>,
    pub sin: Arc<Vec<f32>>,
    cos64: Arc<Vec<f64>>,
    sin64: Arc<Vec<f64>>,
}

impl RotaryTables {
    pub fn new(cos: Vec<f32>, sin: Vec<f32>) -> Self {
        let widen = |v: &[f32]| Arc::new(v.iter().map(|&x| x as f64).collect::<Vec<f64>>());
        RotaryTables {
            cos64: widen(&cos),
            sin64: widen(&sin),
            cos: Arc::new(cos),
            sin: Arc::new(sin),
        }
    }
}

/// The tables in a kernel's float type.
pub trait RotaryFloat: Real {
    fn tables(t: &RotaryTables) -> (&[Self], &[Self]);
}

impl RotaryFloat for f32 {
    fn tables(t: &RotaryTables) -> (&[f32], &[f32]) {
        (&t.cos, &t.sin)
    }
}

impl RotaryFloat for f64 {
    fn tables(t: &RotaryTables) -> (&[f64], &[f64]) {
        (&t.cos64, &t.sin64)
    }
}

// The fused kernel's RoPE inside its loops: the same tables and the same rotation as the
// candle compositions' `attention::apply_rotary` and `attention::apply_rotary_transposed`. One
// call per head, not per row: a row is a vector or two, too short to pay a dispatched call.
/// The two halves of `v[..2 * half]`, each exactly `half` long.
#[inline(always)]
fn halves<T>(v: &[T], half: usize) -> (&[T], &[T]) {
    (&v[..half], &v[half..][..half])
}

/// `out = x cos + rotate_half(x) sin` (`rotate_half([a, b]) = [-b, a]`) for each `[2 half]`
/// row of `out` `[S, 2 half]`: row `s` read from `x[s * stride..]` and turned by the tables'
/// row `s`.
#[inline(always)]
fn rotate_rows_of<T: Real>(
    out: &mut [T],
    half: usize,
    (x, stride): (&[T], usize),
    cos: &[T],
    sin: &[T],
) {
    let d = 2 * half;
    // Every slice cut to exactly `half`, so the loop below runs without bounds checks
    // and vectorises (cut by `split_at` alone, the upper halves kept it scalar).
    for (s, row) in out.chunks_exact_mut(d).enumerate() {
        let (x0, x1) = halves(&x[s * stride..], half);
        let (c0, c1) = halves(&cos[s * d..], half);
        let (n0, n1) = halves(&sin[s * d..], half);
        let (lo, hi) = row.split_at_mut(half);
        let (lo, hi) = (&mut lo[..half], &mut hi[..half]);
        for j in 0..half {
            lo[j] = x0[j] * c0[j] - x1[j] * n0[j];
            hi[j] = x1[j] * c1[j] + x0[j] * n1[j];
        }
    }
}

/// The transpose of `rotate_rows_of`: `dx = g cos + rotate_half^T(g sin)` for each
/// `[2 half]` row of `g` `[S, 2 half]`, written to `out[s * stride..]`.
#[inline(always)]
fn unrotate_rows_of<T: Real>(
    (out, stride): (&mut [T], usize),
    half: usize,
    g: &[T],
    cos: &[T],
    sin: &[T],
) {
    let d = 2 * half;
    for (s, g) in g.chunks_exact(d).enumerate() {
        let (g0, g1) = halves(g, half);
        let (c0, c1) = halves(&cos[s * d..], half);
        let (n0, n1) = halves(&sin[s * d..], half);
        let (lo, hi) = out[s * stride..][..d].split_at_mut(half);
        let (lo, hi) = (&mut lo[..half], &mut hi[..half]);
        for j in 0..half {
            lo[j] = g0[j] * c0[j] + g1[j] * n1[j];
            hi[j] = g1[j] * c1[j] - g0[j] * n0[j];
        }
    }
}

// `rotate_rows_of` and its transpose with the presets' head dimensions (16 at the cpu preset,
// 64 at the Sudoku widths and in the papers) as constants: a row's loop then compiles to
// straight vector code, where with a length known only at run time each 16-wide row ran as
// pairs of 4-lane steps behind per-row checks (4.3% of a one-thread TRM-Att step at the cpu
// preset on AVX-512, 2.2% after). Same arithmetic, so the same bits. The length goes in as a
// const parameter of a function of its own: passed as an argument (through a closure), it was
// merged back into one call with a run-time length.
#[inline(always)]
fn rotate_rows_const<T: Real, const HALF: usize>(
    out: &mut [T],
    x: (&[T], usize),
    cos: &[T],
    sin: &[T],
) {
    rotate_rows_of(out, HALF, x, cos, sin)
}

#[inline(always)]
fn unrotate_rows_const<T: Real, const HALF: usize>(
    out: (&mut [T], usize),
    g: &[T],
    cos: &[T],
    sin: &[T],
) {
    unrotate_rows_of(out, HALF, g, cos, sin)
}

super::simd_targets! {
    fn rotate_rows<T: Real>(out: &mut [T], d: usize, x: (&[T], usize), cos: &[T], sin: &[T]) {
        match d {
            16 => rotate_rows_const::<T, 8>(out, x, cos, sin),
            64 => rotate_rows_const::<T, 32>(out, x, cos, sin),
            _ => rotate_rows_of(out, d / 2, x, cos, sin),
        }
    }

    fn unrotate_rows<T: Real>(out: (&mut [T], usize), d: usize, g: &[T], cos: &[T], sin: &[T]) {
        match d {
            16 => unrotate_rows_const::<T, 8>(out, g, cos, sin),
            64 => unrotate_rows_const::<T, 32>(out, g, cos, sin),
            _ => unrotate_rows_of(out, d / 2, g, cos, sin),
        }
    }
}

#[derive(Clone)]
pub struct AttentionCore {
    pub heads: usize,
    pub head_dim: usize,
    pub rotary: Option<RotaryTables>,
}

pub(super) struct Shape3 {
    pub(super) seq: usize,
    heads: usize,
    dim: usize,
}

impl Shape3 {
    fn qkv_row(&self) -> usize {
        3 * self.heads * self.dim
    }
    pub(super) fn out_row(&self) -> usize {
        self.heads * self.dim
    }
}

impl AttentionCore {
    pub(super) fn shape(&self, l: &Layout) -> Result<(usize, Shape3)> {
        let dims = l.dims();
        let (b, s, w) = match dims {
            &[b, s, w] => (b, s, w),
            _ => {
                candle_core::bail!("attention: qkv must be [batch, seq, 3 heads dim], got {dims:?}")
            }
        };
        if w != 3 * self.heads * self.head_dim {
            candle_core::bail!(
                "attention: qkv width {w} is not 3 x {} heads x {}",
                self.heads,
                self.head_dim
            );
        }
        if let Some(r) = &self.rotary {
            if r.cos.len() < s * self.head_dim {
                candle_core::bail!("attention: rotary tables are shorter than {s} positions");
            }
        }
        Ok((
            b,
            Shape3 {
                seq: s,
                heads: self.heads,
                dim: self.head_dim,
            },
        ))
    }

    /// Head `h` of q or k (`slot` 0 or 1) of one batch entry, rotated, into `dst` `[S, D]`.
    fn load_rotated<T: RotaryFloat>(
        &self,
        qkv: &[T],
        sh: &Shape3,
        slot: usize,
        h: usize,
        dst: &mut [T],
    ) {
        let d = sh.dim;
        let src = &qkv[(slot * sh.heads + h) * d..];
        match &self.rotary {
            None => {
                for (s, row) in dst.chunks_exact_mut(d).enumerate() {
                    row.copy_from_slice(&src[s * sh.qkv_row()..][..d]);
                }
            }
            Some(r) => {
                let (cos, sin) = T::tables(r);
                rotate_rows(dst, d, (src, sh.qkv_row()), cos, sin);
            }
        }
    }

    /// Undoes the rotation on a gradient `[S, D]` and writes it into head `h`, slot `slot`
    /// of the qkv gradient of one batch entry.
    fn store_unrotated<T: RotaryFloat>(
        &self,
        grad: &[T],
        sh: &Shape3,
        slot: usize,
        h: usize,
        dqkv: &mut [T],
    ) {
        let d = sh.dim;
        let dst = &mut dqkv[(slot * sh.heads + h) * d..];
        match &self.rotary {
            None => {
                for (s, g) in grad.chunks_exact(d).enumerate() {
                    dst[s * sh.qkv_row()..][..d].copy_from_slice(g);
                }
            }
            Some(r) => {
                let (cos, sin) = T::tables(r);
                unrotate_rows((dst, sh.qkv_row()), d, grad, cos, sin);
            }
        }
    }
}

/// Queries a column block of the transposed scores holds: one AVX-512 vector of f32.
const COLUMNS: usize = 16;

/// The row stride of a transposed `[S, S]` score block: the sequence rounded up to whole
/// column blocks. The padding columns are zero-filled once and stay finite.
fn padded(seq: usize) -> usize {
    seq.div_ceil(COLUMNS) * COLUMNS
}

/// Columns `c..c + COLUMNS` of row `i` of a block of row stride `stride`.
#[inline(always)]
fn lanes<T: Copy>(x: &[T], i: usize, stride: usize, c: usize) -> [T; COLUMNS] {
    x[i * stride + c..][..COLUMNS]
        .try_into()
        .expect("a whole column block")
}

/// `lanes`, to write.
#[inline(always)]
fn lanes_mut<T>(x: &mut [T], i: usize, stride: usize, c: usize) -> &mut [T; COLUMNS] {
    (&mut x[i * stride + c..][..COLUMNS])
        .try_into()
        .expect("a whole column block")
}

super::simd_targets! {
    /// Softmax of each column of the transposed scores `S^T` `[S, stride]` (column `q` holds
    /// query `q`'s scores over the `S` keys), in place. Row by row, a row was as short as the
    /// sequence (29 for TRM-Att at the cpu preset) and its maximum, sum and scaling ran
    /// mostly in scalar tails: 12% of a one-thread TRM-Att step on the Intel Xeon
    /// (`results/bench-profile.md`). Down the columns every operation is across 16 queries.
    /// Each query's arithmetic is that of the row-wise kernel this replaced: the maximum,
    /// `exp(s - max)`, then the sum in the order it had, eight interleaved partial sums over
    /// whole groups of eight keys, added after the sum of the remaining keys (`ROW_LANES`).
    /// So the bits, and every committed result, are the same.
    fn softmax_columns<T: Real>(pt: &mut [T], seq: usize, stride: usize) {
        let groups = seq / ROW_LANES;
        for c in (0..stride).step_by(COLUMNS) {
            let mut max = [T::neg_infinity(); COLUMNS];
            for i in 0..seq {
                let x = lanes(pt, i, stride, c);
                for (m, &v) in max.iter_mut().zip(&x) {
                    *m = if v > *m { v } else { *m };
                }
            }
            for i in 0..seq {
                let x = lanes_mut(pt, i, stride, c);
                for (v, &m) in x.iter_mut().zip(&max) {
                    *v = (*v - m).exp_fast();
                }
            }
            let mut partial = [[T::zero(); COLUMNS]; ROW_LANES];
            for g in 0..groups {
                for (j, acc) in partial.iter_mut().enumerate() {
                    let x = lanes(pt, g * ROW_LANES + j, stride, c);
                    for (a, &v) in acc.iter_mut().zip(&x) {
                        *a += v;
                    }
                }
            }
            let mut inv = [T::zero(); COLUMNS];
            for i in groups * ROW_LANES..seq {
                let x = lanes(pt, i, stride, c);
                for (t, &v) in inv.iter_mut().zip(&x) {
                    *t += v;
                }
            }
            for acc in &partial {
                for (t, &a) in inv.iter_mut().zip(acc) {
                    *t += a;
                }
            }
            inv.iter_mut().for_each(|t| *t = t.recip());
            for i in 0..seq {
                let x = lanes_mut(pt, i, stride, c);
                for (v, &r) in x.iter_mut().zip(&inv) {
                    *v *= r;
                }
            }
        }
    }

    /// `dS = P (dP - rowsum(dP P))` down the columns of the transposed `dP^T` and `P^T`, in
    /// place of `dP^T`; each query's dot product in `dot`'s order, as `softmax_columns`.
    fn softmax_backward_columns<T: Real>(dpt: &mut [T], pt: &[T], seq: usize, stride: usize) {
        let groups = seq / ROW_LANES;
        for c in (0..stride).step_by(COLUMNS) {
            let mut partial = [[T::zero(); COLUMNS]; ROW_LANES];
            for g in 0..groups {
                for (j, acc) in partial.iter_mut().enumerate() {
                    let i = g * ROW_LANES + j;
                    let (x, p) = (lanes(dpt, i, stride, c), lanes(pt, i, stride, c));
                    for ((a, &v), &p) in acc.iter_mut().zip(&x).zip(&p) {
                        *a += v * p;
                    }
                }
            }
            let mut dot = [T::zero(); COLUMNS];
            for i in groups * ROW_LANES..seq {
                let (x, p) = (lanes(dpt, i, stride, c), lanes(pt, i, stride, c));
                for ((t, &v), &p) in dot.iter_mut().zip(&x).zip(&p) {
                    *t += v * p;
                }
            }
            for acc in &partial {
                for (t, &a) in dot.iter_mut().zip(acc) {
                    *t += a;
                }
            }
            for i in 0..seq {
                let p = lanes(pt, i, stride, c);
                let x = lanes_mut(dpt, i, stride, c);
                for ((g, &p), &d) in x.iter_mut().zip(&p).zip(&dot) {
                    *g = p * (*g - d);
                }
            }
        }
    }
}

/// Per batch entry: the rotated q and k of one head and its transposed probabilities `P^T`
/// `[S, padded(S)]`.
struct HeadScratch<T> {
    q: Vec<T>,
    k: Vec<T>,
    pt: Vec<T>,
}

impl<T: RotaryFloat> HeadScratch<T> {
    fn new(sh: &Shape3) -> Self {
        HeadScratch {
            q: vec![T::zero(); sh.seq * sh.dim],
            k: vec![T::zero(); sh.seq * sh.dim],
            pt: vec![T::zero(); sh.seq * padded(sh.seq)],
        }
    }

    /// Loads head `h` and computes its transposed probabilities.
    fn probabilities(&mut self, op: &AttentionCore, qkv: &[T], sh: &Shape3, h: usize) {
        op.load_rotated(qkv, sh, 0, h, &mut self.q);
        op.load_rotated(qkv, sh, 1, h, &mut self.k);
        let scale = T::from(1.0 / (sh.dim as f64).sqrt()).unwrap();
        let (s, d, stride) = (sh.seq, sh.dim, padded(sh.seq));
        // S^T = K Q^T / sqrt(D).
        matmul(
            (s, s, d),
            &self.k,
            false,
            d,
            &self.q,
            true,
            d,
            &mut self.pt,
            stride,
            scale,
            false,
        );
        softmax_columns(&mut self.pt, s, stride);
    }
}

pub(super) fn forward<T: RotaryFloat>(op: &AttentionCore, qkv: &[T], sh: &Shape3) -> Vec<T> {
    let (s, d, stride) = (sh.seq, sh.dim, padded(sh.seq));
    let mut out = vec![T::zero(); qkv.len() / 3];
    out.par_chunks_mut(s * sh.out_row())
        .zip(qkv.par_chunks(s * sh.qkv_row()))
        .for_each(|(out, qkv)| {
            let mut scratch = HeadScratch::new(sh);
            for h in 0..sh.heads {
                scratch.probabilities(op, qkv, sh, h);
                let v = &qkv[(2 * sh.heads + h) * d..];
                let o = &mut out[h * d..];
                // O = P V, P read through its transpose.
                matmul(
                    (s, d, s),
                    &scratch.pt,
                    true,
                    stride,
                    v,
                    false,
                    sh.qkv_row(),
                    o,
                    sh.out_row(),
                    T::one(),
                    false,
                );
            }
        });
    out
}

fn backward<T: RotaryFloat>(op: &AttentionCore, qkv: &[T], grad: &[T], sh: &Shape3) -> Vec<T> {
    let s = sh.seq;
    let mut dqkv = vec![T::zero(); qkv.len()];
    dqkv.par_chunks_mut(s * sh.qkv_row())
        .zip(
            qkv.par_chunks(s * sh.qkv_row())
                .zip(grad.par_chunks(s * sh.out_row())),
        )
        .for_each(|(dqkv, (qkv, grad))| backward_entry(op, qkv, grad, sh, dqkv));
    dqkv
}

/// The gradient of one batch entry's `qkv` from that of its output.
fn backward_entry<T: RotaryFloat>(
    op: &AttentionCore,
    qkv: &[T],
    grad: &[T],
    sh: &Shape3,
    dqkv: &mut [T],
) {
    let (s, d, stride) = (sh.seq, sh.dim, padded(sh.seq));
    let scale = T::from(1.0 / (d as f64).sqrt()).unwrap();
    let mut scratch = HeadScratch::new(sh);
    // dP^T and then dS^T, transposed as P is.
    let mut dpt = vec![T::zero(); s * stride];
    let mut dq = vec![T::zero(); s * d];
    let mut dk = vec![T::zero(); s * d];
    for h in 0..sh.heads {
        scratch.probabilities(op, qkv, sh, h);
        let v = &qkv[(2 * sh.heads + h) * d..];
        let d_out = &grad[h * d..];
        // dV = P^T dO, straight into the v slot.
        let dv = &mut dqkv[(2 * sh.heads + h) * d..];
        matmul(
            (s, d, s),
            &scratch.pt,
            false,
            stride,
            d_out,
            false,
            sh.out_row(),
            dv,
            sh.qkv_row(),
            T::one(),
            false,
        );
        // dP^T = V dO^T, then dS = P (dP - rowsum(dP P)).
        matmul(
            (s, s, d),
            v,
            false,
            sh.qkv_row(),
            d_out,
            true,
            sh.out_row(),
            &mut dpt,
            stride,
            T::one(),
            false,
        );
        softmax_backward_columns(&mut dpt, &scratch.pt, s, stride);
        // dQ = dS K / sqrt(D), dK = dS^T Q / sqrt(D).
        matmul(
            (s, d, s),
            &dpt,
            true,
            stride,
            &scratch.k,
            false,
            d,
            &mut dq,
            d,
            scale,
            false,
        );
        matmul(
            (s, d, s),
            &dpt,
            false,
            stride,
            &scratch.q,
            false,
            d,
            &mut dk,
            d,
            scale,
            false,
        );
        op.store_unrotated(&dq, sh, 0, h, dqkv);
        op.store_unrotated(&dk, sh, 1, h, dqkv);
    }
}

impl CustomOp1 for AttentionCore {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, sh) = self.shape(l)?;
        let out_shape = Shape::from((b, sh.seq, sh.out_row()));
        for_float!(st, T => {
            let out = forward::<T>(self, slice(st, l)?, &sh);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), out_shape))
        })
    }

    fn bwd(&self, qkv: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(qkv.apply_op2_no_bwd(
            &grad.contiguous()?,
            &AttentionBackward(self.clone()),
        )?))
    }
}

pub(super) struct AttentionBackward(pub(super) AttentionCore);

impl CustomOp2 for AttentionBackward {
    fn name(&self) -> &'static str {
        "attention-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, sh) = self.0.shape(l1)?;
        for_float!(s1, T => {
            let out = backward::<T>(&self.0, slice(s1, l1)?, slice(s2, l2)?, &sh);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }
}

/// Attention from `qkv` `[B, S, 3 H D]` to `[B, S, H D]` with the fused kernel (CPU): the
/// `AttentionBackend::FusedCpu` backend of `attention::attend`.
pub fn attention(qkv: &Tensor, op: AttentionCore) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The row-wise softmax the column kernels replaced, in its order of operations: the
    /// maximum, `exp(s - max)`, eight interleaved partial sums over whole groups of eight
    /// added to the sum of the rest, then the reciprocal.
    fn softmax_row(row: &mut [f32]) {
        let max = row
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        row.iter_mut().for_each(|v| *v = (*v - max).exp_fast());
        let inv = interleaved_sum(row.iter().copied()).recip();
        row.iter_mut().for_each(|v| *v *= inv);
    }

    fn interleaved_sum(x: impl ExactSizeIterator<Item = f32>) -> f32 {
        let x: Vec<f32> = x.collect();
        let whole = x.len() / ROW_LANES * ROW_LANES;
        let mut partial = [0f32; ROW_LANES];
        for (i, &v) in x[..whole].iter().enumerate() {
            partial[i % ROW_LANES] += v;
        }
        let tail = x[whole..].iter().fold(0f32, |s, &v| s + v);
        partial.into_iter().fold(tail, |s, a| s + a)
    }

    fn transposed_block(seq: usize, rng: &mut impl Rng) -> Vec<f32> {
        let mut pt = vec![0f32; seq * padded(seq)];
        for i in 0..seq {
            for q in 0..seq {
                pt[i * padded(seq) + q] = rng.random_range(-6.0..6.0);
            }
        }
        pt
    }

    /// Query `q`'s column of a transposed block, as a row.
    fn column(pt: &[f32], seq: usize, q: usize) -> Vec<f32> {
        (0..seq).map(|i| pt[i * padded(seq) + q]).collect()
    }

    #[test]
    fn column_softmax_has_the_row_wise_bits() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for seq in [1, 5, 8, 16, 29, 97] {
            let mut pt = transposed_block(seq, &mut rng);
            let rows: Vec<Vec<f32>> = (0..seq).map(|q| column(&pt, seq, q)).collect();
            softmax_columns(&mut pt, seq, padded(seq));
            for (q, mut row) in rows.into_iter().enumerate() {
                softmax_row(&mut row);
                let got = column(&pt, seq, q);
                assert!(
                    same_bits(&got, &row),
                    "seq {seq}, query {q}: {got:?} against {row:?}"
                );
            }
        }
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn column_softmax_backward_has_the_row_wise_bits() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        for seq in [1, 5, 8, 16, 29, 97] {
            let mut pt = transposed_block(seq, &mut rng);
            softmax_columns(&mut pt, seq, padded(seq));
            let mut dpt = transposed_block(seq, &mut rng);
            let expected: Vec<Vec<f32>> = (0..seq)
                .map(|q| {
                    let (p, dp) = (column(&pt, seq, q), column(&dpt, seq, q));
                    let dot = interleaved_sum(dp.iter().zip(&p).map(|(&g, &p)| g * p));
                    dp.iter().zip(&p).map(|(&g, &p)| p * (g - dot)).collect()
                })
                .collect();
            softmax_backward_columns(&mut dpt, &pt, seq, padded(seq));
            for (q, row) in expected.into_iter().enumerate() {
                let got = column(&dpt, seq, q);
                assert!(
                    same_bits(&got, &row),
                    "seq {seq}, query {q}: {got:?} against {row:?}"
                );
            }
        }
    }
}
