//! The Hierarchical Reasoning Model (Wang et al. 2025; official `models/hrm/hrm_act_v1.py`).
//!
//! Two recurrent modules at two speeds: the fast L-module updates with the input and the slow
//! state injected (`z_L <- L(z_L, z_H + x)`), the slow H-module updates from the fast state
//! once every `L_cycles` steps (`z_H <- H(z_H, z_L)`). Only the final L and H updates of a
//! supervision step build a graph (the "one-step gradient"; `gradient = last-cycle`, an
//! ablation, extends it to the whole last H cycle).

use crate::config::{Gradient, ModelConfig};
use crate::frame::{InnerCarry, ModelFrame};
use crate::layers::{no_grad, BlockShape, ReasoningModule};
use crate::model::{ModelKind, RecursiveModel};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

pub struct Hrm {
    cfg: ModelConfig,
    frame: ModelFrame,
    h_level: ReasoningModule,
    l_level: ReasoningModule,
}

impl Hrm {
    /// `vb` is rooted at the inner model (`model.inner` in official checkpoints).
    pub fn new(vb: &VarBuilder, cfg: &ModelConfig, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let shape = BlockShape::of(cfg, false);
        Ok(Hrm {
            cfg: cfg.clone(),
            frame: ModelFrame::new(vb, cfg, ModelKind::Hrm, device)?,
            h_level: ReasoningModule::new(&vb.pp("H_level"), cfg.H_layers, shape)?,
            l_level: ReasoningModule::new(&vb.pp("L_level"), cfg.L_layers, shape)?,
        })
    }
}

impl Hrm {
    /// `n` fast updates; z_H is fixed during them, so their injection is too.
    fn l_updates(&self, z_h: &Tensor, mut z_l: Tensor, x: &Tensor, n: usize) -> Result<Tensor> {
        if n == 0 {
            return Ok(z_l);
        }
        let injection = (z_h + x)?;
        for _ in 0..n {
            z_l = self
                .l_level
                .forward(&z_l, &injection, self.frame.rotary.as_ref())?;
        }
        Ok(z_l)
    }
}

impl RecursiveModel for Hrm {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn frame(&self) -> &ModelFrame {
        &self.frame
    }

    fn supervision_step(&self, carry: &InnerCarry, x: &Tensor) -> Result<InnerCarry> {
        let (h_cycles, l_cycles) = (self.cfg.H_cycles, self.cfg.L_cycles);
        // The L updates of the last H cycle that build a graph.
        let with_graph = match self.cfg.gradient(ModelKind::Hrm) {
            Gradient::OneStep => 1,
            Gradient::LastCycle => l_cycles,
        };
        // Every update before those, without a graph.
        let (z_h, z_l) = no_grad(|| -> Result<(Tensor, Tensor)> {
            let (mut z_h, mut z_l) = carry.detach().pair()?;
            let x = x.detach();
            for _ in 0..h_cycles - 1 {
                z_l = self.l_updates(&z_h, z_l, &x, l_cycles)?;
                z_h = self
                    .h_level
                    .forward(&z_h, &z_l, self.frame.rotary.as_ref())?;
            }
            let z_l = self.l_updates(&z_h, z_l, &x, l_cycles - with_graph)?;
            Ok((z_h, z_l))
        })?;
        let z_l = self.l_updates(&z_h, z_l, x, with_graph)?;
        let z_h = self
            .h_level
            .forward(&z_h, &z_l, self.frame.rotary.as_ref())?;
        Ok(InnerCarry::new(
            ModelKind::Hrm.state_names(),
            vec![z_h, z_l],
        ))
    }

    fn levels(&self) -> Vec<&ReasoningModule> {
        vec![&self.l_level, &self.h_level]
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Hrm
    }
}
