//! TRM with six latents (official `models/recursive_reasoning/trm_hier6.py`, the "more
//! latents" row of the TRM paper's ablation table).
//!
//! As TRM, but the latent is six states whose sum is what the network reads: latent update i
//! of a round replaces state i with `net(sum, y + x)`, and the answer update reads the sum
//! (`y <- net(y, sum)`). Only the last round builds a graph (with `gradient = one-step`, only
//! its last latent and answer updates). Official names: y = `z_H`, the latents
//! `z_L1..z_L6` (`z_L[0..5]` in the loop), T = `H_cycles`, n = `L_cycles` (at most 6:
//! update i writes latent i).

use crate::config::{Gradient, ModelConfig};
use crate::frame::{InnerCarry, ModelFrame};
use crate::layers::{no_grad, BlockShape, ReasoningModule};
use crate::model::{ModelKind, RecursiveModel};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

const LATENTS: usize = 6;

pub struct TrmHier6 {
    cfg: ModelConfig,
    frame: ModelFrame,
    /// The single network (`L_level`).
    net: ReasoningModule,
}

impl TrmHier6 {
    /// `vb` is rooted at the inner model (`model.inner` in official checkpoints).
    pub fn new(vb: &VarBuilder, cfg: &ModelConfig, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        if cfg.L_cycles > LATENTS {
            return Err(candle_core::Error::msg(format!(
                "trm-hier6: L_cycles {} exceeds its {LATENTS} latents (update i writes latent i)",
                cfg.L_cycles
            )));
        }
        let shape = BlockShape::of(cfg, cfg.mlp_t);
        Ok(TrmHier6 {
            cfg: cfg.clone(),
            frame: ModelFrame::new(vb, cfg, ModelKind::TrmHier6, device)?,
            net: ReasoningModule::new(&vb.pp("L_level"), cfg.L_layers, shape)?,
        })
    }

    /// `z_L[0] + ... + z_L[5]`, summed left to right as the official code.
    fn sum(latents: &[Tensor]) -> Result<Tensor> {
        latents[1..]
            .iter()
            .try_fold(latents[0].clone(), |s, z| s + z)
    }

    /// Latent updates `range` of a round: update i writes latent i.
    fn latent_updates(
        &self,
        y: &Tensor,
        latents: &mut [Tensor],
        x: &Tensor,
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        let injection = (y + x)?;
        for i in range {
            latents[i] =
                self.net
                    .forward(&Self::sum(latents)?, &injection, self.frame.rotary.as_ref())?;
        }
        Ok(())
    }

    fn answer_update(&self, y: &Tensor, latents: &[Tensor]) -> Result<Tensor> {
        self.net
            .forward(y, &Self::sum(latents)?, self.frame.rotary.as_ref())
    }

    fn round(&self, y: Tensor, mut latents: Vec<Tensor>, x: &Tensor) -> Result<Vec<Tensor>> {
        self.latent_updates(&y, &mut latents, x, 0..self.cfg.L_cycles)?;
        let y = self.answer_update(&y, &latents)?;
        Ok([vec![y], latents].concat())
    }
}

impl RecursiveModel for TrmHier6 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn frame(&self) -> &ModelFrame {
        &self.frame
    }

    fn supervision_step(&self, carry: &InnerCarry, x: &Tensor) -> Result<InnerCarry> {
        let mut states = carry.detach().states;
        let frozen_x = x.detach();
        for _ in 0..self.cfg.H_cycles - 1 {
            let (y, latents) = (states[0].clone(), states[1..].to_vec());
            states = no_grad(|| self.round(y, latents, &frozen_x))?;
        }
        let (y, mut latents) = (states[0].clone(), states[1..].to_vec());
        let states = match self.cfg.gradient(ModelKind::TrmHier6) {
            Gradient::LastCycle => self.round(y, latents, x)?,
            Gradient::OneStep => {
                let n = self.cfg.L_cycles;
                no_grad(|| self.latent_updates(&y, &mut latents, &frozen_x, 0..n - 1))?;
                self.latent_updates(&y, &mut latents, x, n - 1..n)?;
                let y = self.answer_update(&y, &latents)?;
                [vec![y], latents].concat()
            }
        };
        Ok(InnerCarry::new(ModelKind::TrmHier6.state_names(), states))
    }

    fn levels(&self) -> Vec<&ReasoningModule> {
        vec![&self.net]
    }

    fn kind(&self) -> ModelKind {
        ModelKind::TrmHier6
    }
}
