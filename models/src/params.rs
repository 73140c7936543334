//! The trainable parameters with their optimiser state as tensors on the model's device:
//! AdamATan2 moments `[m | v]` and the EMA shadow of each. On the CPU every update runs in
//! place (`kernels::optim`); elsewhere as tensor ops on the device (`optim::device_*`), so
//! nothing is copied through the host.

use crate::optim::{device_ema, AdamScalars};
use candle_core::{DType, Result, Tensor, Var};
use std::collections::HashMap;

pub struct Parameter {
    pub name: String,
    pub var: Var,
    /// `[m | v]`, flat, twice the parameter's size.
    moments: Tensor,
    ema: Option<Tensor>,
}

pub struct Parameters(Vec<Parameter>);

impl Parameters {
    /// Fresh moments; with `ema`, shadows that start as copies of the parameters (no zero
    /// start, no bias correction, as the official `EMAHelper`).
    pub fn new(mut named: Vec<(String, Var)>, ema: bool) -> Result<Self> {
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let list = named
            .into_iter()
            .map(|(name, var)| {
                let t = var.as_tensor();
                Ok(Parameter {
                    moments: Tensor::zeros(2 * t.elem_count(), DType::F32, t.device())?,
                    ema: if ema { Some(t.copy()?) } else { None },
                    name,
                    var,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Parameters(list))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Parameter> {
        self.0.iter()
    }

    /// One AdamATan2 step (and EMA update) of every parameter, `grads` in the same order;
    /// with `fused`, the CPU kernels in place, otherwise device tensor ops.
    pub fn step(
        &self,
        grads: &[Tensor],
        s: AdamScalars,
        ema: Option<f64>,
        fused: bool,
    ) -> Result<()> {
        for (p, g) in self.0.iter().zip(grads) {
            let param = p.var.as_tensor();
            if fused {
                crate::kernels::optim::adam_atan2(param, &p.moments, &g.flatten_all()?, s)?;
                if let (Some(shadow), Some(mu)) = (&p.ema, ema) {
                    crate::kernels::optim::ema(shadow, param, mu)?;
                }
            } else {
                p.device_step(g, s, ema)?;
            }
        }
        Ok(())
    }

    /// The EMA weights by name (copies), when kept.
    pub fn ema_weights(&self) -> Result<Option<Vec<(String, Tensor)>>> {
        self.0
            .iter()
            .map(|p| {
                Ok(p.ema
                    .as_ref()
                    .map(|e| e.copy())
                    .transpose()?
                    .map(|e| (p.name.clone(), e)))
            })
            .collect::<Result<Option<Vec<_>>>>()
    }

    /// `optim.m.<name>`, `optim.v.<name>` and `ema.<name>`, shaped like the parameter.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for p in &self.0 {
            let shape = p.var.as_tensor().shape();
            let n = shape.elem_count();
            out.push((
                format!("optim.m.{}", p.name),
                p.moments.narrow(0, 0, n)?.reshape(shape)?,
            ));
            out.push((
                format!("optim.v.{}", p.name),
                p.moments.narrow(0, n, n)?.reshape(shape)?,
            ));
            if let Some(e) = &p.ema {
                out.push((format!("ema.{}", p.name), e.copy()?));
            }
        }
        Ok(out)
    }

    /// Moments and shadows from `state_tensors`' names.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let get = |name: String| {
            state
                .get(&name)
                .ok_or_else(|| candle_core::Error::msg(format!("checkpoint lacks {name}")))
        };
        for p in &mut self.0 {
            let device = p.var.as_tensor().device().clone();
            let m = get(format!("optim.m.{}", p.name))?.flatten_all()?;
            let v = get(format!("optim.v.{}", p.name))?.flatten_all()?;
            p.moments = Tensor::cat(&[&m, &v], 0)?
                .to_dtype(DType::F32)?
                .to_device(&device)?;
            if p.ema.is_some() {
                let e = get(format!("ema.{}", p.name))?;
                p.ema = Some(e.to_dtype(DType::F32)?.to_device(&device)?.copy()?);
            }
        }
        Ok(())
    }

    /// Shadows reset to the current parameters (after loading bare weights).
    pub fn reset_ema(&mut self) -> Result<()> {
        for p in &mut self.0 {
            if p.ema.is_some() {
                p.ema = Some(p.var.as_tensor().copy()?);
            }
        }
        Ok(())
    }
}

impl Parameter {
    /// The same step in tensor ops on the parameter's device, written back in place.
    fn device_step(&self, g: &Tensor, s: AdamScalars, ema: Option<f64>) -> Result<()> {
        let n = self.var.as_tensor().elem_count();
        let (m, v) = (self.moments.narrow(0, 0, n)?, self.moments.narrow(0, n, n)?);
        let (p, m, v) = s.device_step(self.var.as_tensor(), &m, &v, g)?;
        self.moments.slice_set(&Tensor::cat(&[&m, &v], 0)?, 0, 0)?;
        self.var.set(&p)?;
        if let (Some(shadow), Some(mu)) = (&self.ema, ema) {
            shadow.slice_set(&device_ema(shadow, &p, mu)?, 0, 0)?;
        }
        Ok(())
    }
}
