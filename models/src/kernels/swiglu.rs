//! SwiGLU's gate, `h = silu(gate) * up` with `[gate | up]` the two halves of the last axis of
//! `gate_up_proj(x)`, in one pass and without the two `narrow` copies. Backward:
//! `d_up = g silu(gate)`, `d_gate = g up s (1 + gate (1 - s))` with `s = sigmoid(gate)`.

use super::{for_float, fresh, rows_per_task, slice, Real};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

pub struct SwiGluGate;

#[inline(always)]
fn sigmoid<T: Real>(x: T) -> T {
    (T::one() + (-x).exp_fast()).recip()
}

super::simd_targets! {
    fn forward_rows<T: Real>(out: &mut [MaybeUninit<T>], gate_up: &[T], inner: usize) {
        for (h, gu) in out.chunks_mut(inner).zip(gate_up.chunks(2 * inner)) {
            let (gate, up) = gu.split_at(inner);
            for ((h, &g), &u) in h.iter_mut().zip(gate).zip(up) {
                h.write(g * sigmoid(g) * u);
            }
        }
    }

    fn backward_rows<T: Real>(out: &mut [MaybeUninit<T>], gate_up: &[T], grad: &[T], inner: usize) {
        for ((d, gu), grad) in out
            .chunks_mut(2 * inner)
            .zip(gate_up.chunks(2 * inner))
            .zip(grad.chunks(inner))
        {
            let (gate, up) = gu.split_at(inner);
            let (d_gate, d_up) = d.split_at_mut(inner);
            for i in 0..inner {
                let (g, u, dh) = (gate[i], up[i], grad[i]);
                let s = sigmoid(g);
                d_up[i].write(dh * g * s);
                d_gate[i].write(dh * u * s * (T::one() + g * (T::one() - s)));
            }
        }
    }
}

pub(super) fn forward<T: Real>(gate_up: &[T], inner: usize) -> Vec<T> {
    let per = rows_per_task(2 * inner);
    // SAFETY: the rows of `out` pair with those of `gate_up`, and each row writes all of its
    // `inner` elements.
    unsafe {
        fresh(gate_up.len() / 2, |out| {
            out.par_chunks_mut(per * inner)
                .zip(gate_up.par_chunks(per * 2 * inner))
                .for_each(|(out, gu)| forward_rows(out, gu, inner))
        })
    }
}

fn backward<T: Real>(gate_up: &[T], grad: &[T], inner: usize) -> Vec<T> {
    let per = rows_per_task(2 * inner);
    // SAFETY: the rows of `out` pair with those of `gate_up`, and each row writes both of its
    // halves.
    unsafe {
        fresh(gate_up.len(), |out| {
            out.par_chunks_mut(per * 2 * inner)
                .zip(
                    gate_up
                        .par_chunks(per * 2 * inner)
                        .zip(grad.par_chunks(per * inner)),
                )
                .for_each(|(out, (gu, grad))| backward_rows(out, gu, grad, inner))
        })
    }
}

pub(super) fn inner_of(l: &Layout) -> Result<usize> {
    let last = *l.dims().last().expect("at least one axis");
    if !last.is_multiple_of(2) {
        candle_core::bail!("swiglu: the last axis ({last}) holds gate and up halves");
    }
    Ok(last / 2)
}

impl CustomOp1 for SwiGluGate {
    fn name(&self) -> &'static str {
        "swiglu-gate"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let inner = inner_of(l)?;
        let mut dims = l.dims().to_vec();
        *dims.last_mut().expect("at least one axis") = inner;
        for_float!(s, T => {
            let out = forward::<T>(slice(s, l)?, inner);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), Shape::from(dims)))
        })
    }

    fn bwd(&self, gate_up: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(gate_up.apply_op2_no_bwd(
            &grad.contiguous()?,
            &SwiGluGateBackward,
        )?))
    }
}

pub(super) struct SwiGluGateBackward;

impl CustomOp2 for SwiGluGateBackward {
    fn name(&self) -> &'static str {
        "swiglu-gate-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let inner = inner_of(l1)?;
        for_float!(s1, T => {
            let out = backward::<T>(slice(s1, l1)?, slice(s2, l2)?, inner);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }
}

/// `silu(gate) * up` of `gate_up` `[.., 2 inner]` with the fused kernel (a CPU tensor).
pub fn swiglu_gate(gate_up: &Tensor) -> Result<Tensor> {
    gate_up.contiguous()?.apply_op1(SwiGluGate)
}
