//! Attention on any device and dtype (CUDA, bf16) that never holds the whole `[B, H, S, S]`
//! score tensor: queries go in chunks of rows, forward and backward, and the backward
//! recomputes each chunk's probabilities instead of keeping them (as flash attention does).
//! Autograd sees one custom op from `qkv` to the heads' outputs; inside it, everything is
//! plain candle ops on detached tensors, so each chunk's block is freed before the next.
//!
//! At the paper shape (batch 768, 8 heads, 916 positions) one f32 `[B, H, S, S]` tensor is
//! 20.6 GB; a chunk of `query_chunk` rows keeps the block near `SCORE_BLOCK_BYTES`.
//!
//! Models reach it only through `attention::attend` (the backend off the CPU kernels).

use super::{apply_rotary, apply_rotary_transposed, softmax_last_dim, Rotary};
use crate::layers::at_least_f32;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

/// The target size of one chunk's score block (f32), forward or backward.
pub const SCORE_BLOCK_BYTES: usize = 1 << 30;

/// Query rows per chunk so that `[B, H, rows, S]` f32 scores stay within `block_bytes`.
pub fn query_chunk(batch: usize, heads: usize, seq: usize, block_bytes: usize) -> usize {
    let row_bytes = batch * heads * seq * 4;
    (block_bytes / row_bytes.max(1)).clamp(1, seq.max(1))
}

/// The op: `qkv` `[B, S, 3 H D]` to `[B, S, H D]`.
#[derive(Clone)]
pub struct ChunkedAttention {
    pub heads: usize,
    pub head_dim: usize,
    /// The rotary tables, or none.
    pub rotary: Option<Rotary>,
    /// Query rows per chunk.
    pub chunk: usize,
}

impl ChunkedAttention {
    pub fn new(heads: usize, head_dim: usize, rotary: Option<&Rotary>, chunk: usize) -> Self {
        ChunkedAttention {
            heads,
            head_dim,
            rotary: rotary.cloned(),
            chunk: chunk.max(1),
        }
    }

    pub fn forward(&self, qkv: &Tensor) -> Result<Tensor> {
        let out = self.outputs(&qkv.detach())?;
        qkv.apply_op2(&out, self.clone())
    }

    /// `(cos, sin)` as `[1, 1, S, D]` in `dtype` (f32 or f64), for `[B, H, S, D]` heads.
    fn tables(&self, seq: usize, dtype: DType) -> Result<Option<(Tensor, Tensor)>> {
        self.rotary
            .as_ref()
            .map(|r| r.broadcast_tables(seq, 2, dtype))
            .transpose()
    }

    /// q (rotated), k (rotated), v as `[B, H, S, D]` in the input's dtype; the rotation
    /// in f32 at least, as the official code.
    fn heads_of(&self, qkv: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, s, _) = qkv.dims3()?;
        let (h, hd) = (self.heads, self.head_dim);
        let split = qkv.reshape((b, s, 3 * h, hd))?.transpose(1, 2)?;
        let part = |i: usize| split.narrow(1, i * h, h)?.contiguous();
        let (mut q, mut k, v) = (part(0)?, part(1)?, part(2)?);
        if let Some((cos, sin)) = self.tables(s, at_least_f32(qkv.dtype()))? {
            q = apply_rotary(&q, &cos, &sin)?;
            k = apply_rotary(&k, &cos, &sin)?;
        }
        Ok((q, k, v))
    }

    /// Probabilities of query rows `start..start + len`: `[B, H, len, S]`, softmax in f32
    /// (as flash attention accumulates bf16 scores).
    fn probabilities(&self, q: &Tensor, k: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = q.narrow(2, start, len)?.matmul(&k.t()?)?;
        softmax_last_dim(&(scores.to_dtype(at_least_f32(q.dtype()))? * scale)?)
    }

    fn chunks(&self, seq: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..seq)
            .step_by(self.chunk)
            .map(move |start| (start, self.chunk.min(seq - start)))
    }

    /// The heads' outputs of detached `qkv`.
    fn outputs(&self, qkv: &Tensor) -> Result<Tensor> {
        let (b, s, _) = qkv.dims3()?;
        let (q, k, v) = self.heads_of(qkv)?;
        let parts = self
            .chunks(s)
            .map(|(start, len)| {
                self.probabilities(&q, &k, start, len)?
                    .to_dtype(v.dtype())?
                    .matmul(&v)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 2)?
            .transpose(1, 2)?
            .reshape((b, s, self.heads * self.head_dim))
    }

    /// The gradient of `qkv` given the outputs' gradient, chunk by chunk:
    /// `dV = P^T dO`, `dS = P (dO V^T - rowsum(dO O))`, `dQ = dS K`, `dK = dS^T Q` (scaled),
    /// then the rotation's transpose on dQ and dK.
    fn qkv_gradient(&self, qkv: &Tensor, out: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (b, s, _) = qkv.dims3()?;
        let (h, hd) = (self.heads, self.head_dim);
        let (dtype, work) = (qkv.dtype(), at_least_f32(qkv.dtype()));
        let (q, k, v) = self.heads_of(qkv)?;
        let per_head = |t: &Tensor| -> Result<Tensor> {
            t.reshape((b, s, h, hd))?
                .transpose(1, 2)?
                .to_dtype(work)?
                .contiguous()
        };
        let (d_out, o) = (per_head(grad)?, per_head(out)?);
        let delta = (&d_out * &o)?.sum_keepdim(D::Minus1)?;
        let widen = |t: &Tensor| t.to_dtype(work);
        let (q32, k32, v32) = (widen(&q)?, widen(&k)?, widen(&v)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut dq = Vec::new();
        let mut dk = k32.zeros_like()?;
        let mut dv = v32.zeros_like()?;
        for (start, len) in self.chunks(s) {
            let p = self.probabilities(&q, &k, start, len)?;
            let d_out_c = d_out.narrow(2, start, len)?;
            dv = (dv + p.t()?.matmul(&d_out_c)?)?;
            let d_p = d_out_c.matmul(&v32.t()?)?;
            let d_s = (p * d_p.broadcast_sub(&delta.narrow(2, start, len)?)?)?;
            dq.push((d_s.matmul(&k32)? * scale)?);
            dk = (dk + (d_s.t()?.matmul(&q32.narrow(2, start, len)?)? * scale)?)?;
        }
        let mut dq = Tensor::cat(&dq, 2)?;
        if let Some((cos, sin)) = self.tables(s, work)? {
            dq = apply_rotary_transposed(&dq, &cos, &sin)?;
            dk = apply_rotary_transposed(&dk, &cos, &sin)?;
        }
        Tensor::cat(&[&dq, &dk, &dv], 1)?
            .transpose(1, 2)?
            .reshape((b, s, 3 * h * hd))?
            .to_dtype(dtype)
    }
}

/// The op's forward only hands on the outputs computed beside it (`outputs`, without a graph);
/// its reason to exist is the backward.
impl CustomOp2 for ChunkedAttention {
    fn name(&self) -> &'static str {
        "chunked-attention"
    }

    fn cpu_fwd(
        &self,
        _qkv: &CpuStorage,
        _qkv_layout: &Layout,
        out: &CpuStorage,
        out_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((out.try_clone(out_layout)?, out_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _qkv: &candle_core::CudaStorage,
        _qkv_layout: &Layout,
        out: &candle_core::CudaStorage,
        out_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((out.try_clone(out_layout)?, out_layout.shape().clone()))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        out: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d_qkv = self.qkv_gradient(&qkv.detach(), &out.detach(), &grad.detach())?;
        Ok((Some(d_qkv), None))
    }
}

#[cfg(test)]
mod tests {
    use super::super::attention_reference;
    use super::*;
    use candle_core::{Device, Var};

    fn values(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0 - 1.0)
            .collect()
    }

    /// Outputs and `qkv` gradients of the chunked op and the plain composition.
    fn both(chunk: usize, rotary: bool, dtype: DType) -> [(Vec<f64>, Vec<f64>); 2] {
        let (b, s, h, hd) = (2, 7, 2, 4);
        let dev = Device::Cpu;
        let qkv = Var::from_tensor(
            &Tensor::from_vec(values(b * s * 3 * h * hd, 1), (b, s, 3 * h * hd), &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let rot = Rotary::new(hd, s, 10000.0, &dev).unwrap();
        let rot = rotary.then_some(&rot);
        let weights = Tensor::from_vec(values(b * s * h * hd, 5), (b, s, h * hd), &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let run = |out: Tensor| {
            let loss = (out.to_dtype(DType::F64).unwrap() * weights.to_dtype(DType::F64).unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            let grad = loss
                .backward()
                .unwrap()
                .get(qkv.as_tensor())
                .unwrap()
                .clone();
            let flat = |t: &Tensor| {
                t.to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            };
            (flat(&out), flat(&grad))
        };
        [
            run(ChunkedAttention::new(h, hd, rot, chunk)
                .forward(qkv.as_tensor())
                .unwrap()),
            run(attention_reference(qkv.as_tensor(), h, hd, rot).unwrap()),
        ]
    }

    #[test]
    fn chunks_give_the_plain_outputs_and_gradients() {
        for chunk in [1, 3, 7, 50] {
            for rotary in [false, true] {
                let [(out, grad), (out_ref, grad_ref)] = both(chunk, rotary, DType::F64);
                for (a, b) in out.iter().zip(&out_ref).chain(grad.iter().zip(&grad_ref)) {
                    assert!(
                        (a - b).abs() < 1e-12,
                        "chunk {chunk}, rotary {rotary}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_block_of_a_chunk_fits_its_budget() {
        // The paper shape: 768 x 8 heads x 916 positions, one f32 row of scores 22.5 MB.
        let rows = query_chunk(768, 8, 916, SCORE_BLOCK_BYTES);
        assert_eq!(rows, 47);
        assert!(768 * 8 * rows * 916 * 4 <= SCORE_BLOCK_BYTES);
        assert_eq!(query_chunk(2, 2, 7, SCORE_BLOCK_BYTES), 7);
        assert_eq!(query_chunk(768, 8, 916, 1), 1);
    }
}
