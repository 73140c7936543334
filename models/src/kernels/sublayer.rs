//! A post-norm sublayer as one graph node: `y = rms_norm(h + b(mix(a(h))))`, where `a` and
//! `b` are bias-free projections (`[out, in]` weights) and `mix` is SwiGLU's gate or the
//! attention core. In candle's backward every node of the graph costs a zero-filled gradient
//! and an add over its output: as the four nodes of the composition (two projections, the
//! mix, the residual RMSNorm), a block's gradients of `a(h)`, `mix`, `b(..)` and `y` went
//! through that store, 16% of a one-thread TRM-Att step at the cpu preset (`results/bench-profile.md`).
//! As one node, only `h` and the two weights collect gradients.
//!
//! The forward runs the composition's kernels in its order, and the backward its backward
//! kernels, so the bits are the composition's (`layers::rms_norm_residual` of a
//! `SwiGlu::forward` or `Attention::forward`; the tests below compare them).

use super::attention::{AttentionBackward, AttentionCore, RotaryFloat};
use super::linear::{product, rows_and_width, weight_dims, with_width, InputGrad, WeightGrad};
use super::rms_norm::RmsNormResidualBackward;
use super::swiglu::SwiGluGateBackward;
use super::{for_float, slice};
use candle_core::{CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// What lies between the two projections.
#[derive(Clone)]
pub enum Mix {
    /// `silu(gate) * up` of the halves of `a(h)` (`swiglu::SwiGluGate`).
    SwiGlu,
    /// Multi-head attention from `a(h)` = qkv (`attention::AttentionCore`).
    Attention(AttentionCore),
}

impl Mix {
    /// `mix(pre)` and its shape, for `pre` of shape `pre_shape`.
    fn forward<T: RotaryFloat>(&self, pre: &[T], pre_shape: &Shape) -> Result<(Vec<T>, Shape)> {
        let layout = Layout::contiguous(pre_shape);
        match self {
            Mix::SwiGlu => {
                let inner = super::swiglu::inner_of(&layout)?;
                let out = super::swiglu::forward(pre, inner);
                Ok((out, with_width(&layout, inner)))
            }
            Mix::Attention(core) => {
                let (b, sh) = core.shape(&layout)?;
                let out = super::attention::forward(core, pre, &sh);
                Ok((out, Shape::from((b, sh.seq, sh.out_row()))))
            }
        }
    }

    /// The gradient of `pre` from that of `mix(pre)`.
    fn backward(&self, pre: &Tensor, d_mid: &Tensor) -> Result<Tensor> {
        match self {
            Mix::SwiGlu => pre.apply_op2_no_bwd(d_mid, &SwiGluGateBackward),
            Mix::Attention(core) => pre.apply_op2_no_bwd(d_mid, &AttentionBackward(core.clone())),
        }
    }
}

pub struct PostNormSublayer {
    mix: Mix,
    eps: f64,
    /// Whether the forward keeps `a(h)`, `mix(a(h))` and `b(..)` for a backward pass.
    keep: bool,
    saved: Mutex<Option<[Tensor; 3]>>,
}

impl CustomOp3 for PostNormSublayer {
    fn name(&self) -> &'static str {
        "post-norm-sublayer"
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
        let (rows, width) = rows_and_width(l1, "h")?;
        let ((a_out, a_in), (b_out, b_in)) = (weight_dims(l2)?, weight_dims(l3)?);
        if a_in != width || b_out != width {
            candle_core::bail!(
                "sublayer: h has {width} features; the projections are {a_in} -> {a_out} and {b_in} -> {b_out}"
            );
        }
        for_float!(s1, T => {
            let (h, w_a, w_b) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?);
            let pre_shape = with_width(l1, a_out);
            let pre = product(h, w_a, rows, width, a_out);
            let (mid, mid_shape) = self.mix.forward(&pre, &pre_shape)?;
            if mid_shape.dims().last() != Some(&b_in) {
                candle_core::bail!("sublayer: the mix gives {mid_shape:?}, b takes {b_in}");
            }
            let delta = product(&mid, w_b, rows, b_in, width);
            let y = super::rms_norm::forward(h, &delta, width, self.eps);
            if self.keep {
                let cpu = &Device::Cpu;
                *self.saved.lock().expect("not poisoned") = Some([
                    Tensor::from_vec(pre, pre_shape, cpu)?,
                    Tensor::from_vec(mid, mid_shape, cpu)?,
                    Tensor::from_vec(delta, l1.shape().clone(), cpu)?,
                ]);
            }
            Ok((candle_core::WithDType::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        h: &Tensor,
        w_a: &Tensor,
        w_b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some([pre, mid, delta]) = self.saved.lock().expect("not poisoned").clone() else {
            candle_core::bail!("sublayer: backward of a forward that kept nothing");
        };
        let grad = grad.contiguous()?;
        let rms = RmsNormResidualBackward { eps: self.eps };
        // The gradient of `h + delta`, which both terms of the residual sum receive.
        let d_delta = h.apply_op3_no_bwd(&delta, &grad, &rms)?;
        let d_w_b = d_delta.apply_op2_no_bwd(&mid, &WeightGrad)?;
        let d_mid = d_delta.apply_op2_no_bwd(w_b, &InputGrad)?;
        let d_pre = self.mix.backward(&pre, &d_mid)?;
        let d_w_a = d_pre.apply_op2_no_bwd(h, &WeightGrad)?;
        let d_h = (d_delta + d_pre.apply_op2_no_bwd(w_a, &InputGrad)?)?;
        Ok((Some(d_h), Some(d_w_a), Some(d_w_b)))
    }
}

/// `rms_norm(h + b(mix(a(h))))` over the last axis (CPU tensors in f32 or f64; `w_a` and
/// `w_b` in PyTorch's `[out, in]` layout), as one node of the graph.
pub fn post_norm_sublayer(
    h: &Tensor,
    w_a: &Tensor,
    mix: Mix,
    w_b: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let op = PostNormSublayer {
        mix,
        eps,
        keep: [h, w_a, w_b].iter().any(|t| t.track_op()),
        saved: Mutex::new(None),
    };
    h.contiguous()?
        .apply_op3(&w_a.contiguous()?, &w_b.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The composition the op replaces, on the same kernels as separate nodes.
    fn composition(h: &Tensor, w_a: &Tensor, mix: &Mix, w_b: &Tensor) -> Result<Tensor> {
        use super::super::{attention::attention, linear::linear, swiglu::swiglu_gate};
        let pre = linear(h, w_a)?;
        let mid = match mix {
            Mix::SwiGlu => swiglu_gate(&pre)?,
            Mix::Attention(core) => attention(&pre, core.clone())?,
        };
        super::super::rms_norm::rms_norm_residual(h, &linear(&mid, w_b)?, 1e-5)
    }

    /// Output and the gradients of `h`, `w_a` and `w_b` of a weighted sum of the output.
    fn run(fused: bool, mix: &Mix, dtype: DType, widths: (usize, usize, usize)) -> Vec<Vec<f64>> {
        let (width, a_out, b_in) = widths;
        let var = |shape: &[usize], seed| {
            Var::from_tensor(&random(shape, seed).to_dtype(dtype).unwrap()).unwrap()
        };
        let (h, w_a, w_b) = (
            var(&[3, 7, width], 1),
            var(&[a_out, width], 2),
            var(&[width, b_in], 3),
        );
        let y = if fused {
            post_norm_sublayer(&h, &w_a, mix.clone(), &w_b, 1e-5).unwrap()
        } else {
            composition(&h, &w_a, mix, &w_b).unwrap()
        };
        let weights = random(y.dims(), 4).to_dtype(dtype).unwrap();
        let grads = (&y * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let flat = |t: &Tensor| {
            t.flatten_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let mut out = vec![flat(&y)];
        out.extend([&h, &w_a, &w_b].map(|v| flat(grads.get(v.as_tensor()).expect("a gradient"))));
        out
    }

    #[test]
    fn the_sublayer_gives_the_bits_of_its_composition() {
        let table = |seed| {
            random(&[7, 4], seed)
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let attention = Mix::Attention(AttentionCore {
            heads: 2,
            head_dim: 4,
            rotary: Some(super::super::attention::RotaryTables::new(
                table(6),
                table(7),
            )),
        });
        for dtype in [DType::F32, DType::F64] {
            for (mix, widths) in [(Mix::SwiGlu, (8, 32, 16)), (attention.clone(), (8, 24, 8))] {
                let (fused, composed) = (
                    run(true, &mix, dtype, widths),
                    run(false, &mix, dtype, widths),
                );
                for (what, (f, c)) in ["y", "dh", "dw_a", "dw_b"]
                    .iter()
                    .zip(fused.iter().zip(&composed))
                {
                    assert_eq!(f, c, "{what} in {dtype:?}");
                }
            }
        }
    }

    #[test]
    fn without_a_graph_the_output_is_untracked_and_the_same() {
        let (h, w_a, w_b) = (
            random(&[2, 3, 8], 1),
            random(&[32, 8], 2),
            random(&[8, 16], 3),
        );
        let untracked = post_norm_sublayer(&h, &w_a, Mix::SwiGlu, &w_b, 1e-5).unwrap();
        assert!(!untracked.track_op());
        let w_a = Var::from_tensor(&w_a).unwrap();
        let tracked = post_norm_sublayer(&h, &w_a, Mix::SwiGlu, &w_b, 1e-5).unwrap();
        assert!(tracked.track_op());
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&untracked), flat(&tracked));
    }

    #[test]
    fn mismatched_projections_are_an_error() {
        let (h, w_a) = (random(&[2, 3, 8], 1), random(&[32, 8], 2));
        let err =
            post_norm_sublayer(&h, &w_a, Mix::SwiGlu, &random(&[9, 16], 5), 1e-5).unwrap_err();
        assert!(err.to_string().contains("projections"), "{err}");
        let err =
            post_norm_sublayer(&h, &w_a, Mix::SwiGlu, &random(&[8, 12], 5), 1e-5).unwrap_err();
        assert!(err.to_string().contains("b takes 12"), "{err}");
    }
}
