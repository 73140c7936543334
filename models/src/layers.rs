//! The layers both models share (official `models/layers.py`, `models/common.py`): linear
//! without bias, RMSNorm without weight, rotary embedding in the rotate-half layout, non-causal
//! attention without mask, SwiGLU with the official inner-width rule, post-norm blocks, and the
//! reasoning module that adds its injection before the first block.
//!
//! On the CPU, in f32 or f64, the hot spots run as fused kernels with their own backward
//! (`kernels`: attention with RoPE, RMSNorm of a residual sum, SwiGLU's gate); elsewhere (CUDA,
//! bf16) attention runs in query chunks with a recomputing backward (`chunked_attention`) and
//! the rest as compositions of candle ops that all have a backward (candle's own fused
//! `softmax_last_dim`, `rms_norm` and `rope` do not). `attention_reference` is the plain
//! composition the tests compare both attentions with.

use crate::kernels;
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;

thread_local! {
    static NO_GRAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` without recording a graph, as the official code's `torch.no_grad()` blocks:
/// parameters are read through detached views, so nothing `f` computes from detached inputs
/// keeps its intermediates alive for a backward pass that will never come.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_GRAD.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(NO_GRAD.with(|g| g.replace(true)));
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

/// Whether `t` can use the fused CPU kernels.
fn fused(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// `rms_norm(h + delta)`: the post-norm residual step.
pub fn rms_norm_residual(h: &Tensor, delta: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(h) {
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
    /// weight's gradient over them in the backward pass.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut shape = x.dims().to_vec();
        let fan_in = shape.pop().expect("at least one axis");
        let rows: usize = shape.iter().product();
        let x = x.reshape((rows, fan_in))?;
        let weight = parameter(&self.weight, x.dtype())?;
        let y = if fused(&x) {
            kernels::linear::linear(&x, &weight)?
        } else {
            x.matmul(&weight.t()?)?
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&parameter(b, y.dtype())?)?,
            None => y,
        };
        shape.push(y.dim(1)?);
        y.reshape(shape)
    }
}

/// RMSNorm without a learnable gain over the last axis, in at least f32 (f64 stays f64, for
/// gradient checks): `x / sqrt(mean(x^2) + eps)`.
pub fn rms_norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = if dtype == DType::F64 {
        x.clone()
    } else {
        x.to_dtype(DType::F32)?
    };
    let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(variance + eps)?.sqrt()?)?.to_dtype(dtype)
}

/// Rotary tables for positions `0..seq_len` (the puzzle-embedding prefix included), with
/// `emb = cat(freqs, freqs)` as in GPT-NeoX, not interleaved pairs.
#[derive(Debug, Clone)]
pub struct Rotary {
    pub cos: Tensor,
    pub sin: Tensor,
    /// The same tables in host memory, for the fused attention kernel.
    pub tables: kernels::attention::RotaryTables,
}

impl Rotary {
    pub fn new(head_dim: usize, seq_len: usize, theta: f64, device: &Device) -> Result<Self> {
        let inv_freq: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / (theta as f32).powf(i as f32 / head_dim as f32))
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, head_dim / 2), device)?;
        // Tables in f32 as the official code; `apply` casts them to the activations' dtype.
        let positions = Tensor::arange(0u32, seq_len as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((seq_len, 1))?;
        let freqs = positions.broadcast_mul(&inv_freq)?;
        let emb = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
        let (cos, sin) = (emb.cos()?, emb.sin()?);
        let host = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        Ok(Rotary {
            tables: kernels::attention::RotaryTables::new(host(&cos)?, host(&sin)?),
            cos,
            sin,
        })
    }

    /// Applies the rotation to `[batch, seq, heads, head_dim]`, in f32 at least (the
    /// official `apply_rotary_pos_emb` casts q and k to the tables' f32 and back).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (_, seq, _, head_dim) = x.dims4()?;
        let dtype = x.dtype();
        let work = if dtype == DType::F64 {
            dtype
        } else {
            DType::F32
        };
        let table = |t: &Tensor| -> Result<Tensor> {
            t.narrow(0, 0, seq)?
                .reshape((1, seq, 1, head_dim))?
                .to_dtype(work)
        };
        let x = x.to_dtype(work)?;
        (x.broadcast_mul(&table(&self.cos)?)?
            + rotate_half(&x)?.broadcast_mul(&table(&self.sin)?)?)?
        .to_dtype(dtype)
    }
}

/// `[a, b] -> [-b, a]` on the two halves of the last axis.
fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let a = x.narrow(D::Minus1, 0, half)?;
    let b = x.narrow(D::Minus1, half, half)?;
    Tensor::cat(&[&b.neg()?, &a], D::Minus1)
}

/// Softmax over the last axis built from differentiable ops; the max shift is a constant.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Multi-head self-attention over all positions (no causal mask, no padding mask), one fused
/// `qkv_proj` whose output heads are q (0..H), k (H..2H), v (2H..3H).
#[derive(Debug, Clone)]
pub struct Attention {
    qkv_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn new(vb: &VarBuilder, hidden: usize, num_heads: usize) -> Result<Self> {
        let head_dim = hidden / num_heads;
        Ok(Attention {
            qkv_proj: Linear::new(&vb.pp("qkv_proj"), hidden, 3 * num_heads * head_dim, false)?,
            o_proj: Linear::new(&vb.pp("o_proj"), num_heads * head_dim, hidden, false)?,
            num_heads,
            head_dim,
        })
    }

    pub fn forward(&self, x: &Tensor, rotary: Option<&Rotary>) -> Result<Tensor> {
        let qkv = self.qkv_proj.forward(x)?;
        let out = if fused(&qkv) {
            let op = kernels::attention::AttentionCore {
                heads: self.num_heads,
                head_dim: self.head_dim,
                rotary: rotary.map(|r| r.tables.clone()),
            };
            kernels::attention::attention(&qkv, op)?
        } else {
            let (b, s, _) = qkv.dims3()?;
            let chunk = crate::chunked_attention::query_chunk(
                b,
                self.num_heads,
                s,
                crate::chunked_attention::SCORE_BLOCK_BYTES,
            );
            crate::chunked_attention::ChunkedAttention::new(
                self.num_heads,
                self.head_dim,
                rotary,
                chunk,
            )
            .forward(&qkv)?
        };
        self.o_proj.forward(&out)
    }
}

/// The heads' outputs `[B, S, H D]` from `qkv` `[B, S, 3 H D]` in plain candle ops.
pub fn attention_reference(
    qkv: &Tensor,
    h: usize,
    hd: usize,
    rotary: Option<&Rotary>,
) -> Result<Tensor> {
    let (b, s, _) = qkv.dims3()?;
    let qkv = qkv.reshape((b, s, 3 * h, hd))?;
    let mut q = qkv.narrow(2, 0, h)?;
    let mut k = qkv.narrow(2, h, h)?;
    let v = qkv.narrow(2, 2 * h, h)?;
    if let Some(r) = rotary {
        q = r.apply(&q)?;
        k = r.apply(&k)?;
    }
    let heads_first = |t: Tensor| t.transpose(1, 2)?.contiguous();
    let (q, k, v) = (heads_first(q)?, heads_first(k)?, heads_first(v)?);
    let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
    let out = softmax_last_dim(&scores)?.matmul(&v)?;
    out.transpose(1, 2)?.reshape((b, s, h * hd))
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
        let hidden = if fused(&gate_up) {
            kernels::swiglu::swiglu_gate(&gate_up)?
        } else {
            swiglu_gate_reference(&gate_up, self.inner)?
        };
        self.down_proj.forward(&hidden)
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
            TokenMixer::Attention(attn) => {
                rms_norm_residual(h, &attn.forward(h, rotary)?, self.eps)?
            }
            TokenMixer::SequenceMlp(mlp) => {
                let t = h.transpose(1, 2)?.contiguous()?;
                rms_norm_residual(&t, &mlp.forward(&t)?, self.eps)?
                    .transpose(1, 2)?
                    .contiguous()?
            }
        };
        rms_norm_residual(&h, &self.mlp.forward(&h)?, self.eps)
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

    pub fn forward(
        &self,
        hidden: &Tensor,
        injection: &Tensor,
        rotary: Option<&Rotary>,
    ) -> Result<Tensor> {
        let mut h = (hidden + injection)?;
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
