//! `y = rms_norm(a + b)` over the last axis (the post-norm residual of every block), in one
//! pass: `x = a + b`, `r = 1 / sqrt(mean(x^2) + eps)`, `y = x r`. Backward, from `a`, `b`
//! and the output gradient `g` (x and r recomputed): `dx = r (g - y mean(g y))`, the same for
//! `a` and `b`.

use super::{dot, for_float, fresh, rows_per_task, slice, Real};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;
use std::mem::MaybeUninit;

pub struct RmsNormResidual {
    pub eps: f64,
}

/// Writes `x = a + b` of one row into `x` and returns `r`.
#[inline(always)]
fn normalise<T: Real>(a: &[T], b: &[T], x: &mut [T], eps: f64) -> T {
    for ((x, &a), &b) in x.iter_mut().zip(a).zip(b) {
        *x = a + b;
    }
    let sum = dot(x, x);
    let n = T::from(x.len()).expect("a row length");
    (sum / n + T::from(eps).expect("eps")).sqrt().recip()
}

super::simd_targets! {
    fn forward_rows<T: Real>(out: &mut [MaybeUninit<T>], a: &[T], b: &[T], width: usize, eps: f64) {
        let mut x = vec![T::zero(); width];
        for ((y, a), b) in out.chunks_mut(width).zip(a.chunks(width)).zip(b.chunks(width)) {
            let r = normalise(a, b, &mut x, eps);
            for (y, &x) in y.iter_mut().zip(&x) {
                y.write(x * r);
            }
        }
    }

    fn backward_rows<T: Real>(out: &mut [MaybeUninit<T>], a: &[T], b: &[T], g: &[T], width: usize, eps: f64) {
        let n = T::from(width).expect("a row length");
        let mut x = vec![T::zero(); width];
        for (((dx, a), b), g) in out
            .chunks_mut(width)
            .zip(a.chunks(width))
            .zip(b.chunks(width))
            .zip(g.chunks(width))
        {
            let r = normalise(a, b, &mut x, eps);
            let gy = dot(g, &x) * r;
            let mean = gy / n;
            for ((d, &x), &g) in dx.iter_mut().zip(&x).zip(g) {
                let y = x * r;
                d.write(r * (g - y * mean));
            }
        }
    }
}

pub(super) fn forward<T: Real>(a: &[T], b: &[T], width: usize, eps: f64) -> Vec<T> {
    let chunk = rows_per_task(width) * width;
    // SAFETY: the rows of `out` pair with those of `a`, and each row writes all of its own.
    unsafe {
        fresh(a.len(), |out| {
            out.par_chunks_mut(chunk)
                .zip(a.par_chunks(chunk).zip(b.par_chunks(chunk)))
                .for_each(|(out, (a, b))| forward_rows(out, a, b, width, eps))
        })
    }
}

fn backward<T: Real>(a: &[T], b: &[T], g: &[T], width: usize, eps: f64) -> Vec<T> {
    let chunk = rows_per_task(width) * width;
    // SAFETY: the rows of `out` pair with those of `a`, and each row writes all of its own.
    unsafe {
        fresh(a.len(), |out| {
            out.par_chunks_mut(chunk)
                .zip(
                    a.par_chunks(chunk)
                        .zip(b.par_chunks(chunk))
                        .zip(g.par_chunks(chunk)),
                )
                .for_each(|(out, ((a, b), g))| backward_rows(out, a, b, g, width, eps))
        })
    }
}

impl CustomOp2 for RmsNormResidual {
    fn name(&self) -> &'static str {
        "rms-norm-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let width = *l1.dims().last().expect("at least one axis");
        for_float!(s1, T => {
            let out = forward::<T>(slice(s1, l1)?, slice(s2, l2)?, width, self.eps);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = a.apply_op3_no_bwd(
            b,
            &grad.contiguous()?,
            &RmsNormResidualBackward { eps: self.eps },
        )?;
        Ok((Some(dx.clone()), Some(dx)))
    }
}

pub(super) struct RmsNormResidualBackward {
    pub(super) eps: f64,
}

impl CustomOp3 for RmsNormResidualBackward {
    fn name(&self) -> &'static str {
        "rms-norm-residual-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let width = *l1.dims().last().expect("at least one axis");
        for_float!(s1, T => {
            let out = backward::<T>(slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, width, self.eps);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }
}

/// `rms_norm(a + b)` over the last axis with the fused kernel (CPU tensors of equal shape).
pub fn rms_norm_residual(a: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        candle_core::bail!(
            "rms_norm_residual: {:?} {:?} and {:?} {:?} differ",
            a.shape(),
            a.dtype(),
            b.shape(),
            b.dtype()
        );
    }
    let _ = a.dim(D::Minus1)?;
    a.contiguous()?
        .apply_op2(&b.contiguous()?, RmsNormResidual { eps })
}
