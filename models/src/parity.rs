//! Comparison with tensors produced by the official PyTorch code (the `golden/` format:
//! `config.json`, `weights.safetensors`, `batch.safetensors`, `trace.safetensors`). The tests
//! hold every deviation to its tolerance; `harness parity` prints them for any such folder.

use crate::act::{act_step, initial_carry, ActOptions, Batch, Carry};
use crate::config::ModelConfig;
use crate::loss::{act_loss, LossType};
use crate::model::RecursiveModel;
use crate::shell::InnerCarry;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;

/// One compared tensor: `max|ours - ref| <= tolerance` where `tolerance = rtol * max|ref| + atol`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deviation {
    pub name: String,
    pub max_abs_diff: f64,
    pub ref_max_abs: f64,
    pub tolerance: f64,
}

impl Deviation {
    pub fn ok(&self) -> bool {
        self.max_abs_diff <= self.tolerance
    }
    pub fn relative(&self) -> f64 {
        self.max_abs_diff / self.ref_max_abs.max(f64::MIN_POSITIVE)
    }
}

/// The largest relative deviation over tensors whose reference is not all zeros.
pub fn largest_relative(deviations: &[Deviation]) -> f64 {
    deviations
        .iter()
        .filter(|d| d.ref_max_abs > 0.0)
        .map(Deviation::relative)
        .fold(0.0, f64::max)
}

pub fn compare(
    name: &str,
    ours: &Tensor,
    reference: &Tensor,
    rtol: f64,
    atol: f64,
) -> Result<Deviation> {
    let a = ours.to_dtype(DType::F64)?.flatten_all()?;
    let b = reference.to_dtype(DType::F64)?.flatten_all()?;
    if a.dims() != b.dims() {
        return Err(candle_core::Error::msg(format!(
            "{name}: shape {:?} differs from the reference {:?}",
            ours.dims(),
            reference.dims()
        )));
    }
    let max_abs_diff = (&a - &b)?.abs()?.max(0)?.to_scalar::<f64>()?;
    let ref_max_abs = if b.dim(0)? == 0 {
        0.0
    } else {
        b.abs()?.max(0)?.to_scalar::<f64>()?
    };
    Ok(Deviation {
        name: name.to_string(),
        max_abs_diff,
        ref_max_abs,
        tolerance: rtol * ref_max_abs + atol,
    })
}

/// Tolerances: forward, gradients (relative to the tensor's largest entry), losses.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    pub forward: f64,
    pub gradient: f64,
    pub loss: f64,
    /// The halting and continue logits.
    pub q_logits: f64,
    /// The halting and continue BCE (f32 sums).
    pub q_loss: f64,
    /// The token-accuracy metric (an argmax may flip where two logits nearly tie).
    pub accuracy: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            forward: 1e-4,
            gradient: 1e-3,
            loss: 1e-6,
            q_logits: 1e-4,
            q_loss: 1e-5,
            accuracy: 1e-6,
        }
    }
}

impl Tolerances {
    /// A bf16 forward (8 significant bits) against the f32 golden tensors: `relative` (of
    /// each tensor's largest entry) for every tensor, logit, gradient and BCE, 1% for the
    /// f64 losses, 15% for the token accuracy (one flipped argmax in an 81-cell row where the
    /// metric is about 0.1). The test takes `relative` from the official code's own bf16 run.
    pub fn bf16(relative: f64) -> Self {
        Tolerances {
            forward: relative,
            gradient: relative,
            loss: 1e-2,
            q_logits: relative,
            q_loss: relative,
            accuracy: 0.15,
        }
    }
}

pub struct Golden {
    /// `config.json` as written by the generator (model, optimiser and run settings).
    pub raw_config: serde_json::Value,
    pub config: ModelConfig,
    pub is_hrm: bool,
    pub varmap: VarMap,
    pub tensors: HashMap<String, Tensor>,
    /// Where the weights and tensors were loaded, and the run goes.
    pub device: Device,
}

fn load(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, device)
        .map_err(|e| candle_core::Error::msg(format!("{}: {e}", path.display())))
}

impl Golden {
    /// Reads a golden folder; the weights become variables so gradients can be taken.
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        Self::open_with_weights(dir, "weights.safetensors", device)
    }

    /// As `open`, with the weights read from `weights_file` in the folder (e.g. `weights.pt`).
    pub fn open_with_weights(dir: &Path, weights_file: &str, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| candle_core::Error::msg(format!("{}: {e}", cfg_path.display())))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| candle_core::Error::msg(format!("{}: {e}", cfg_path.display())))?;
        let config: ModelConfig =
            serde_json::from_value(json["model_config"].clone()).map_err(|e| {
                candle_core::Error::msg(format!("{}: model_config: {e}", cfg_path.display()))
            })?;
        let is_hrm = json["model_class"].as_str().unwrap_or("").contains("hrm");
        let varmap = VarMap::new();
        for (name, t) in crate::checkpoint::load_state_dict(&dir.join(weights_file), device)? {
            varmap
                .data()
                .lock()
                .expect("fresh varmap")
                .insert(name, Var::from_tensor(&t)?);
        }
        let mut tensors = HashMap::new();
        for file in ["batch", "trace", "optim", "debug"] {
            let path = dir.join(format!("{file}.safetensors"));
            if path.exists() {
                tensors.extend(load(&path, device)?);
            }
        }
        Ok(Golden {
            raw_config: json,
            config,
            is_hrm,
            varmap,
            tensors,
            device: device.clone(),
        })
    }

    pub fn kind(&self) -> crate::model::ModelKind {
        if self.is_hrm {
            crate::model::ModelKind::Hrm
        } else {
            crate::model::ModelKind::Trm
        }
    }

    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::msg(format!("golden tensor {name} is missing")))
    }

    pub fn model(&self, device: &Device) -> Result<Box<dyn RecursiveModel>> {
        crate::trainer::build_model(
            &VarBuilder::from_varmap(&self.varmap, DType::F32, device),
            &self.config,
            self.kind(),
            device,
        )
    }

    pub fn batch(&self) -> Result<Batch> {
        Ok(Batch {
            inputs: self.tensor("inputs")?.to_dtype(DType::U32)?,
            labels: self.tensor("labels")?.to_dtype(DType::I64)?,
            puzzle_identifiers: self.tensor("puzzle_identifiers")?.to_dtype(DType::U32)?,
        })
    }

    fn flags(&self, key: &str) -> Result<Vec<i64>> {
        self.tensor(key)?.to_dtype(DType::I64)?.to_vec1::<i64>()
    }
}

/// Runs the recorded training and evaluation calls and compares every output. Calls after the
/// first start from the recorded carry of the call before (teacher forcing), since TRM-MLP's
/// recursion amplifies f32 rounding by 10-15x per call.
pub fn run_golden(g: &Golden, tol: Tolerances) -> Result<Vec<Deviation>> {
    let device = g.device.clone();
    let model = g.model(&device)?;
    let batch = g.batch()?;
    let table = g
        .varmap
        .data()
        .lock()
        .expect("varmap")
        .get("model.inner.puzzle_emb.weights")
        .map(|v| v.as_tensor().clone());
    let table = table
        .ok_or_else(|| candle_core::Error::msg("weights lack model.inner.puzzle_emb.weights"))?;
    let b = batch.inputs.dim(0)?;
    let mut out = debug_tensors(g, model.as_ref(), &batch, &table, tol.forward)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for (prefix, training) in [("", true), ("eval.", false)] {
        let mut carry = initial_carry(model.as_ref(), &batch)?;
        for call in 1.. {
            let key = format!("{prefix}call{call}");
            if !g.tensors.contains_key(&format!("{key}.logits")) {
                break;
            }
            if call > 1 {
                let before = format!("{prefix}call{}", call - 1);
                let dtype = g.config.compute_dtype().map_err(candle_core::Error::msg)?;
                carry = Carry {
                    inner: InnerCarry {
                        z_h: g.tensor(&format!("{before}.z_H"))?.to_dtype(dtype)?,
                        z_l: g.tensor(&format!("{before}.z_L"))?.to_dtype(dtype)?,
                    },
                    steps: g
                        .flags(&format!("{before}.steps"))?
                        .iter()
                        .map(|&s| s as u32)
                        .collect(),
                    halted: g
                        .flags(&format!("{before}.halted"))?
                        .iter()
                        .map(|&h| h != 0)
                        .collect(),
                    data: batch.clone(),
                };
            }
            let with_grad = training && call == 1;
            let exploration =
                crate::act::exploration_min_steps(&g.config, (training, true), &mut rng, b);
            let opts = ActOptions {
                training,
                halt_early: true,
                puzzle_grad: with_grad,
                min_steps: exploration.as_deref(),
            };
            let (next, step) = act_step(model.as_ref(), &carry, &batch, &table, opts)?;
            let loss = act_loss(
                &step,
                &next.data.labels,
                &next.halted,
                &next.steps,
                LossType::StablemaxCrossEntropy,
            )?;
            let f = tol.forward;
            out.push(compare(
                &format!("{key}.logits"),
                &step.logits,
                g.tensor(&format!("{key}.logits"))?,
                f,
                0.0,
            )?);
            out.push(compare(
                &format!("{key}.q_halt_logits"),
                &step.q_halt,
                g.tensor(&format!("{key}.q_halt_logits"))?,
                tol.q_logits,
                0.0,
            )?);
            out.push(compare(
                &format!("{key}.q_continue_logits"),
                &step.q_continue,
                g.tensor(&format!("{key}.q_continue_logits"))?,
                tol.q_logits,
                0.0,
            )?);
            out.push(compare(
                &format!("{key}.z_H"),
                &next.inner.z_h,
                g.tensor(&format!("{key}.z_H"))?,
                f,
                0.0,
            )?);
            out.push(compare(
                &format!("{key}.z_L"),
                &next.inner.z_l,
                g.tensor(&format!("{key}.z_L"))?,
                f,
                0.0,
            )?);
            if let (Some(ours), Some(theirs)) = (
                &step.target_q_continue,
                g.tensors.get(&format!("{key}.target_q_continue")),
            ) {
                out.push(compare(
                    &format!("{key}.target_q_continue"),
                    ours,
                    theirs,
                    f,
                    0.0,
                )?);
            }
            let exact = |name: &str, ours: Vec<i64>| -> Result<Deviation> {
                compare(
                    name,
                    &Tensor::new(ours, &device)?,
                    &Tensor::new(g.flags(name)?, &device)?,
                    0.0,
                    0.0,
                )
            };
            out.push(exact(
                &format!("{key}.halted"),
                next.halted.iter().map(|&h| h as i64).collect(),
            )?);
            out.push(exact(
                &format!("{key}.steps"),
                next.steps.iter().map(|&s| s as i64).collect(),
            )?);
            let scalar = |name: &str, value: f64, rtol: f64| -> Result<Deviation> {
                compare(
                    name,
                    &Tensor::new(&[value], &device)?,
                    &g.tensor(name)?.to_dtype(DType::F64)?.reshape(1)?,
                    rtol,
                    0.0,
                )
            };
            let m = &loss.metrics;
            out.push(scalar(
                &format!("{key}.loss.total"),
                loss.total.to_scalar::<f64>()?,
                tol.loss,
            )?);
            out.push(scalar(
                &format!("{key}.metrics.lm_loss"),
                m.lm_loss,
                tol.loss,
            )?);
            out.push(scalar(
                &format!("{key}.metrics.q_halt_loss"),
                m.q_halt_loss as f64,
                tol.q_loss,
            )?);
            if let Some(c) = m.q_continue_loss {
                out.push(scalar(
                    &format!("{key}.metrics.q_continue_loss"),
                    c as f64,
                    tol.q_loss,
                )?);
            }
            out.push(scalar(
                &format!("{key}.metrics.accuracy"),
                m.accuracy as f64,
                tol.accuracy,
            )?);
            for (name, value) in [
                ("count", m.count),
                ("exact_accuracy", m.exact_accuracy),
                ("q_halt_accuracy", m.q_halt_accuracy),
                ("steps", m.steps),
            ] {
                out.push(scalar(&format!("{key}.metrics.{name}"), value as f64, 0.0)?);
            }
            if with_grad {
                let grads = (loss.total * (1.0 / b as f64))?.backward()?;
                let data = g.varmap.data().lock().expect("varmap");
                for (name, var) in data.iter() {
                    let Some(reference) = g.tensors.get(&format!("grad.{name}")) else {
                        continue;
                    };
                    let ours = grads
                        .get(var.as_tensor())
                        .cloned()
                        .unwrap_or(var.as_tensor().zeros_like()?);
                    out.push(compare(
                        &format!("grad.{name}"),
                        &ours,
                        reference,
                        tol.gradient,
                        0.0,
                    )?);
                }
                if let (Some(rows), Ok(reference)) = (
                    &step.puzzle_rows,
                    g.tensor("grad.model.inner.puzzle_emb.local_weights"),
                ) {
                    let ours = grads
                        .get(rows.as_tensor())
                        .cloned()
                        .unwrap_or(rows.as_tensor().zeros_like()?);
                    out.push(compare(
                        "grad.model.inner.puzzle_emb.local_weights",
                        &ours,
                        reference,
                        tol.gradient,
                        0.0,
                    )?);
                }
            }
            carry = next;
        }
    }
    Ok(out)
}

/// The intermediate tensors of `debug.safetensors`: rotary tables, the input embedding, one
/// application of the low level from the initial states, and (HRM) one of the high level.
fn debug_tensors(
    g: &Golden,
    model: &dyn RecursiveModel,
    batch: &Batch,
    table: &Tensor,
    rtol: f64,
) -> Result<Vec<Deviation>> {
    let mut out = Vec::new();
    let shell = model.shell();
    if let (Some(rotary), Some(cos), Some(sin)) = (
        &shell.rotary,
        g.tensors.get("debug.rope_cos"),
        g.tensors.get("debug.rope_sin"),
    ) {
        out.push(compare("debug.rope_cos", &rotary.cos, cos, rtol, 0.0)?);
        out.push(compare("debug.rope_sin", &rotary.sin, sin, rtol, 0.0)?);
    }
    let Some(expected_x) = g.tensors.get("debug.input_embeddings") else {
        return Ok(out);
    };
    let x = shell.input_embeddings(
        &batch.inputs,
        &table.index_select(&batch.puzzle_identifiers, 0)?,
    )?;
    out.push(compare(
        "debug.input_embeddings",
        &x,
        expected_x,
        rtol,
        0.0,
    )?);
    let fresh = shell.initial_carry(x.dim(0)?, x.dim(1)?)?;
    let levels = model.levels();
    let rotary = shell.rotary.as_ref();
    let first_l = levels[0].forward(&fresh.z_l, &(&fresh.z_h + &x)?, rotary)?;
    out.push(compare(
        "debug.first_L_level_out",
        &first_l,
        g.tensor("debug.first_L_level_out")?,
        rtol,
        0.0,
    )?);
    if let (Some(h_level), Some(expected)) = (
        levels.get(1),
        g.tensors.get("debug.first_H_level_out_after_one_L"),
    ) {
        out.push(compare(
            "debug.first_H_level_out_after_one_L",
            &h_level.forward(&fresh.z_h, &first_l, rotary)?,
            expected,
            rtol,
            0.0,
        )?);
    }
    Ok(out)
}

/// The optimiser steps on the recorded inputs (weights and gradients from the official run):
/// AdamATan2 (`adam.*`, three unit steps `unit_adam.*`), sign-SGD of the puzzle embedding
/// (`signsgd.*`, `unit_signsgd.*`) and the EMA update (`ema.*`).
pub fn run_optimizer_golden(g: &Golden, rtol: f64) -> Result<Vec<Deviation>> {
    use crate::optim::{
        adam_atan2_step, ema_update, sparse_sign_sgd_step, AdamAtan2Config, Moments,
    };
    let device = g.device.clone();
    let cfg = &g.raw_config;
    let adam_json = &cfg["optimizer"]["adam_atan2"];
    let num = |v: &serde_json::Value, k: &str| {
        v[k].as_f64().ok_or_else(|| {
            candle_core::Error::msg(format!("config.json: optimizer field {k} missing"))
        })
    };
    let adam = AdamAtan2Config {
        lr: num(adam_json, "lr")?,
        weight_decay: num(adam_json, "weight_decay")?,
        beta1: num(adam_json, "beta1")?,
        beta2: num(adam_json, "beta2")?,
    };
    let sign_json = &cfg["optimizer"]["sparse_sign_sgd"];
    let (sign_lr, sign_wd) = (num(sign_json, "lr")?, num(sign_json, "weight_decay")?);
    let mu = num(&cfg["optimizer"]["ema"], "rate")?;
    let vec = |name: &str| -> Result<Vec<f32>> {
        g.tensor(name)?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()
    };
    let mut out = Vec::new();
    let data = g.varmap.data().lock().expect("varmap");
    for (name, var) in data.iter() {
        let Some(expected) = g.tensors.get(&format!("adam.{name}")) else {
            continue;
        };
        let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let initial = p.clone();
        let mut state = Moments::zeros(p.len());
        adam_atan2_step(
            &adam,
            adam.lr,
            1,
            &mut p,
            &vec(&format!("grad.{name}"))?,
            &mut state,
        );
        let ours = Tensor::from_vec(p.clone(), expected.shape(), &device)?;
        out.push(compare(
            &format!("adam.{name}"),
            &ours,
            expected,
            rtol,
            0.0,
        )?);
        let mut shadow = initial;
        ema_update(&mut shadow, &p, mu);
        let expected_ema = g.tensor(&format!("ema.{name}"))?;
        out.push(compare(
            &format!("ema.{name}"),
            &Tensor::from_vec(shadow, expected_ema.shape(), &device)?,
            expected_ema,
            rtol,
            0.0,
        )?);
    }
    if g.tensors.contains_key("unit_adam.p0") {
        let mut p = vec("unit_adam.p0")?;
        let mut state = Moments::zeros(p.len());
        for t in 1..=3u64 {
            adam_atan2_step(
                &adam,
                adam.lr,
                t,
                &mut p,
                &vec(&format!("unit_adam.g{t}"))?,
                &mut state,
            );
            for (what, ours) in [("p", &p), ("m", &state.m), ("v", &state.v)] {
                let name = format!("unit_adam.{what}{t}");
                out.push(compare(
                    &name,
                    &Tensor::new(ours.as_slice(), &device)?,
                    g.tensor(&name)?,
                    rtol,
                    0.0,
                )?);
            }
        }
    }
    let ids_of = |name: &str| -> Result<Vec<u32>> {
        Ok(g.tensor(name)?
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .iter()
            .map(|&i| i as u32)
            .collect())
    };
    if let Some(table) = data.get("model.inner.puzzle_emb.weights") {
        let (rows, width) = table.as_tensor().dims2()?;
        let mut w = table.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let ids = ids_of("puzzle_identifiers")?;
        let local = vec("grad.model.inner.puzzle_emb.local_weights")?;
        let (unique, summed) = sparse_sign_sgd_step(&mut w, width, &ids, &local, sign_lr, sign_wd);
        out.push(compare(
            "signsgd.model.inner.puzzle_emb.weights",
            &Tensor::from_vec(w, (rows, width), &device)?,
            g.tensor("signsgd.model.inner.puzzle_emb.weights")?,
            rtol,
            0.0,
        )?);
        let expected_ids: Vec<i64> = ids_of("signsgd.grad_ids")?
            .iter()
            .map(|&i| i as i64)
            .collect();
        out.push(compare(
            "signsgd.grad_ids",
            &Tensor::new(
                unique.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                &device,
            )?,
            &Tensor::new(expected_ids, &device)?,
            0.0,
            0.0,
        )?);
        let expected_sum = g.tensor("signsgd.summed_grad")?;
        out.push(compare(
            "signsgd.summed_grad",
            &Tensor::from_vec(summed, expected_sum.shape(), &device)?,
            expected_sum,
            rtol,
            0.0,
        )?);
    }
    if g.tensors.contains_key("unit_signsgd.weights0") {
        let w0 = g.tensor("unit_signsgd.weights0")?;
        let (rows, width) = w0.dims2()?;
        let mut w = vec("unit_signsgd.weights0")?;
        sparse_sign_sgd_step(
            &mut w,
            width,
            &ids_of("unit_signsgd.ids")?,
            &vec("unit_signsgd.local_grad")?,
            sign_lr,
            sign_wd,
        );
        out.push(compare(
            "unit_signsgd.weights1",
            &Tensor::from_vec(w, (rows, width), &device)?,
            g.tensor("unit_signsgd.weights1")?,
            rtol,
            0.0,
        )?);
    }
    Ok(out)
}
