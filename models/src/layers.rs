//! The layers both models share (official `models/layers.py`, `models/common.py`): linear
//! without bias, RMSNorm without weight, SwiGLU with the official inner-width rule, post-norm
//! blocks (their attention mixer in `attention`), and the reasoning module that adds its
//! injection before the first block.
//!
//! On the CPU, in f32 or f64, the hot spots run as fused kernels with their own backward
//! (`kernels`: RMSNorm of a residual sum, SwiGLU's gate, and attention through
//! `attention::attend`); elsewhere (CUDA, bf16) as compositions of candle ops that all have a
//! backward (candle's own fused `softmax_last_dim`, `rms_norm` and `rope` do not).
//! `swiglu_gate_reference` and `rms_norm` are the plain compositions the tests compare the
//! kernels with.

use crate::attention::{Attention, Rotary};
use crate::kernels;
use candle_core::{DType, Result, Tensor, D};
use candle_nn::VarBuilder;

thread_local! {
    static NO_GRAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` without recording a graph, as the official code's `torch.no_grad()` blocks:
/// parameters are read through detached views, so nothing `f` computes from detached inputs
/// keeps its intermediates alive for a backward pass that will never come.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    in_mode(true, f)
}

/// Runs `f` recording its graph, whatever mode the calling thread is in. The mode is the
/// thread's, and a rayon worker that waits inside a `no_grad` block (for a kernel's parallel
/// loop) runs any job it steals on its own stack: a training shard of another rank or run
/// would read detached parameters and get no gradients. So every job that needs a graph
/// sets the mode itself.
pub fn with_grad<T>(f: impl FnOnce() -> T) -> T {
    in_mode(false, f)
}

fn in_mode<T>(detached: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_GRAD.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(NO_GRAD.with(|g| g.replace(detached)));
    f()
}

/// A parameter as the current mode reads it, in the activations' dtype (the official
/// `CastedLinear` casts its f32 weight to the input's dtype; the gradient flows back to f32).
fn parameter(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let t = if NO_GRAD.with(|g| g.get()) {
        t.detach()
    } else {
        t.clone()
    };
    t.to_dtype(dtype)
}

/// Whether `t` runs on the fused CPU kernels (`kernels`): on the CPU, in f32 or f64.
pub(crate) fn on_cpu_kernels(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// The dtype of the numerically sensitive steps (RMSNorm, RoPE, softmax, the halting head's
/// logits): f32 at least, as the official code; f64 stays f64, for gradient checks.
pub fn at_least_f32(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// `rms_norm(h + delta)`: the post-norm residual step.
pub fn rms_norm_residual(h: &Tensor, delta: &Tensor, eps: f64) -> Result<Tensor> {
    if on_cpu_kernels(h) {
        kernels::rms_norm::rms_norm_residual(h, delta, eps)
    } else {
        rms_norm(&(h + delta)?, eps)
    }
}

/// `x @ w.T` with `w` in PyTorch's `[out, in]` layout.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(vb: &VarBuilder, fan_in: usize, fan_out: usize, bias: bool) -> Result<Self> {
        let weight = vb.get((fan_out, fan_in), "weight")?;
        let bias = if bias {
            Some(vb.get(fan_out, "bias")?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// One GEMM over every leading position (`[.., in] -> [.., out]`): broadcasting the
    /// weight over the batch instead would run one small GEMM per batch row, and sum the
    /// weight's gradient over them in the backward pass. The CPU kernel takes the leading
    /// axes as they are.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = parameter(&self.weight, x.dtype())?;
        let y = if on_cpu_kernels(x) {
            kernels::linear::linear(x, &weight)?
        } else {
            let mut shape = x.dims().to_vec();
            let fan_in = shape.pop().expect("at least one axis");
            shape.push(weight.dim(0)?);
            let rows: usize = x.elem_count() / fan_in.max(1);
            x.reshape((rows, fan_in))?
                .matmul(&weight.t()?)?
                .reshape(shape)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&parameter(b, y.dtype())?),
            None => Ok(y),
        }
    }

    /// The weight as `forward` reads it for `x`, where the projection is bias-free and `x`
    /// runs on the CPU kernels: what `kernels::sublayer` takes in place of `forward`.
    pub(crate) fn fused_weight(&self, x: &Tensor) -> Result<Option<Tensor>> {
        if self.bias.is_some() || !on_cpu_kernels(x) {
            return Ok(None);
        }
        parameter(&self.weight, x.dtype()).map(Some)
    }
}

/// `rms_norm(h + b(mix(a(h))))`, where `a`, `mix` and `b` make a sublayer's forward (given as
/// `forward`): one fused node (`kernels::sublayer`) where both projections can take it.
pub(crate) fn post_norm_residual(
    h: &Tensor,
    (a, mix, b): (&Linear, kernels::sublayer::Mix, &Linear),
    eps: f64,
    forward: impl FnOnce() -> Result<Tensor>,
) -> Result<Tensor> {
    match (a.fused_weight(h)?, b.fused_weight(h)?) {
        (Some(w_a), Some(w_b)) => kernels::sublayer::post_norm_sublayer(h, &w_a, mix, &w_b, eps),
        _ => rms_norm_residual(h, &forward()?, eps),
    }
}

/// RMSNorm without a learnable gain over the last axis, in at least f32 (f64 stays f64, for
/// gradient checks): `x / sqrt(mean(x^2) + eps)`.
pub fn rms_norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(at_least_f32(dtype))?;
    let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(variance + eps)?.sqrt()?)?.to_dtype(dtype)
}

/// The official SwiGLU inner width: `round(expansion * width * 2 / 3)` rounded up to 256.
pub fn swiglu_inner(width: usize, expansion: f64) -> usize {
    let raw = (expansion * width as f64 * 2.0 / 3.0).round() as usize;
    raw.div_ceil(256) * 256
}

/// `down(silu(gate) * up)` with `[gate | up] = gate_up_proj(x)`.
#[derive(Debug, Clone)]
pub struct SwiGlu {
    gate_up_proj: Linear,
    down_proj: Linear,
    inner: usize,
}

impl SwiGlu {
    pub fn new(vb: &VarBuilder, width: usize, expansion: f64) -> Result<Self> {
        let inner = swiglu_inner(width, expansion);
        Ok(SwiGlu {
            gate_up_proj: Linear::new(&vb.pp("gate_up_proj"), width, 2 * inner, false)?,
            down_proj: Linear::new(&vb.pp("down_proj"), inner, width, false)?,
            inner,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate_up = self.gate_up_proj.forward(x)?;
        let hidden = if on_cpu_kernels(&gate_up) {
            kernels::swiglu::swiglu_gate(&gate_up)?
        } else {
            swiglu_gate_reference(&gate_up, self.inner)?
        };
        self.down_proj.forward(&hidden)
    }

    /// `rms_norm(x + self.forward(x))`, the block's residual step.
    pub fn residual(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        let parts = (
            &self.gate_up_proj,
            kernels::sublayer::Mix::SwiGlu,
            &self.down_proj,
        );
        post_norm_residual(x, parts, eps, || self.forward(x))
    }
}

/// `silu(gate) * up` of the halves of `gate_up` in plain candle ops.
pub fn swiglu_gate_reference(gate_up: &Tensor, inner: usize) -> Result<Tensor> {
    let gate = gate_up.narrow(D::Minus1, 0, inner)?;
    let up = gate_up.narrow(D::Minus1, inner, inner)?;
    gate.silu()? * up
}

/// How a block mixes information across positions.
#[derive(Debug, Clone)]
pub enum TokenMixer {
    Attention(Attention),
    /// TRM-MLP (`mlp_t`): a SwiGLU over the sequence axis, applied to the transposed state, so
    /// its residual RMSNorm runs over the sequence axis.
    SequenceMlp(SwiGlu),
}

/// Post-norm block: `h = rms(h + mix(h))`, then `h = rms(h + swiglu(h))`.
#[derive(Debug, Clone)]
pub struct Block {
    mixer: TokenMixer,
    mlp: SwiGlu,
    eps: f64,
}

/// Shapes shared by every block of a model.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    pub hidden: usize,
    pub num_heads: usize,
    pub expansion: f64,
    pub eps: f64,
    /// `Some(full sequence length)` selects the sequence-MLP mixer.
    pub sequence_mlp: Option<usize>,
}

impl BlockShape {
    /// The blocks of a model: attention, or the sequence-MLP mixer over the full sequence.
    pub fn of(cfg: &crate::config::ModelConfig, sequence_mlp: bool) -> Self {
        BlockShape {
            hidden: cfg.hidden_size,
            num_heads: cfg.num_heads,
            expansion: cfg.expansion,
            eps: cfg.rms_norm_eps,
            sequence_mlp: sequence_mlp.then(|| cfg.full_seq_len()),
        }
    }
}

impl Block {
    pub fn new(vb: &VarBuilder, shape: BlockShape) -> Result<Self> {
        let mixer = match shape.sequence_mlp {
            Some(seq) => {
                TokenMixer::SequenceMlp(SwiGlu::new(&vb.pp("mlp_t"), seq, shape.expansion)?)
            }
            None => TokenMixer::Attention(Attention::new(
                &vb.pp("self_attn"),
                shape.hidden,
                shape.num_heads,
            )?),
        };
        Ok(Block {
            mixer,
            mlp: SwiGlu::new(&vb.pp("mlp"), shape.hidden, shape.expansion)?,
            eps: shape.eps,
        })
    }

    pub fn forward(&self, h: &Tensor, rotary: Option<&Rotary>) -> Result<Tensor> {
        let h = match &self.mixer {
            TokenMixer::Attention(attn) => attn.residual(h, rotary, self.eps)?,
            TokenMixer::SequenceMlp(mlp) => {
                let t = h.transpose(1, 2)?.contiguous()?;
                mlp.residual(&t, self.eps)?.transpose(1, 2)?.contiguous()?
            }
        };
        self.mlp.residual(&h, self.eps)
    }
}

/// A stack of blocks that first adds its input injection (`ReasoningModule`).
#[derive(Debug, Clone)]
pub struct ReasoningModule {
    layers: Vec<Block>,
}

impl ReasoningModule {
    pub fn new(vb: &VarBuilder, num_layers: usize, shape: BlockShape) -> Result<Self> {
        let layers = (0..num_layers)
            .map(|i| Block::new(&vb.pp("layers").pp(i), shape))
            .collect::<Result<_>>()?;
        Ok(ReasoningModule { layers })
    }

    /// The blocks on `hidden + injection` (the official `forward(hidden, input_injection)`).
    pub fn forward(
        &self,
        hidden: &Tensor,
        injection: &Tensor,
        rotary: Option<&Rotary>,
    ) -> Result<Tensor> {
        self.blocks((hidden + injection)?, rotary)
    }

    /// The blocks alone (TRM-SingleZ's module takes no injection).
    pub fn blocks(&self, mut h: Tensor, rotary: Option<&Rotary>) -> Result<Tensor> {
        for layer in &self.layers {
            h = layer.forward(&h, rotary)?;
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_widths_follow_the_official_rule() {
        assert_eq!(swiglu_inner(512, 4.0), 1536);
        assert_eq!(swiglu_inner(64, 4.0), 256);
        assert_eq!(swiglu_inner(97, 4.0), 512);
        assert_eq!(swiglu_inner(916, 4.0), 2560);
    }
}
