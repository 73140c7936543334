//! TRM with a single latent (official `models/recursive_reasoning/trm_singlez.py`, the "single
//! z" row of the TRM paper's ablation table).
//!
//! The same one network as TRM, but no separate answer state: each round refines the latent
//! n times with the input injected (`z <- net(z + x)`), then once without it
//! (`z <- net(z)`), and the heads read z. Only the last round builds a graph (with
//! `gradient = one-step`, only its last two updates). Official names: z = `z_L`,
//! T = `H_cycles`, n = `L_cycles`.

use crate::config::{Gradient, ModelConfig};
use crate::frame::{InnerCarry, ModelFrame};
use crate::layers::{no_grad, BlockShape, ReasoningModule};
use crate::model::{ModelKind, RecursiveModel};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

pub struct TrmSingleZ {
    cfg: ModelConfig,
    frame: ModelFrame,
    /// The single network (`L_level`).
    net: ReasoningModule,
}

impl TrmSingleZ {
    /// `vb` is rooted at the inner model (`model.inner` in official checkpoints).
    pub fn new(vb: &VarBuilder, cfg: &ModelConfig, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let shape = BlockShape::of(cfg, cfg.mlp_t);
        Ok(TrmSingleZ {
            cfg: cfg.clone(),
            frame: ModelFrame::new(vb, cfg, ModelKind::TrmSingleZ, device)?,
            net: ReasoningModule::new(&vb.pp("L_level"), cfg.L_layers, shape)?,
        })
    }

    /// `n` updates of z with x injected.
    fn injected_updates(&self, mut z: Tensor, x: &Tensor, n: usize) -> Result<Tensor> {
        for _ in 0..n {
            z = self.net.forward(&z, x, self.frame.rotary.as_ref())?;
        }
        Ok(z)
    }

    /// The update without x that closes a round (the answer update of TRM).
    fn closing_update(&self, z: Tensor) -> Result<Tensor> {
        self.net.blocks(z, self.frame.rotary.as_ref())
    }

    fn round(&self, z: Tensor, x: &Tensor) -> Result<Tensor> {
        let z = self.injected_updates(z, x, self.cfg.L_cycles)?;
        self.closing_update(z)
    }
}

impl RecursiveModel for TrmSingleZ {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn frame(&self) -> &ModelFrame {
        &self.frame
    }

    fn supervision_step(&self, carry: &InnerCarry, x: &Tensor) -> Result<InnerCarry> {
        let mut z = carry.output().detach();
        let frozen_x = x.detach();
        for _ in 0..self.cfg.H_cycles - 1 {
            z = no_grad(|| self.round(z, &frozen_x))?;
        }
        let z = match self.cfg.gradient(ModelKind::TrmSingleZ) {
            Gradient::LastCycle => self.round(z, x)?,
            Gradient::OneStep => {
                let n = self.cfg.L_cycles;
                let z = no_grad(|| self.injected_updates(z, &frozen_x, n - 1))?;
                self.closing_update(self.injected_updates(z, x, 1)?)?
            }
        };
        Ok(InnerCarry::new(
            ModelKind::TrmSingleZ.state_names(),
            vec![z],
        ))
    }

    fn levels(&self) -> Vec<&ReasoningModule> {
        vec![&self.net]
    }

    fn kind(&self) -> ModelKind {
        ModelKind::TrmSingleZ
    }
}
