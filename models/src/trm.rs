//! The Tiny Recursive Model (Jolicoeur-Martineau 2025; official `models/recursive_reasoning/trm.py`).
//!
//! One small network `net` (official name `L_level`, 2 post-norm blocks) serves two jobs: it
//! refines the latent z with the input injected (`z <- net(z, y + x)`, n times), then the
//! answer y without the input (`y <- net(y, z)`). A supervision step runs T such rounds; only
//! the last builds a graph (with `gradient = one-step`, an ablation: only its last latent and
//! answer updates). Official names: y = `z_H`, z = `z_L`, T = `H_cycles`, n = `L_cycles`.

use crate::config::{Gradient, ModelConfig};
use crate::frame::{InnerCarry, ModelFrame};
use crate::layers::{no_grad, BlockShape, ReasoningModule};
use crate::model::{ModelKind, RecursiveModel};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

pub struct Trm {
    cfg: ModelConfig,
    frame: ModelFrame,
    /// The single network (`L_level`).
    net: ReasoningModule,
}

impl Trm {
    /// `vb` is rooted at the inner model (`model.inner` in official checkpoints).
    pub fn new(vb: &VarBuilder, cfg: &ModelConfig, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let shape = BlockShape::of(cfg, cfg.mlp_t);
        Ok(Trm {
            cfg: cfg.clone(),
            frame: ModelFrame::new(vb, cfg, ModelKind::Trm, device)?,
            net: ReasoningModule::new(&vb.pp("L_level"), cfg.L_layers, shape)?,
        })
    }

    /// One round: n latent updates with x injected, then one answer update without x.
    fn recursion(&self, y: Tensor, z: Tensor, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let z = self.latent_updates(&y, z, x, self.cfg.L_cycles)?;
        let y = self.net.forward(&y, &z, self.frame.rotary.as_ref())?;
        Ok((y, z))
    }

    fn latent_updates(&self, y: &Tensor, mut z: Tensor, x: &Tensor, n: usize) -> Result<Tensor> {
        // y does not change during the latent updates, so neither does their injection.
        let injection = (y + x)?;
        for _ in 0..n {
            z = self
                .net
                .forward(&z, &injection, self.frame.rotary.as_ref())?;
        }
        Ok(z)
    }
}

impl RecursiveModel for Trm {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn frame(&self) -> &ModelFrame {
        &self.frame
    }

    fn supervision_step(&self, carry: &InnerCarry, x: &Tensor) -> Result<InnerCarry> {
        let (mut y, mut z) = carry.detach().pair()?;
        // T - 1 rounds without a graph (the official `torch.no_grad()` block): the backward
        // pass reaches the last round only.
        let frozen_x = x.detach();
        for _ in 0..self.cfg.H_cycles - 1 {
            (y, z) = no_grad(|| self.recursion(y, z, &frozen_x))?;
        }
        let (y, z) = match self.cfg.gradient(ModelKind::Trm) {
            Gradient::LastCycle => self.recursion(y, z, x)?,
            Gradient::OneStep => {
                let n = self.cfg.L_cycles;
                let z = no_grad(|| self.latent_updates(&y, z, &frozen_x, n - 1))?;
                let z = self.latent_updates(&y, z, x, 1)?;
                (self.net.forward(&y, &z, self.frame.rotary.as_ref())?, z)
            }
        };
        Ok(InnerCarry::new(ModelKind::Trm.state_names(), vec![y, z]))
    }

    fn levels(&self) -> Vec<&ReasoningModule> {
        vec![&self.net]
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Trm
    }
}
