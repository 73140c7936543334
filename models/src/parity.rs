//! Comparison with tensors produced by the official PyTorch code (the `golden/` format:
//! `config.json`, `weights.safetensors`, `batch.safetensors`, `trace.safetensors`). The tests
//! hold every deviation to its tolerance; `harness parity` prints them for any such folder.

use crate::act::{exploration_min_steps, initial_carry, ActOptions, Batch, Carry, StepOutput};
use crate::config::ModelConfig;
use crate::frame::InnerCarry;
use crate::loss::{act_step_with_loss, LossOutput, LossType};
use crate::model::RecursiveModel;
use crate::optim::{adam_atan2_step, ema_update, sparse_sign_sgd_step, AdamAtan2Config, Moments};
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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
    pub kind: crate::model::ModelKind,
    pub varmap: VarMap,
    pub tensors: HashMap<String, Tensor>,
    /// Where the weights and tensors were loaded, and the run goes.
    pub device: Device,
}

fn load(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, device)
        .map_err(|e| candle_core::Error::msg(format!("{}: {e}", path.display())))
}

/// The model an official class path names (`config.json`'s `model_class`).
fn kind_of_class(class: &str) -> crate::model::ModelKind {
    use crate::model::ModelKind;
    if class.contains("trm_singlez") {
        ModelKind::TrmSingleZ
    } else if class.contains("trm_hier6") {
        ModelKind::TrmHier6
    } else if class.contains("transformers_baseline") {
        ModelKind::Transformer
    } else if class.contains("hrm") {
        ModelKind::Hrm
    } else {
        ModelKind::Trm
    }
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
        let kind = kind_of_class(json["model_class"].as_str().unwrap_or(""));
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
            kind,
            varmap,
            tensors,
            device: device.clone(),
        })
    }

    pub fn kind(&self) -> crate::model::ModelKind {
        self.kind
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

    /// A recorded tensor's entries as f32.
    fn f32_values(&self, name: &str) -> Result<Vec<f32>> {
        self.tensor(name)?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()
    }

    /// A recorded vector of ids.
    fn ids(&self, name: &str) -> Result<Vec<u32>> {
        Ok(self
            .tensor(name)?
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .iter()
            .map(|&i| i as u32)
            .collect())
    }

    /// The puzzle-embedding table of the weights.
    fn puzzle_table(&self) -> Result<Tensor> {
        let table = self
            .varmap
            .data()
            .lock()
            .expect("varmap")
            .get("model.inner.puzzle_emb.weights")
            .map(|v| v.as_tensor().clone());
        table.ok_or_else(|| candle_core::Error::msg("weights lack model.inner.puzzle_emb.weights"))
    }

    /// `ours` against the recorded tensor of the same name.
    fn compare_recorded(&self, name: &str, ours: &Tensor, rtol: f64) -> Result<Deviation> {
        compare(name, ours, self.tensor(name)?, rtol, 0.0)
    }

    /// Integers (flags, counts) against the recorded ones, exactly.
    fn compare_exact(&self, name: &str, ours: Vec<i64>) -> Result<Deviation> {
        compare(
            name,
            &Tensor::new(ours, &self.device)?,
            &Tensor::new(self.flags(name)?, &self.device)?,
            0.0,
            0.0,
        )
    }

    /// One number against the recorded scalar.
    fn compare_scalar(&self, name: &str, value: f64, rtol: f64) -> Result<Deviation> {
        compare(
            name,
            &Tensor::new(&[value], &self.device)?,
            &self.tensor(name)?.to_dtype(DType::F64)?.reshape(1)?,
            rtol,
            0.0,
        )
    }
}

/// Runs the recorded training and evaluation calls and compares every output. Calls after the
/// first start from the recorded carry of the call before (teacher forcing), since TRM-MLP's
/// recursion amplifies f32 rounding by 10-15x per call.
pub fn run_golden(g: &Golden, tol: Tolerances) -> Result<Vec<Deviation>> {
    let model = g.model(&g.device)?;
    let batch = g.batch()?;
    let table = g.puzzle_table()?;
    let mut out = debug_tensors(g, model.as_ref(), &batch, &table, tol.forward)?;
    let run = GoldenRun {
        g,
        model: model.as_ref(),
        batch: &batch,
        table: &table,
        tol,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (prefix, training) in [("", true), ("eval.", false)] {
        out.extend(run.calls(prefix, training, &mut rng)?);
    }
    Ok(out)
}

/// The model of a golden folder on its recorded batch, compared call by call.
struct GoldenRun<'a> {
    g: &'a Golden,
    model: &'a dyn RecursiveModel,
    batch: &'a Batch,
    table: &'a Tensor,
    tol: Tolerances,
}

impl GoldenRun<'_> {
    /// The recorded calls `{prefix}call1, call2, ...` in training or evaluation; the first
    /// training call's gradients too.
    fn calls(&self, prefix: &str, training: bool, rng: &mut ChaCha8Rng) -> Result<Vec<Deviation>> {
        let (g, b) = (self.g, self.batch.inputs.dim(0)?);
        let mut out = Vec::new();
        let mut carry = initial_carry(self.model, self.batch)?;
        for call in 1.. {
            let key = format!("{prefix}call{call}");
            if !g.tensors.contains_key(&format!("{key}.logits")) {
                break;
            }
            if call > 1 {
                carry = self.recorded_carry(&format!("{prefix}call{}", call - 1))?;
            }
            let with_grad = training && call == 1;
            let exploration = exploration_min_steps(&g.config, (training, true), rng, b);
            let opts = ActOptions {
                training,
                halt_early: true,
                puzzle_grad: with_grad,
                min_steps: exploration.as_deref(),
            };
            let (next, step, loss) = act_step_with_loss(
                self.model,
                &carry,
                self.batch,
                self.table,
                opts,
                LossType::StablemaxCrossEntropy,
            )?;
            out.extend(self.outputs(&key, &step, &next)?);
            out.extend(self.losses(&key, &loss)?);
            if with_grad {
                out.extend(self.gradients(&step, &(loss.total * (1.0 / b as f64))?)?);
            }
            carry = next;
        }
        Ok(out)
    }

    /// The carry the official run recorded after call `key` (teacher forcing).
    fn recorded_carry(&self, key: &str) -> Result<Carry> {
        let g = self.g;
        let dtype = g.config.compute_dtype().map_err(candle_core::Error::msg)?;
        let names = g.kind.state_names();
        let states = names
            .iter()
            .map(|n| g.tensor(&format!("{key}.{n}"))?.to_dtype(dtype))
            .collect::<Result<_>>()?;
        Ok(Carry {
            inner: InnerCarry::new(names, states),
            steps: g
                .flags(&format!("{key}.steps"))?
                .iter()
                .map(|&s| s as u32)
                .collect(),
            halted: g
                .flags(&format!("{key}.halted"))?
                .iter()
                .map(|&h| h != 0)
                .collect(),
            examples: self.batch.clone(),
        })
    }

    /// One call's outputs: logits, halting and continue logits, the new states, HRM's
    /// continue target, then the halted flags and step counts (exactly).
    fn outputs(&self, key: &str, step: &StepOutput, next: &Carry) -> Result<Vec<Deviation>> {
        let (g, f) = (self.g, self.tol.forward);
        let mut out = vec![
            g.compare_recorded(&format!("{key}.logits"), &step.logits, f)?,
            g.compare_recorded(
                &format!("{key}.q_halt_logits"),
                &step.q_halt,
                self.tol.q_logits,
            )?,
            g.compare_recorded(
                &format!("{key}.q_continue_logits"),
                &step.q_continue,
                self.tol.q_logits,
            )?,
        ];
        for (name, state) in next.inner.names.iter().zip(&next.inner.states) {
            out.push(g.compare_recorded(&format!("{key}.{name}"), state, f)?);
        }
        let target = format!("{key}.target_q_continue");
        if let (Some(ours), Some(theirs)) = (&step.target_q_continue, g.tensors.get(&target)) {
            out.push(compare(&target, ours, theirs, f, 0.0)?);
        }
        out.push(g.compare_exact(
            &format!("{key}.halted"),
            next.halted.iter().map(|&h| h as i64).collect(),
        )?);
        out.push(g.compare_exact(
            &format!("{key}.steps"),
            next.steps.iter().map(|&s| s as i64).collect(),
        )?);
        Ok(out)
    }

    /// One call's loss and the official metrics.
    fn losses(&self, key: &str, loss: &LossOutput) -> Result<Vec<Deviation>> {
        let (g, tol, m) = (self.g, &self.tol, &loss.metrics);
        let metric = |name: &str| format!("{key}.metrics.{name}");
        let mut out = vec![
            g.compare_scalar(
                &format!("{key}.loss.total"),
                loss.total.to_scalar::<f64>()?,
                tol.loss,
            )?,
            g.compare_scalar(&metric("lm_loss"), m.lm_loss, tol.loss)?,
            g.compare_scalar(&metric("q_halt_loss"), m.q_halt_loss as f64, tol.q_loss)?,
        ];
        if let Some(c) = m.q_continue_loss {
            out.push(g.compare_scalar(&metric("q_continue_loss"), c as f64, tol.q_loss)?);
        }
        out.push(g.compare_scalar(&metric("accuracy"), m.accuracy as f64, tol.accuracy)?);
        for (name, value) in [
            ("count", m.count),
            ("exact_accuracy", m.exact_accuracy),
            ("q_halt_accuracy", m.q_halt_accuracy),
            ("steps", m.steps),
        ] {
            out.push(g.compare_scalar(&metric(name), value as f64, 0.0)?);
        }
        Ok(out)
    }

    /// The gradients of `loss` (the total over the batch size, as the official step) of
    /// every weight with a recorded gradient, and of the slots' puzzle-embedding rows.
    fn gradients(&self, step: &StepOutput, loss: &Tensor) -> Result<Vec<Deviation>> {
        let (g, rtol) = (self.g, self.tol.gradient);
        let grads = loss.backward()?;
        let mut out = Vec::new();
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
                rtol,
                0.0,
            )?);
        }
        let local = "grad.model.inner.puzzle_emb.local_weights";
        if let (Some(rows), Ok(reference)) = (&step.puzzle_rows, g.tensor(local)) {
            let ours = grads
                .get(rows.as_tensor())
                .cloned()
                .unwrap_or(rows.as_tensor().zeros_like()?);
            out.push(compare(local, &ours, reference, rtol, 0.0)?);
        }
        Ok(out)
    }
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
    let frame = model.frame();
    if let (Some(rotary), Some(cos), Some(sin)) = (
        &frame.rotary,
        g.tensors.get("debug.rope_cos"),
        g.tensors.get("debug.rope_sin"),
    ) {
        out.push(compare("debug.rope_cos", &rotary.cos, cos, rtol, 0.0)?);
        out.push(compare("debug.rope_sin", &rotary.sin, sin, rtol, 0.0)?);
    }
    let Some(expected_x) = g.tensors.get("debug.input_embeddings") else {
        return Ok(out);
    };
    let x = frame.input_embeddings(
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
    let Some(expected_first_l) = g.tensors.get("debug.first_L_level_out") else {
        return Ok(out);
    };
    // TRM's and HRM's first low-level update, from the fresh states.
    let (z_h, z_l) = frame.initial_carry(x.dim(0)?, x.dim(1)?)?.pair()?;
    let levels = model.levels();
    let rotary = frame.rotary.as_ref();
    let first_l = levels[0].forward(&z_l, &(&z_h + &x)?, rotary)?;
    out.push(compare(
        "debug.first_L_level_out",
        &first_l,
        expected_first_l,
        rtol,
        0.0,
    )?);
    if let (Some(h_level), Some(expected)) = (
        levels.get(1),
        g.tensors.get("debug.first_H_level_out_after_one_L"),
    ) {
        out.push(compare(
            "debug.first_H_level_out_after_one_L",
            &h_level.forward(&z_h, &first_l, rotary)?,
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
    let settings = OptimizerSettings::of(&g.raw_config)?;
    let mut out = adam_and_ema(g, &settings, rtol)?;
    if g.tensors.contains_key("unit_adam.p0") {
        out.extend(unit_adam(g, &settings.adam, rtol)?);
    }
    let table = g
        .varmap
        .data()
        .lock()
        .expect("varmap")
        .get("model.inner.puzzle_emb.weights")
        .cloned();
    if let Some(table) = table {
        out.extend(sign_sgd(g, table.as_tensor(), &settings, rtol)?);
    }
    if g.tensors.contains_key("unit_signsgd.weights0") {
        out.extend(unit_sign_sgd(g, &settings, rtol)?);
    }
    Ok(out)
}

/// The optimisers' settings of a golden run (`config.json`'s `optimizer`).
struct OptimizerSettings {
    adam: AdamAtan2Config,
    sign_lr: f64,
    sign_wd: f64,
    ema_rate: f64,
}

impl OptimizerSettings {
    fn of(cfg: &serde_json::Value) -> Result<Self> {
        let num = |v: &serde_json::Value, k: &str| {
            v[k].as_f64().ok_or_else(|| {
                candle_core::Error::msg(format!("config.json: optimizer field {k} missing"))
            })
        };
        let adam_json = &cfg["optimizer"]["adam_atan2"];
        let adam = AdamAtan2Config {
            lr: num(adam_json, "lr")?,
            weight_decay: num(adam_json, "weight_decay")?,
            beta1: num(adam_json, "beta1")?,
            beta2: num(adam_json, "beta2")?,
        };
        let sign_json = &cfg["optimizer"]["sparse_sign_sgd"];
        let (sign_lr, sign_wd) = (num(sign_json, "lr")?, num(sign_json, "weight_decay")?);
        Ok(OptimizerSettings {
            adam,
            sign_lr,
            sign_wd,
            ema_rate: num(&cfg["optimizer"]["ema"], "rate")?,
        })
    }
}

/// One AdamATan2 step of every weight with a recorded result, from its recorded gradient,
/// then the EMA of the weight towards the stepped one.
fn adam_and_ema(g: &Golden, settings: &OptimizerSettings, rtol: f64) -> Result<Vec<Deviation>> {
    let adam = &settings.adam;
    let mut out = Vec::new();
    let data = g.varmap.data().lock().expect("varmap");
    for (name, var) in data.iter() {
        let Some(expected) = g.tensors.get(&format!("adam.{name}")) else {
            continue;
        };
        let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let initial = p.clone();
        let mut state = Moments::zeros(p.len());
        let grad = g.f32_values(&format!("grad.{name}"))?;
        adam_atan2_step(adam, adam.lr, 1, &mut p, &grad, &mut state);
        let ours = Tensor::from_vec(p.clone(), expected.shape(), &g.device)?;
        out.push(compare(
            &format!("adam.{name}"),
            &ours,
            expected,
            rtol,
            0.0,
        )?);
        let mut shadow = initial;
        ema_update(&mut shadow, &p, settings.ema_rate);
        let expected_ema = g.tensor(&format!("ema.{name}"))?;
        out.push(compare(
            &format!("ema.{name}"),
            &Tensor::from_vec(shadow, expected_ema.shape(), &g.device)?,
            expected_ema,
            rtol,
            0.0,
        )?);
    }
    Ok(out)
}

/// Three AdamATan2 steps of the unit case: parameters and both moments after each.
fn unit_adam(g: &Golden, adam: &AdamAtan2Config, rtol: f64) -> Result<Vec<Deviation>> {
    let mut out = Vec::new();
    let mut p = g.f32_values("unit_adam.p0")?;
    let mut state = Moments::zeros(p.len());
    for t in 1..=3u64 {
        let grad = g.f32_values(&format!("unit_adam.g{t}"))?;
        adam_atan2_step(adam, adam.lr, t, &mut p, &grad, &mut state);
        for (what, ours) in [("p", &p), ("m", &state.m), ("v", &state.v)] {
            let name = format!("unit_adam.{what}{t}");
            let ours = Tensor::new(ours.as_slice(), &g.device)?;
            out.push(g.compare_recorded(&name, &ours, rtol)?);
        }
    }
    Ok(out)
}

/// Sparse sign-SGD of the puzzle table on the batch's recorded ids and row gradients: the
/// table after the step, the distinct ids and their summed gradients.
fn sign_sgd(
    g: &Golden,
    table: &Tensor,
    settings: &OptimizerSettings,
    rtol: f64,
) -> Result<Vec<Deviation>> {
    let (rows, width) = table.dims2()?;
    let mut w = table.flatten_all()?.to_vec1::<f32>()?;
    let ids = g.ids("puzzle_identifiers")?;
    let local = g.f32_values("grad.model.inner.puzzle_emb.local_weights")?;
    let (unique, summed) = sparse_sign_sgd_step(
        &mut w,
        width,
        &ids,
        &local,
        settings.sign_lr,
        settings.sign_wd,
    );
    let weights = Tensor::from_vec(w, (rows, width), &g.device)?;
    let mut out =
        vec![g.compare_recorded("signsgd.model.inner.puzzle_emb.weights", &weights, rtol)?];
    let expected_ids: Vec<i64> = g
        .ids("signsgd.grad_ids")?
        .iter()
        .map(|&i| i as i64)
        .collect();
    out.push(compare(
        "signsgd.grad_ids",
        &Tensor::new(
            unique.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            &g.device,
        )?,
        &Tensor::new(expected_ids, &g.device)?,
        0.0,
        0.0,
    )?);
    let expected_sum = g.tensor("signsgd.summed_grad")?;
    out.push(compare(
        "signsgd.summed_grad",
        &Tensor::from_vec(summed, expected_sum.shape(), &g.device)?,
        expected_sum,
        rtol,
        0.0,
    )?);
    Ok(out)
}

/// One sparse sign-SGD step of the unit case.
fn unit_sign_sgd(g: &Golden, settings: &OptimizerSettings, rtol: f64) -> Result<Vec<Deviation>> {
    let (rows, width) = g.tensor("unit_signsgd.weights0")?.dims2()?;
    let mut w = g.f32_values("unit_signsgd.weights0")?;
    sparse_sign_sgd_step(
        &mut w,
        width,
        &g.ids("unit_signsgd.ids")?,
        &g.f32_values("unit_signsgd.local_grad")?,
        settings.sign_lr,
        settings.sign_wd,
    );
    let weights = Tensor::from_vec(w, (rows, width), &g.device)?;
    Ok(vec![g.compare_recorded(
        "unit_signsgd.weights1",
        &weights,
        rtol,
    )?])
}
