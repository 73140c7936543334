//! One optimiser step per ACT call, as the official `pretrain.train_batch`: the loss of every
//! slot divided by the global batch, backward, AdamATan2 on the trainable parameters, sign-SGD
//! on the puzzle-embedding rows of the batch, the carry kept for the next call.

use crate::act::{act_step, initial_carry, ActOptions, Batch, Carry};
use crate::config::ModelConfig;
use crate::hrm::Hrm;
use crate::init::init_varmap;
use crate::loss::{act_loss, LossType, Metrics};
use crate::model::{ModelKind, RecursiveModel};
use crate::optim::{adam_atan2_step, sparse_sign_sgd_step, AdamAtan2Config, Moments};
use crate::trm::Trm;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;

const PUZZLE_TABLE: &str = "model.inner.puzzle_emb.weights";
/// Buffers: in the state dict, not updated by AdamATan2.
const BUFFERS: [&str; 3] = ["model.inner.H_init", "model.inner.L_init", PUZZLE_TABLE];

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimConfig {
    pub adam: AdamAtan2Config,
    pub puzzle_emb_lr: f64,
    pub puzzle_emb_weight_decay: f64,
    pub loss: LossType,
    /// EMA rate of the trainable parameters (TRM: 0.999), or none (HRM's recipe).
    pub ema: Option<f64>,
}

/// One step's gradients on the host, checked finite.
struct StepGradients {
    /// In the order of `Trainer::trainable`.
    params: Vec<Vec<f32>>,
    /// `[slots, puzzle_emb_ndim]` rows of the puzzle table the batch used.
    puzzle_rows: Option<Vec<f32>>,
}

pub struct Trainer {
    pub model: Box<dyn RecursiveModel>,
    pub varmap: VarMap,
    /// Trainable parameters in name order, with their moments.
    trainable: Vec<(String, Var, Moments)>,
    /// EMA shadows of the trainable parameters, in the same order.
    pub ema: Option<Vec<Vec<f32>>>,
    pub optim: OptimConfig,
    /// Optimiser steps taken.
    pub step: u64,
    pub carry: Option<Carry>,
}

/// Either model over the tensors of `vb` (rooted at the state dict's top, `model.inner` below).
pub fn build_model(
    vb: &VarBuilder,
    cfg: &ModelConfig,
    kind: ModelKind,
    device: &Device,
) -> Result<Box<dyn RecursiveModel>> {
    let inner = vb.pp("model").pp("inner");
    Ok(match kind {
        ModelKind::Trm => Box::new(Trm::new(&inner, cfg, device)?),
        ModelKind::Hrm => Box::new(Hrm::new(&inner, cfg, device)?),
    })
}

impl Trainer {
    /// A freshly initialised model (official initialisation, seeded).
    pub fn new(
        cfg: &ModelConfig,
        kind: ModelKind,
        optim: OptimConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let varmap = init_varmap(cfg, kind, seed, DType::F32, device)?;
        let model = build_model(
            &VarBuilder::from_varmap(&varmap, DType::F32, device),
            cfg,
            kind,
            device,
        )?;
        let mut trainable: Vec<(String, Var, Moments)> = varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .filter(|(name, _)| !BUFFERS.contains(&name.as_str()))
            .map(|(name, var)| {
                (
                    name.clone(),
                    var.clone(),
                    Moments::zeros(var.as_tensor().elem_count()),
                )
            })
            .collect();
        trainable.sort_by(|a, b| a.0.cmp(&b.0));
        // The shadow starts as a copy of the initial parameters (no zero start, no bias fix).
        let ema = match optim.ema {
            Some(_) => Some(
                trainable
                    .iter()
                    .map(|(_, v, _)| v.as_tensor().flatten_all()?.to_vec1::<f32>())
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        };
        Ok(Trainer {
            model,
            varmap,
            trainable,
            ema,
            optim,
            step: 0,
            carry: None,
        })
    }

    pub fn puzzle_table(&self) -> Var {
        self.varmap
            .data()
            .lock()
            .expect("varmap")
            .get(PUZZLE_TABLE)
            .expect("the model has a puzzle table")
            .clone()
    }

    /// One ACT call of `model` and its loss.
    fn call(
        &self,
        model: &dyn RecursiveModel,
        carry: &Carry,
        batch: &Batch,
        table: &Tensor,
        opts: ActOptions<'_, ChaCha8Rng>,
    ) -> Result<(Carry, crate::act::StepOutput, crate::loss::LossOutput)> {
        let (next, out) = act_step(model, carry, batch, table, opts)?;
        let loss = act_loss(
            &out,
            &next.data.labels,
            &next.halted,
            &next.steps,
            self.optim.loss,
        )?;
        Ok((next, out, loss))
    }

    /// One ACT call and one optimiser step; `lr_scale` is the schedule's multiplier.
    pub fn train_step(
        &mut self,
        batch: &Batch,
        lr_scale: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Metrics> {
        let carry = match self.carry.take() {
            Some(c) => c,
            None => initial_carry(self.model.as_ref(), batch)?,
        };
        let table = self.puzzle_table();
        let opts = ActOptions {
            training: true,
            puzzle_grad: true,
            rng,
        };
        let (next, out, loss) =
            self.call(self.model.as_ref(), &carry, batch, table.as_tensor(), opts)?;
        let batch_size = batch.inputs.dim(0)? as f64;
        let grads = (&loss.total * (1.0 / batch_size))?.backward()?;
        let grads = self.checked_gradients(&loss.metrics, &grads, out.puzzle_rows.as_ref())?;
        self.step += 1;
        self.apply(&grads, lr_scale, &next.data.puzzle_identifiers)?;
        self.carry = Some(next);
        Ok(loss.metrics)
    }

    /// The gradients of this step, provided the loss and every one of them are finite:
    /// nothing is applied otherwise, since one NaN reaches every weight in a step.
    fn checked_gradients(
        &self,
        metrics: &Metrics,
        grads: &candle_core::backprop::GradStore,
        puzzle_rows: Option<&Var>,
    ) -> Result<StepGradients> {
        if !metrics.lm_loss.is_finite() || !metrics.q_halt_loss.is_finite() {
            return Err(candle_core::Error::msg(format!(
                "the loss is not finite (lm_loss {}, q_halt_loss {})",
                metrics.lm_loss, metrics.q_halt_loss
            )));
        }
        let host = |name: &str, t: Option<&Tensor>, n: usize| -> Result<Vec<f32>> {
            // A parameter the loss does not reach still decays, as in the official optimiser.
            let g = match t {
                Some(g) => g.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?,
                None => vec![0.0; n],
            };
            match g.iter().find(|v| !v.is_finite()) {
                Some(bad) => Err(candle_core::Error::msg(format!(
                    "the gradient of {name} is not finite ({bad})"
                ))),
                None => Ok(g),
            }
        };
        let params = self
            .trainable
            .iter()
            .map(|(name, var, _)| {
                host(
                    name,
                    grads.get(var.as_tensor()),
                    var.as_tensor().elem_count(),
                )
            })
            .collect::<Result<_>>()?;
        // Sign-SGD reads only signs, where a NaN would pass as 0: checked too.
        let puzzle_rows = match puzzle_rows.and_then(|rows| grads.get(rows.as_tensor())) {
            Some(g) => Some(host(PUZZLE_TABLE, Some(g), 0)?),
            None => None,
        };
        Ok(StepGradients {
            params,
            puzzle_rows,
        })
    }

    /// AdamATan2 (and EMA) on the trainable parameters, sign-SGD on the batch's rows of the
    /// puzzle table (`ids`, one per slot).
    fn apply(&mut self, grads: &StepGradients, lr_scale: f64, ids: &Tensor) -> Result<()> {
        let lr = self.optim.adam.lr * lr_scale;
        for (i, ((_, var, moments), g)) in self.trainable.iter_mut().zip(&grads.params).enumerate()
        {
            let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            adam_atan2_step(&self.optim.adam, lr, self.step, &mut p, g, moments);
            if let (Some(shadows), Some(mu)) = (&mut self.ema, self.optim.ema) {
                crate::optim::ema_update(&mut shadows[i], &p, mu);
            }
            var.set(&Tensor::from_vec(
                p,
                var.as_tensor().shape(),
                var.as_tensor().device(),
            )?)?;
        }
        if let Some(local) = &grads.puzzle_rows {
            let table = self.puzzle_table();
            let (n, width) = table.as_tensor().dims2()?;
            let mut w = table.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            sparse_sign_sgd_step(
                &mut w,
                width,
                &ids.to_vec1::<u32>()?,
                local,
                self.optim.puzzle_emb_lr * lr_scale,
                self.optim.puzzle_emb_weight_decay,
            );
            table.set(&Tensor::from_vec(
                w,
                (n, width),
                table.as_tensor().device(),
            )?)?;
        }
        Ok(())
    }

    /// Every tensor of the state dict (weights and buffers), detached (shared storage).
    fn detached_tensors(&self) -> Vec<(String, Tensor)> {
        self.varmap
            .data()
            .lock()
            .expect("varmap")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect()
    }

    /// The model over detached copies of the weights (shared storage), so inference records
    /// no graph and frees each activation as soon as it is used; with `use_ema`, the EMA
    /// weights replace the trainable ones (buffers and the puzzle table stay live), as the
    /// official evaluation does.
    pub fn inference_model(
        &self,
        cfg: &ModelConfig,
        kind: ModelKind,
        use_ema: bool,
    ) -> Result<Box<dyn RecursiveModel>> {
        let device = self.puzzle_table().as_tensor().device().clone();
        let mut tensors: std::collections::HashMap<String, Tensor> =
            self.detached_tensors().into_iter().collect();
        if let (true, Some(shadows)) = (use_ema, &self.ema) {
            for ((name, var, _), shadow) in self.trainable.iter().zip(shadows) {
                tensors.insert(
                    name.clone(),
                    Tensor::from_vec(shadow.clone(), var.as_tensor().shape(), &device)?,
                );
            }
        }
        build_model(
            &VarBuilder::from_tensors(tensors, DType::F32, &device),
            cfg,
            kind,
            &device,
        )
    }

    /// One evaluation call (no halting on q) of `model` (see `inference_model`) from `carry`,
    /// with its raw outputs (logits, halting logits) and the loss head's predictions.
    pub fn eval_step(
        &self,
        model: &dyn RecursiveModel,
        carry: &Carry,
        batch: &Batch,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Carry, crate::act::StepOutput, crate::loss::LossOutput)> {
        let table = self.puzzle_table();
        let opts = ActOptions {
            training: false,
            puzzle_grad: false,
            rng,
        };
        self.call(model, carry, batch, &table.as_tensor().detach(), opts)
    }
}

/// Everything a run needs to continue exactly where it stopped.
impl Trainer {
    /// Tensors of the full training state under official names (weights and buffers) plus
    /// `optim.m.*`, `optim.v.*`, `ema.*`, the carry (`carry.*`) and the step.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let device = self.puzzle_table().as_tensor().device().clone();
        let mut out: Vec<(String, Tensor)> = self.detached_tensors().into_iter().collect();
        for (i, (name, var, m)) in self.trainable.iter().enumerate() {
            let shape = var.as_tensor().shape();
            out.push((
                format!("optim.m.{name}"),
                Tensor::from_vec(m.m.clone(), shape, &device)?,
            ));
            out.push((
                format!("optim.v.{name}"),
                Tensor::from_vec(m.v.clone(), shape, &device)?,
            ));
            if let Some(shadows) = &self.ema {
                out.push((
                    format!("ema.{name}"),
                    Tensor::from_vec(shadows[i].clone(), shape, &device)?,
                ));
            }
        }
        out.push((
            "optim.step".into(),
            Tensor::new(&[self.step as i64], &device)?,
        ));
        if let Some(c) = &self.carry {
            out.push(("carry.z_H".into(), c.inner.z_h.clone()));
            out.push(("carry.z_L".into(), c.inner.z_l.clone()));
            out.push((
                "carry.steps".into(),
                Tensor::new(
                    c.steps.iter().map(|&s| s as i64).collect::<Vec<_>>(),
                    &device,
                )?,
            ));
            out.push((
                "carry.halted".into(),
                Tensor::new(
                    c.halted.iter().map(|&h| h as u8).collect::<Vec<_>>(),
                    &device,
                )?,
            ));
            out.push(("carry.inputs".into(), c.data.inputs.clone()));
            out.push(("carry.labels".into(), c.data.labels.clone()));
            out.push((
                "carry.puzzle_identifiers".into(),
                c.data.puzzle_identifiers.clone(),
            ));
        }
        Ok(out)
    }

    /// Loads model weights only (an official or exported state dict: every weight and buffer
    /// under its official name); the EMA shadows, if any, become copies of them.
    pub fn load_weights(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        // Strict, as PyTorch's load_state_dict: a tensor the model lacks means another model.
        {
            let vars = self.varmap.data().lock().expect("varmap");
            let mut unexpected: Vec<&String> =
                state.keys().filter(|k| !vars.contains_key(*k)).collect();
            unexpected.sort();
            if let Some(first) = unexpected.first() {
                return Err(candle_core::Error::msg(format!(
                    "the state dict has {} tensors this model lacks, e.g. {first}: it belongs to another model or size",
                    unexpected.len()
                )));
            }
        }
        for (name, var) in self.varmap.data().lock().expect("varmap").iter() {
            let t = state
                .get(name)
                .ok_or_else(|| candle_core::Error::msg(format!("the state dict lacks {name}")))?;
            if t.dims() != var.as_tensor().dims() {
                return Err(candle_core::Error::msg(format!(
                    "{name} has shape {:?} in the state dict, {:?} in the model",
                    t.dims(),
                    var.as_tensor().dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        if let Some(shadows) = &mut self.ema {
            for (shadow, (_, var, _)) in shadows.iter_mut().zip(&self.trainable) {
                *shadow = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }

    /// Restores a state written by `state_tensors` into this (identically configured) trainer.
    pub fn restore(&mut self, state: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str| {
            state
                .get(name)
                .ok_or_else(|| candle_core::Error::msg(format!("checkpoint lacks {name}")))
        };
        for (name, var) in self.varmap.data().lock().expect("varmap").iter() {
            var.set(&get(name)?.to_dtype(DType::F32)?)?;
        }
        for (i, (name, _, m)) in self.trainable.iter_mut().enumerate() {
            m.m = get(&format!("optim.m.{name}"))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            m.v = get(&format!("optim.v.{name}"))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if let Some(shadows) = &mut self.ema {
                shadows[i] = get(&format!("ema.{name}"))?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
            }
        }
        self.step = get("optim.step")?.to_vec1::<i64>()?[0] as u64;
        self.carry = match state.get("carry.z_H") {
            None => None,
            Some(z_h) => Some(Carry {
                inner: crate::shell::InnerCarry {
                    z_h: z_h.clone(),
                    z_l: get("carry.z_L")?.clone(),
                },
                steps: get("carry.steps")?
                    .to_vec1::<i64>()?
                    .iter()
                    .map(|&s| s as u32)
                    .collect(),
                halted: get("carry.halted")?
                    .to_vec1::<u8>()?
                    .iter()
                    .map(|&h| h != 0)
                    .collect(),
                data: Batch {
                    inputs: get("carry.inputs")?.clone(),
                    labels: get("carry.labels")?.clone(),
                    puzzle_identifiers: get("carry.puzzle_identifiers")?.clone(),
                },
            }),
        };
        Ok(())
    }
}
