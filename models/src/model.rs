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
    /// HRM (and TRM with `no_ACT_continue = false`): halt when q_halt > q_continue and learn
    /// q_continue from a bootstrapped target; otherwise halt when q_halt > 0.
    fn learns_continue(&self) -> bool;
    /// The model's own halting rule on one slot's logits (before the step cap and the
    /// exploration floor): `q_halt > q_continue` when it learns q_continue, else `q_halt > 0`.
    /// Training and evaluation both ask this, so they cannot disagree.
    fn halts(&self, q_halt: f32, q_continue: f32) -> bool {
        self.halt_margin(q_halt, q_continue) > 0.0
    }
    /// How far past its halting threshold the model is (`q_halt - q_continue`, else
    /// `q_halt`): its confidence that the answer is done, comparable across steps.
    fn halt_margin(&self, q_halt: f32, q_continue: f32) -> f32 {
        if self.learns_continue() {
            q_halt - q_continue
        } else {
            q_halt
        }
    }
    /// The recurrent modules, low level first (TRM: its one net; HRM: L then H), for
    /// layer-level comparisons with the official code.
    fn levels(&self) -> Vec<&crate::layers::ReasoningModule>;
}

/// Which model a configuration describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelKind {
    Trm,
    Hrm,
}
