//! The interface the ACT wrapper needs from either model.

use crate::config::ModelConfig;
use crate::frame::{InnerCarry, ModelFrame};
use candle_core::{Result, Tensor};

pub trait RecursiveModel: Send + Sync {
    fn config(&self) -> &ModelConfig;
    fn frame(&self) -> &ModelFrame;
    /// One supervision step of the recursion from `carry` with input embedding `x`; the
    /// returned states carry the graph of the part that trains.
    fn supervision_step(&self, carry: &InnerCarry, x: &Tensor) -> Result<InnerCarry>;
    fn kind(&self) -> ModelKind;
    /// HRM (and TRM with `no_ACT_continue = false`): learn q_continue from a bootstrapped
    /// target.
    fn learns_continue(&self) -> bool {
        self.config().learns_continue(self.kind())
    }
    /// Whether halting compares q_halt with q_continue (else with 0): where q_continue is
    /// learnt, and always in the transformer baseline (whose official ACT compares them even
    /// though nothing trains q_continue).
    fn halts_against_continue(&self) -> bool {
        self.learns_continue() || self.kind() == ModelKind::Transformer
    }
    /// The model's own halting rule on one slot's logits (before the step cap and the
    /// exploration floor): `q_halt > q_continue` or `q_halt > 0` (`halts_against_continue`).
    /// Training and evaluation both ask this, so they cannot disagree.
    fn halts(&self, q_halt: f32, q_continue: f32) -> bool {
        self.halt_margin(q_halt, q_continue) > 0.0
    }
    /// How far past its halting threshold the model is (`q_halt - q_continue`, else
    /// `q_halt`): its confidence that the answer is done, comparable across steps.
    fn halt_margin(&self, q_halt: f32, q_continue: f32) -> f32 {
        if self.halts_against_continue() {
            q_halt - q_continue
        } else {
            q_halt
        }
    }
    /// The recurrent modules, low level first (TRM: its one net; HRM: L then H), for
    /// layer-level comparisons with the official code.
    fn levels(&self) -> Vec<&crate::layers::ReasoningModule>;
}

/// Which model a configuration describes: the two papers' models and the official
/// repository's ablation variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelKind {
    Trm,
    Hrm,
    /// One latent and no separate answer (official `trm_singlez.py`).
    TrmSingleZ,
    /// Six latents whose sum is the low level's state (official `trm_hier6.py`).
    TrmHier6,
    /// No recursion inside a step: one pass of `H_layers` blocks per supervision step
    /// (official `transformers_baseline.py`).
    Transformer,
}

/// One reasoning module: its official name, depth, and whether it mixes tokens with a
/// sequence-axis MLP (TRM-MLP) instead of attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub name: &'static str,
    pub layers: usize,
    pub sequence_mlp: bool,
}

impl ModelKind {
    /// The recurrent states in the carry's order (the official names); the heads read the
    /// first.
    pub fn state_names(self) -> &'static [&'static str] {
        match self {
            ModelKind::Trm | ModelKind::Hrm => &["z_H", "z_L"],
            ModelKind::TrmSingleZ => &["z_L"],
            ModelKind::TrmHier6 => &["z_H", "z_L1", "z_L2", "z_L3", "z_L4", "z_L5", "z_L6"],
            ModelKind::Transformer => &["z_H"],
        }
    }

    /// The reasoning modules, in the official state dict's order.
    pub fn levels(self, cfg: &ModelConfig) -> Vec<Level> {
        let level = |name, layers, sequence_mlp| Level {
            name,
            layers,
            sequence_mlp,
        };
        match self {
            ModelKind::Trm | ModelKind::TrmSingleZ | ModelKind::TrmHier6 => {
                vec![level("L_level", cfg.L_layers, cfg.mlp_t)]
            }
            ModelKind::Hrm => vec![
                level("H_level", cfg.H_layers, false),
                level("L_level", cfg.L_layers, false),
            ],
            ModelKind::Transformer => vec![level("H_level", cfg.H_layers, false)],
        }
    }

    /// Whether this is one of TRM's models (one shared network, TRM's recipe defaults).
    pub fn is_trm(self) -> bool {
        matches!(
            self,
            ModelKind::Trm | ModelKind::TrmSingleZ | ModelKind::TrmHier6
        )
    }
}

/// The buffer a state starts from: `z_H` from `H_init`, `z_L3` from `L3_init`.
pub fn initial_state_buffer(state: &str) -> String {
    format!("{}_init", state.trim_start_matches("z_"))
}
