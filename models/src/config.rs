//! Model configuration under the official field names, so an official `config.json` /
//! yaml arch section deserialises unchanged. Unknown keys are ignored here, as pydantic does
//! for official files; the harness's own configs check their keys against `field_names`.

use serde::{Deserialize, Serialize};

#[allow(non_snake_case)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub batch_size: usize,
    pub seq_len: usize,
    pub puzzle_emb_ndim: usize,
    pub num_puzzle_identifiers: usize,
    pub vocab_size: usize,
    /// T in TRM (rounds), the slow H cycles in HRM.
    pub H_cycles: usize,
    /// n in TRM (latent updates per round), the fast L cycles in HRM; the transformer
    /// baseline has none (its official config leaves it out: 1).
    #[serde(default = "one")]
    pub L_cycles: usize,
    /// HRM's H-level depth; TRM ignores it.
    #[serde(default)]
    pub H_layers: usize,
    /// TRM's network depth, HRM's L-level depth; the transformer baseline ignores it.
    #[serde(default)]
    pub L_layers: usize,
    pub hidden_size: usize,
    pub expansion: f64,
    pub num_heads: usize,
    /// `rope` or `none` (`learned` is not used by any official command).
    pub pos_encodings: String,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    pub halt_max_steps: usize,
    pub halt_exploration_prob: f64,
    #[serde(default = "default_dtype")]
    pub forward_dtype: String,
    /// TRM-MLP: mix tokens with a sequence-axis SwiGLU instead of attention.
    #[serde(default)]
    pub mlp_t: bool,
    /// Prefix positions reserved for the puzzle embedding; HRM derives it from the width.
    #[serde(default)]
    pub puzzle_emb_len: Option<usize>,
    /// Train the halt logit only, with no Q-learning continue target. Official in TRM
    /// (default on there); honoured by HRM too as an ablation (default off there).
    #[serde(default)]
    pub no_ACT_continue: Option<bool>,
    /// Which part of a supervision step's recursion the backward pass reaches (not an
    /// official key; an ablation switch): `last-cycle` (TRM's default: the whole last round)
    /// or `one-step` (HRM's default: only the last update of each state). See `Gradient`.
    #[serde(default)]
    pub gradient: Option<String>,
}

/// How much of a supervision step's recursion builds a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gradient {
    /// The whole last outer cycle: TRM's n latent updates and its answer update; HRM's last
    /// `L_cycles` L updates and its last H update.
    LastCycle,
    /// Only the last update of each state (HRM's "one-step gradient" approximation).
    OneStep,
}

fn one() -> usize {
    1
}
fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10000.0
}
fn default_dtype() -> String {
    "bfloat16".into()
}

impl ModelConfig {
    /// The gradient's reach: the configured one, else the family's own.
    pub fn gradient(&self, kind: crate::model::ModelKind) -> Gradient {
        match (self.gradient.as_deref(), kind) {
            (Some("one-step"), _) | (None, crate::model::ModelKind::Hrm) => Gradient::OneStep,
            _ => Gradient::LastCycle,
        }
    }

    /// Whether the halting head learns a continue logit: the configured switch, else the
    /// model's own (HRM: yes; TRM, its variants and the transformer baseline: no).
    pub fn learns_continue(&self, kind: crate::model::ModelKind) -> bool {
        let official_default = kind != crate::model::ModelKind::Hrm;
        !self.no_ACT_continue.unwrap_or(official_default)
    }

    /// Whether training learns the continue logit: only with a next step to bootstrap from
    /// (`halt_max_steps > 1`), as the official loop.
    pub fn trains_continue(&self, kind: crate::model::ModelKind) -> bool {
        self.learns_continue(kind) && self.halt_max_steps > 1
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Prefix length: the configured value, else `ceil(puzzle_emb_ndim / hidden_size)` as HRM.
    pub fn prefix_len(&self) -> usize {
        self.puzzle_emb_len
            .unwrap_or_else(|| self.puzzle_emb_ndim.div_ceil(self.hidden_size))
    }

    pub fn full_seq_len(&self) -> usize {
        self.seq_len + self.prefix_len()
    }

    pub fn uses_rope(&self) -> bool {
        self.pos_encodings == "rope"
    }

    /// The dtype of activations and matmuls (`forward_dtype`); weights, optimiser state and
    /// RMSNorm statistics stay f32, stablemax f64, as the official code.
    pub fn compute_dtype(&self) -> Result<candle_core::DType, String> {
        match self.forward_dtype.as_str() {
            "float32" => Ok(candle_core::DType::F32),
            "bfloat16" => Ok(candle_core::DType::BF16),
            "float64" => Ok(candle_core::DType::F64),
            other => Err(format!(
                "forward_dtype {other:?} is not supported (float32, bfloat16, or float64 for gradient checks)"
            )),
        }
    }

    /// Checks the combinations the code cannot run, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0
            || self.num_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_heads)
        {
            return Err(format!(
                "hidden_size {} must be a positive multiple of num_heads {}",
                self.hidden_size, self.num_heads
            ));
        }
        if self.uses_rope() && !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "rope needs an even head_dim, got {}",
                self.head_dim()
            ));
        }
        if !matches!(self.pos_encodings.as_str(), "rope" | "none") {
            return Err(format!(
                "pos_encodings {:?} is not supported (rope or none)",
                self.pos_encodings
            ));
        }
        if self.puzzle_emb_ndim > self.prefix_len() * self.hidden_size {
            return Err(format!(
                "puzzle_emb_ndim {} does not fit in {} prefix positions of width {}",
                self.puzzle_emb_ndim,
                self.prefix_len(),
                self.hidden_size
            ));
        }
        if self.H_cycles == 0 || self.L_cycles == 0 || self.halt_max_steps == 0 {
            return Err("H_cycles, L_cycles and halt_max_steps must be at least 1".into());
        }
        if let Some(g) = &self.gradient {
            if !matches!(g.as_str(), "last-cycle" | "one-step") {
                return Err(format!(
                    "gradient {g:?} is not known (last-cycle or one-step)"
                ));
            }
        }
        self.compute_dtype()?;
        Ok(())
    }
}

impl ModelConfig {
    /// Every field name, as a config file spells it (one list, derived from the struct).
    pub fn field_names() -> Vec<String> {
        let example = ModelConfig::sudoku_paper(crate::model::ModelKind::Trm, false, 64);
        match serde_json::to_value(example) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => unreachable!("a struct serialises to a JSON object"),
        }
    }

    /// The official Sudoku-Extreme recipe's architecture (specs: TRM `trm.yaml` with T = 3,
    /// n = 6, 2 layers, 16 prefix positions; HRM `hrm_v1.yaml` with H = L = 2 cycles, 4 + 4
    /// layers), at width `hidden` (512 in the papers).
    pub fn sudoku_paper(kind: crate::model::ModelKind, mlp_t: bool, hidden: usize) -> Self {
        let trm = kind == crate::model::ModelKind::Trm;
        ModelConfig {
            batch_size: 768,
            seq_len: 81,
            puzzle_emb_ndim: hidden,
            num_puzzle_identifiers: 1,
            vocab_size: 11,
            H_cycles: if trm { 3 } else { 2 },
            L_cycles: if trm { 6 } else { 2 },
            H_layers: if trm { 0 } else { 4 },
            L_layers: if trm { 2 } else { 4 },
            hidden_size: hidden,
            expansion: 4.0,
            num_heads: (hidden / 64).max(1),
            pos_encodings: if mlp_t { "none".into() } else { "rope".into() },
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            halt_max_steps: 16,
            halt_exploration_prob: 0.1,
            forward_dtype: "bfloat16".into(),
            mlp_t,
            puzzle_emb_len: trm.then_some(16),
            no_ACT_continue: trm.then_some(true),
            gradient: None,
        }
    }
}
