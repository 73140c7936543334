//! What every model shares around its recursion: token and puzzle embeddings (the input
//! `x`), the initial states, the rotary tables, and the two heads.

use crate::attention::Rotary;
use crate::config::ModelConfig;
use crate::layers::{at_least_f32, Linear};
use crate::model::{initial_state_buffer, ModelKind};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

/// The recurrent states under their official names (`ModelKind::state_names`): in TRM and
/// HRM `z_H` is TRM's answer y (HRM's slow state) and `z_L` TRM's latent z (HRM's fast
/// state). Shapes `[batch, prefix + seq_len, hidden]`. The heads read the first.
#[derive(Debug, Clone)]
pub struct InnerCarry {
    pub names: &'static [&'static str],
    pub states: Vec<Tensor>,
}

impl InnerCarry {
    pub fn new(names: &'static [&'static str], states: Vec<Tensor>) -> Self {
        debug_assert_eq!(names.len(), states.len());
        InnerCarry { names, states }
    }

    /// The state the heads read.
    pub fn output(&self) -> &Tensor {
        &self.states[0]
    }

    /// The same states without their graphs.
    pub fn detach(&self) -> InnerCarry {
        InnerCarry::new(self.names, self.states.iter().map(Tensor::detach).collect())
    }

    /// The states as `[a, b]`, for models with exactly two.
    pub fn pair(&self) -> Result<(Tensor, Tensor)> {
        match self.states.as_slice() {
            [a, b] => Ok((a.clone(), b.clone())),
            _ => Err(candle_core::Error::msg(format!(
                "expected two states, the carry holds {:?}",
                self.names
            ))),
        }
    }
}

/// What both models share around their recursion (everything but the reasoning modules).
#[derive(Debug, Clone)]
pub struct ModelFrame {
    embed_tokens: Tensor,
    lm_head: Linear,
    q_head: Linear,
    /// Initial states (buffers, not trained), one per state of `state_names`.
    inits: Vec<Tensor>,
    state_names: &'static [&'static str],
    pub rotary: Option<Rotary>,
    prefix_len: usize,
    hidden: usize,
    puzzle_emb_ndim: usize,
    /// `forward_dtype`: the embeddings and states are cast to it, so every layer after runs
    /// in it (the official `CastedEmbedding`, `CastedLinear`).
    dtype: DType,
}

impl ModelFrame {
    /// `vb` is rooted at the inner model (`model.inner`).
    pub fn new(
        vb: &VarBuilder,
        cfg: &ModelConfig,
        kind: ModelKind,
        device: &Device,
    ) -> Result<Self> {
        let d = cfg.hidden_size;
        let rotary = if cfg.uses_rope() {
            Some(Rotary::new(
                cfg.head_dim(),
                cfg.full_seq_len(),
                cfg.rope_theta,
                device,
            )?)
        } else {
            None
        };
        Ok(ModelFrame {
            embed_tokens: vb
                .pp("embed_tokens")
                .get((cfg.vocab_size, d), "embedding_weight")?,
            lm_head: Linear::new(&vb.pp("lm_head"), d, cfg.vocab_size, false)?,
            q_head: Linear::new(&vb.pp("q_head"), d, 2, true)?,
            inits: kind
                .state_names()
                .iter()
                .map(|state| vb.get(d, &initial_state_buffer(state)))
                .collect::<Result<_>>()?,
            state_names: kind.state_names(),
            rotary,
            prefix_len: cfg.prefix_len(),
            hidden: d,
            puzzle_emb_ndim: cfg.puzzle_emb_ndim,
            dtype: cfg.compute_dtype().map_err(candle_core::Error::msg)?,
        })
    }

    pub fn prefix_len(&self) -> usize {
        self.prefix_len
    }

    /// `x = sqrt(D) * cat(prefix, embed_tokens[inputs])`, where the prefix is the puzzle
    /// embedding row zero-padded to `prefix_len * D` (so in TRM only position 0 carries it).
    /// `puzzle_rows` is `[batch, puzzle_emb_ndim]`.
    pub fn input_embeddings(&self, inputs: &Tensor, puzzle_rows: &Tensor) -> Result<Tensor> {
        let (b, s) = inputs.dims2()?;
        let tokens = self
            .embed_tokens
            .index_select(&inputs.flatten_all()?, 0)?
            .reshape((b, s, self.hidden))?
            .to_dtype(self.dtype)?;
        let puzzle_rows = &puzzle_rows.to_dtype(self.dtype)?;
        let mut parts = vec![tokens];
        if self.prefix_len > 0 {
            let pad = self.prefix_len * self.hidden - self.puzzle_emb_ndim;
            let prefix = if pad > 0 {
                let zeros = Tensor::zeros((b, pad), puzzle_rows.dtype(), puzzle_rows.device())?;
                Tensor::cat(&[puzzle_rows, &zeros], 1)?
            } else {
                puzzle_rows.clone()
            };
            parts.insert(0, prefix.reshape((b, self.prefix_len, self.hidden))?);
        }
        Tensor::cat(&parts, 1)? * (self.hidden as f64).sqrt()
    }

    /// Logits over the grid positions (prefix dropped, in the forward dtype) and the halt /
    /// continue logits read from prefix position 0 (in f32 at least, as the official `q_head`).
    pub fn heads(&self, z_h: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let s = z_h.dim(1)?;
        let logits =
            self.lm_head
                .forward(&z_h.narrow(1, self.prefix_len, s - self.prefix_len)?)?;
        let q = self
            .q_head
            .forward(&z_h.narrow(1, 0, 1)?.squeeze(1)?)?
            .to_dtype(at_least_f32(self.dtype))?;
        Ok((
            logits,
            q.narrow(1, 0, 1)?.squeeze(1)?,
            q.narrow(1, 1, 1)?.squeeze(1)?,
        ))
    }

    /// Fresh states broadcast over every position, for the given batch size.
    pub fn initial_carry(&self, batch: usize, seq: usize) -> Result<InnerCarry> {
        let shape = (batch, seq, self.hidden);
        let states = self
            .inits
            .iter()
            .map(|init| {
                init.to_dtype(self.dtype)?
                    .reshape((1, 1, self.hidden))?
                    .broadcast_as(shape)?
                    .contiguous()
            })
            .collect::<Result<_>>()?;
        Ok(InnerCarry::new(self.state_names, states))
    }
}
