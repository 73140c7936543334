//! The evaluation protocol, the same for every model: each test example runs all
//! `halt_max_steps` supervision steps (as the official evaluation does), and we keep the
//! prediction after every step, so the accuracy-against-inference-compute curve and the step
//! at which the model would have halted (by its own rule, `RecursiveModel::halts`) come from
//! the same pass.

use crate::train::ResolvedRun;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use datasets::arc::augment::ArcAugmentation;
use datasets::format::LoadedDataset;
use datasets::grid::Grid;
use datasets::loader::{test_batches, HostBatch};
use datasets::score::{self, ArcPrediction, ArcScores, Proportion};
use models::act::{initial_carry, Batch};
use models::model::RecursiveModel;
use models::trainer::Trainer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Scores of one model (one checkpoint) on a test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub examples: usize,
    /// Whole-sequence exact match after the last supervision step (the official metric).
    pub exact: Proportion,
    /// Supervised tokens right after the last step.
    pub token: Proportion,
    /// Exact accuracy after each supervision step 1..=halt_max_steps.
    pub exact_by_step: Vec<Proportion>,
    /// Mean step at which the model's halting rule first fires (TRM: q_halt > 0; HRM:
    /// q_halt > q_continue), halt_max_steps when it never does.
    pub mean_halting_step: f64,
    /// Exact accuracy of the answer at that step: what ACT inference would return.
    pub exact_at_halt: Proportion,
    /// Maze: the prediction marks a valid shortest path (any of them), beside exact match.
    pub maze_valid_path: Option<Proportion>,
    /// ARC: pass@k after de-augmenting and voting over all versions, for this checkpoint.
    pub arc: Option<ArcScores>,
}

/// What `evaluate` keeps beside the scores: the final prediction of every example, and for
/// ARC the votes' raw material.
pub struct EvalOutput {
    pub evaluation: Evaluation,
    pub predictions: Vec<Vec<u8>>,
    pub arc_predictions: Vec<ArcPrediction>,
}

pub fn to_batch(b: &HostBatch, device: &Device) -> Result<Batch> {
    Ok(Batch {
        inputs: Tensor::from_vec(b.inputs.clone(), (b.batch_size, b.seq_len), device)?,
        labels: Tensor::from_vec(b.labels.clone(), (b.batch_size, b.seq_len), device)?,
        puzzle_identifiers: Tensor::from_vec(b.puzzle_identifiers.clone(), b.batch_size, device)?,
    })
}

/// Runs the protocol on the first `max_examples` test examples (all when `None`).
pub fn evaluate(
    trainer: &Trainer,
    model: &dyn RecursiveModel,
    data: &LoadedDataset,
    task: &str,
    batch_size: usize,
    max_examples: Option<usize>,
) -> Result<EvalOutput> {
    let split = &data.data.test;
    let meta = data.metadata("test");
    let limit = max_examples.unwrap_or(usize::MAX).min(split.num_examples());
    let steps = model.config().halt_max_steps;
    let device = trainer.puzzle_table().as_tensor().device().clone();
    let mut correct_by_step = vec![0u64; steps];
    let (mut halt_step_sum, mut correct_at_halt) = (0u64, 0u64);
    let mut predictions: Vec<Vec<u8>> = Vec::with_capacity(limit);
    let mut halt_probability: Vec<f64> = Vec::with_capacity(limit);
    for host in test_batches(split, meta, batch_size) {
        let first = host.example_indices[0];
        if first >= limit {
            break;
        }
        let rows = host.effective.min(limit - first);
        let batch = to_batch(&host, &device)?;
        let mut carry = initial_carry(model, &batch)?;
        let mut halted_at: Vec<Option<usize>> = vec![None; rows];
        let mut answer_at_halt: Vec<bool> = vec![false; rows];
        let mut last = None;
        for (step, correct) in correct_by_step.iter_mut().enumerate() {
            let (next, out) = trainer.eval_step(model, &carry, &batch)?;
            for r in 0..rows {
                let labels = &host.labels[r * host.seq_len..(r + 1) * host.seq_len];
                let right = is_exact(&out.preds[r], labels);
                *correct += right as u64;
                let halts = model.halts(out.q_halt[r], out.q_continue[r]);
                if halted_at[r].is_none() && (halts || step + 1 == steps) {
                    halted_at[r] = Some(step + 1);
                    answer_at_halt[r] = right;
                }
            }
            carry = next;
            last = Some((out.q_halt, out.preds));
        }
        let (q_halt, preds) = last.context("halt_max_steps is at least 1")?;
        for r in 0..rows {
            halt_step_sum += halted_at[r].unwrap_or(steps) as u64;
            correct_at_halt += answer_at_halt[r] as u64;
            predictions.push(preds[r].iter().map(|&p| p as u8).collect());
            halt_probability.push(1.0 / (1.0 + (-(q_halt[r] as f64)).exp()));
        }
    }
    let n = predictions.len();
    let ignore = meta.ignore_label_id.map(|i| i as u8);
    // Test batches run in split order, so prediction e belongs to example e.
    let labels: Vec<&[u8]> = (0..n).map(|e| split.label(e)).collect();
    let (exact, token) = score::sequence_accuracy(&predictions, &labels, ignore);
    let maze_valid_path = (task == "maze-hard").then(|| {
        let inputs: Vec<&[u8]> = (0..n).map(|e| split.input(e)).collect();
        score::maze_valid_path_rate(&inputs, &predictions)
    });
    let (arc, arc_predictions) = if task.starts_with("arc-") {
        let preds = arc_predictions(data, &predictions, &halt_probability)?;
        let solutions = arc_solutions(data)?;
        (Some(score::score_arc(&preds, &solutions, &[1, 2])), preds)
    } else {
        (None, Vec::new())
    };
    Ok(EvalOutput {
        evaluation: Evaluation {
            examples: n,
            exact,
            token,
            exact_by_step: correct_by_step
                .iter()
                .map(|&c| score::wilson(c, n as u64))
                .collect(),
            mean_halting_step: halt_step_sum as f64 / n.max(1) as f64,
            exact_at_halt: score::wilson(correct_at_halt, n as u64),
            maze_valid_path,
            arc,
        },
        predictions,
        arc_predictions,
    })
}

/// Every supervised position of a sequence predicted right (ignored labels are `IGNORE_LABEL`).
fn is_exact(preds: &[u32], labels: &[i64]) -> bool {
    preds
        .iter()
        .zip(labels)
        .all(|(&p, &l)| l == models::act::IGNORE_LABEL || l == p as i64)
}

/// Evaluates a checkpoint file of `run` on the whole test split: ours (the full training
/// state, evaluated with the EMA weights where the recipe has them) or an official state dict
/// (the model as saved). Returns the output and whether EMA weights were used.
pub fn evaluate_checkpoint(
    run: &ResolvedRun,
    data: &LoadedDataset,
    path: &Path,
    device: &Device,
) -> Result<(EvalOutput, bool)> {
    let state = models::checkpoint::load_state_dict(path, device)?;
    let mut trainer = crate::train::new_trainer(run, device)?;
    let ours = state.contains_key("optim.step");
    if ours {
        trainer
            .restore(&state)
            .with_context(|| format!("restoring {}", path.display()))?;
    } else {
        trainer
            .load_weights(&state)
            .with_context(|| format!("loading {}", path.display()))?;
    }
    let use_ema = ours && run.config.train.ema;
    let model = trainer.inference_model(&run.model_config, run.config.kind(), use_ema)?;
    let out = evaluate(
        &trainer,
        model.as_ref(),
        data,
        &run.config.task,
        run.config.eval.batch_size,
        None,
    )?;
    Ok((out, use_ema))
}

/// Each ARC test example is one test input of one version (puzzle) of an evaluation task; the
/// version's name says which task and augmentation.
fn arc_predictions(
    data: &LoadedDataset,
    predictions: &[Vec<u8>],
    halt_probability: &[f64],
) -> Result<Vec<ArcPrediction>> {
    let split = &data.data.test;
    let puzzle_of = split.example_puzzles();
    let mut out = Vec::with_capacity(predictions.len());
    for (e, canvas) in predictions.iter().enumerate() {
        let puzzle = puzzle_of[e];
        let id = split.puzzle_identifiers[puzzle] as usize;
        let name = data.data.identifiers.get(id).with_context(|| {
            format!(
                "{}: test puzzle {puzzle} has identifier {id}, beyond identifiers.json",
                data.dir.display()
            )
        })?;
        let (task, augmentation) = ArcAugmentation::parse_name(name).with_context(|| {
            format!(
                "{}: identifier {id} ({name:?}) is not an ARC version name",
                data.dir.display()
            )
        })?;
        out.push(ArcPrediction {
            task,
            test_index: e - split.puzzle_examples(puzzle).start,
            augmentation,
            canvas: canvas.clone(),
            halt_probability: halt_probability[e],
        });
    }
    Ok(out)
}

/// The true outputs of every evaluation task's test inputs (`test_puzzles.json`).
pub fn arc_solutions(data: &LoadedDataset) -> Result<BTreeMap<String, Vec<Grid>>> {
    let path = data.dir.join("test_puzzles.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let tasks: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    let mut out = BTreeMap::new();
    for (id, task) in &tasks {
        let tests = task
            .get("test")
            .and_then(|t| t.as_array())
            .with_context(|| format!("{}: task {id} has no test list", path.display()))?;
        let mut grids = Vec::with_capacity(tests.len());
        for (i, pair) in tests.iter().enumerate() {
            let place = format!("task {id}, test {i}, output");
            let output = pair
                .get("output")
                .with_context(|| format!("{}: {place} is missing", path.display()))?;
            grids.push(datasets::arc::parse_grid(output, &path, &place)?);
        }
        out.insert(id.clone(), grids);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tiny_data;
    use models::model::ModelKind;

    fn trainer(kind: ModelKind, q_bias: [f32; 2]) -> (Trainer, models::config::ModelConfig) {
        let preset = crate::config::Preset::load("smoke").unwrap();
        let model = if kind == ModelKind::Hrm {
            "hrm"
        } else {
            "trm-att"
        };
        let cfg = preset
            .resolve("maze-hard", model, &["arch.halt_max_steps=3".into()])
            .unwrap();
        let arch = cfg.model_config(4, 6, 1).unwrap();
        let device = Device::Cpu;
        let trainer = crate::train::new_trainer(
            &crate::train::ResolvedRun {
                config: cfg,
                model_config: arch.clone(),
                total_steps: 1,
                dataset_dir: "tiny".into(),
                dataset_hash: "none".into(),
                code_version: "test".into(),
            },
            &device,
        )
        .unwrap();
        // The halting head starts at weight 0, so its logits are exactly its bias.
        let bias = trainer
            .varmap
            .data()
            .lock()
            .unwrap()
            .get("model.inner.q_head.bias")
            .unwrap()
            .clone();
        bias.set(&Tensor::new(&q_bias, &device).unwrap()).unwrap();
        (trainer, arch)
    }

    #[test]
    fn each_model_halts_by_its_own_rule() {
        let data = tiny_data();
        // q_halt = -1 < 0 but > q_continue = -3: HRM halts at once, TRM never does.
        for (kind, expected) in [(ModelKind::Hrm, 1.0), (ModelKind::Trm, 3.0)] {
            let (trainer, arch) = trainer(kind, [-1.0, -3.0]);
            let model = trainer.inference_model(&arch, kind, false).unwrap();
            let out = evaluate(&trainer, model.as_ref(), &data, "sudoku-extreme", 2, None).unwrap();
            assert_eq!(out.evaluation.mean_halting_step, expected, "{kind:?}");
        }
    }
}
