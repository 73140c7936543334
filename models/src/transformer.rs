//! The transformer baseline (official `models/recursive_reasoning/transformers_baseline.py`,
//! "HRM ACT V2"): the "no recursion" control.
//!
//! No levels and no cycles: a supervision step is one pass of `H_layers` post-norm blocks
//! over the state with the input injected (`z <- H(z + x)`), all of it with a graph. The ACT
//! wrapper, heads and loss are the others'; its official halting rule compares q_halt with
//! q_continue although nothing trains q_continue (`compute_target_q` is off in the loss
//! head), which `RecursiveModel::halts_against_continue` keeps. Official name: z = `z_H`.

use crate::config::ModelConfig;
use crate::frame::{InnerCarry, ModelFrame};
use crate::layers::{BlockShape, ReasoningModule};
use crate::model::{ModelKind, RecursiveModel};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

pub struct Transformer {
    cfg: ModelConfig,
    frame: ModelFrame,
    /// The stack of blocks (`H_level`).
    stack: ReasoningModule,
}

impl Transformer {
    /// `vb` is rooted at the inner model (`model.inner` in official checkpoints).
    pub fn new(vb: &VarBuilder, cfg: &ModelConfig, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        if cfg.H_layers == 0 || cfg.mlp_t {
            return Err(candle_core::Error::msg(
                "transformer: needs H_layers >= 1 attention blocks (mlp_t is TRM-MLP's)",
            ));
        }
        Ok(Transformer {
            cfg: cfg.clone(),
            frame: ModelFrame::new(vb, cfg, ModelKind::Transformer, device)?,
            stack: ReasoningModule::new(
                &vb.pp("H_level"),
                cfg.H_layers,
                BlockShape::of(cfg, false),
            )?,
        })
    }
}

impl RecursiveModel for Transformer {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn frame(&self) -> &ModelFrame {
        &self.frame
    }

    fn supervision_step(&self, carry: &InnerCarry, x: &Tensor) -> Result<InnerCarry> {
        let z = self
            .stack
            .forward(&carry.output().detach(), x, self.frame.rotary.as_ref())?;
        Ok(InnerCarry::new(
            ModelKind::Transformer.state_names(),
            vec![z],
        ))
    }

    fn levels(&self) -> Vec<&ReasoningModule> {
        vec![&self.stack]
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Transformer
    }
}
