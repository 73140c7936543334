//! Attention, in one place: the layer (`Attention`, with its `qkv_proj` and `o_proj`), the one
//! entry point every model path calls (`attend`), the rotary tables and the one rotate-half
//! RoPE of the candle compositions (`Rotary`, `apply_rotary`, `apply_rotary_transposed`), and
//! the plain composition the tests measure both backends against (`attention_reference`).
//!
//! `attend` picks the backend from the tensor (`AttentionBackend::for_qkv`):
//! - on the CPU in f32 or f64, the fused kernel (`kernels::attention`): RoPE, scores, softmax
//!   and values per `[S, S]` block of one head, with a flash-style recomputing backward;
//! - elsewhere (CUDA, bf16), the chunked composition (`chunked`): query chunks whose score
//!   block stays near `SCORE_BLOCK_BYTES`, a custom op whose backward recomputes each chunk
//!   in candle ops.
//!
//! Both apply the same rotary tables: the chunked backend through `apply_rotary` on candle
//! tensors, the fused kernel row by row on the host copy (`Rotary::tables`), with the same
//! `x cos + rotate_half(x) sin` and its transpose.

pub(crate) mod chunked;

use crate::kernels;
use crate::layers::{at_least_f32, on_cpu_kernels, Linear};
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;

/// Rotary tables for positions `0..seq_len` (the puzzle-embedding prefix included), with
/// `emb = cat(freqs, freqs)` as in GPT-NeoX, not interleaved pairs.
#[derive(Debug, Clone)]
pub struct Rotary {
    /// `[positions, head_dim]`, f32 as the official code.
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

    /// `(cos, sin)` of positions `0..seq` in `dtype`, shaped to broadcast over a rank-4
    /// tensor whose positions lie on `positions_axis` (1 for `[B, S, H, D]`, 2 for
    /// `[B, H, S, D]`) and whose last axis is the head dimension.
    pub(crate) fn broadcast_tables(
        &self,
        seq: usize,
        positions_axis: usize,
        dtype: DType,
    ) -> Result<(Tensor, Tensor)> {
        let mut shape = vec![1, 1, 1, self.cos.dim(1)?];
        shape[positions_axis] = seq;
        let take = |t: &Tensor| t.narrow(0, 0, seq)?.reshape(shape.clone())?.to_dtype(dtype);
        Ok((take(&self.cos)?, take(&self.sin)?))
    }

    /// Applies the rotation to `[batch, seq, heads, head_dim]`, in f32 at least (the
    /// official `apply_rotary_pos_emb` casts q and k to the tables' f32 and back).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (_, seq, _, _) = x.dims4()?;
        let (cos, sin) = self.broadcast_tables(seq, 1, at_least_f32(x.dtype()))?;
        apply_rotary(x, &cos, &sin)
    }
}

/// `[a, b] -> [-b, a]` on the two halves of the last axis.
fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let a = x.narrow(D::Minus1, 0, half)?;
    let b = x.narrow(D::Minus1, half, half)?;
    Tensor::cat(&[&b.neg()?, &a], D::Minus1)
}

/// The transpose of `rotate_half`: `[u, v] -> [v, -u]`.
fn rotate_half_transposed(x: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let u = x.narrow(D::Minus1, 0, half)?;
    let v = x.narrow(D::Minus1, half, half)?;
    Tensor::cat(&[&v, &u.neg()?], D::Minus1)
}

/// RoPE: `x cos + rotate_half(x) sin` in f32 at least (f64 stays f64), back in `x`'s dtype;
/// `cos` and `sin` from `Rotary::broadcast_tables` in `at_least_f32(x.dtype())`.
pub fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(at_least_f32(dtype))?;
    (x.broadcast_mul(cos)? + rotate_half(&x)?.broadcast_mul(sin)?)?.to_dtype(dtype)
}

/// The transpose of `apply_rotary` on a gradient `g` (in the tables' dtype):
/// `g cos + rotate_half^T(g sin)`.
pub fn apply_rotary_transposed(g: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    g.broadcast_mul(cos)? + rotate_half_transposed(&g.broadcast_mul(sin)?)?
}

/// Softmax over the last axis built from differentiable ops; the max shift is a constant.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Which implementation computes attention from `qkv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionBackend {
    /// The fused CPU kernel (`kernels::attention`), f32 or f64.
    FusedCpu,
    /// The chunked composition with a recomputing backward, `query_rows` query rows per
    /// chunk (any device and dtype).
    Chunked { query_rows: usize },
}

impl AttentionBackend {
    /// The backend a model takes for `qkv` `[B, S, 3 H D]` with `heads` heads: the fused
    /// kernel where it runs (CPU, f32 or f64), else query chunks whose f32 score block stays
    /// within `SCORE_BLOCK_BYTES`.
    pub fn for_qkv(qkv: &Tensor, heads: usize) -> Result<Self> {
        if on_cpu_kernels(qkv) {
            return Ok(AttentionBackend::FusedCpu);
        }
        let (b, s, _) = qkv.dims3()?;
        Ok(AttentionBackend::Chunked {
            query_rows: chunked::query_chunk(b, heads, s, chunked::SCORE_BLOCK_BYTES),
        })
    }
}

/// Non-causal multi-head attention from the fused projection `qkv` `[B, S, 3 H D]` (heads q
/// 0..H, k H..2H, v 2H..3H) to the heads' outputs `[B, S, H D]`, RoPE on q and k when
/// `rotary` is given: the one entry point of every model path, on the backend
/// `AttentionBackend::for_qkv` picks.
pub fn attend(
    qkv: &Tensor,
    heads: usize,
    head_dim: usize,
    rotary: Option<&Rotary>,
) -> Result<Tensor> {
    let backend = AttentionBackend::for_qkv(qkv, heads)?;
    attend_with(backend, qkv, heads, head_dim, rotary)
}

/// `attend` on a given backend (the tests pin one: the chunked backend on the CPU, with
/// small chunks).
pub fn attend_with(
    backend: AttentionBackend,
    qkv: &Tensor,
    heads: usize,
    head_dim: usize,
    rotary: Option<&Rotary>,
) -> Result<Tensor> {
    match backend {
        AttentionBackend::FusedCpu => {
            kernels::attention::attention(qkv, fused_core(heads, head_dim, rotary))
        }
        AttentionBackend::Chunked { query_rows } => {
            chunked::ChunkedAttention::new(heads, head_dim, rotary, query_rows).forward(qkv)
        }
    }
}

/// The fused CPU kernel's attention, for `attend` and for the sublayer node that holds it
/// (`Attention::residual`).
fn fused_core(
    heads: usize,
    head_dim: usize,
    rotary: Option<&Rotary>,
) -> kernels::attention::AttentionCore {
    kernels::attention::AttentionCore {
        heads,
        head_dim,
        rotary: rotary.map(|r| r.tables.clone()),
    }
}

/// The yardstick, not a path any model takes: the heads' outputs `[B, S, H D]` from `qkv`
/// `[B, S, 3 H D]` as the plain composition of candle ops (the whole `[B, H, S, S]` score
/// tensor at once), which the tests and benchmarks compare both backends of `attend` with.
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

/// Multi-head self-attention over all positions (no causal mask, no padding mask), one fused
/// `qkv_proj` whose output heads are q (0..H), k (H..2H), v (2H..3H), then `o_proj`.
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
        let out = attend(&qkv, self.num_heads, self.head_dim, rotary)?;
        self.o_proj.forward(&out)
    }

    /// `rms_norm(x + self.forward(x))`, the block's residual step: on the CPU kernels one
    /// node around the same fused attention kernel as `attend`'s.
    pub fn residual(&self, x: &Tensor, rotary: Option<&Rotary>, eps: f64) -> Result<Tensor> {
        let core = fused_core(self.num_heads, self.head_dim, rotary);
        let parts = (
            &self.qkv_proj,
            kernels::sublayer::Mix::Attention(core),
            &self.o_proj,
        );
        crate::layers::post_norm_residual(x, parts, eps, || self.forward(x, rotary))
    }
}
