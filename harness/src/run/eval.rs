//! The evaluation protocol, the same for every model: each test example runs all
//! `halt_max_steps` supervision steps (as the official evaluation does), and we keep the
//! prediction after every step, so the step at which the model would have halted (by its own
//! rule, `RecursiveModel::halts`) and the test-time compute curve come from the same pass.
//! Test-time budgets beyond the trained `halt_max_steps` continue the same recursion (the
//! carry is never reset), with halting off (every example runs the whole budget) and on
//! (each stops where its model's rule first fires).

use crate::run::answer_rules::{score_rules, RuleScore, StepOutcome};
use crate::run::bits::{ExampleBits, PerExample};
use crate::run::resolve::ResolvedRun;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use datasets::arc::augment::ArcAugmentation;
use datasets::format::{LoadedDataset, Metadata, Split};
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
    /// Whole-sequence exact match after the last trained supervision step (the official
    /// metric).
    pub exact: Proportion,
    /// Supervised tokens right after the last trained step.
    pub token: Proportion,
    /// Mean step at which the model's halting rule first fires (TRM: q_halt > 0; HRM:
    /// q_halt > q_continue), halt_max_steps when it never does.
    pub mean_halting_step: f64,
    /// Exact accuracy of the answer at that step: what ACT inference would return.
    pub exact_at_halt: Proportion,
    /// Maze: the prediction marks a valid shortest path (any of them), beside exact match.
    pub maze_valid_path: Option<Proportion>,
    /// ARC: pass@k after de-augmenting and voting over all versions, for this checkpoint.
    pub arc: Option<ArcScores>,
    /// Accuracy at each test-time budget of supervision steps, the trained one included.
    pub test_time: Vec<TestTimePoint>,
    /// Which examples were right, for paired statistics.
    pub per_example: PerExample,
    /// Each answer-selection rule's accuracy on the trained steps (none in records made
    /// before the rules were scored).
    #[serde(default)]
    pub answer_rules: Vec<RuleScore>,
}

/// Accuracy when inference may run `steps` supervision steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestTimePoint {
    pub steps: usize,
    /// Halting off: every example runs all `steps`.
    pub exact: Proportion,
    pub inference_flops_per_puzzle: f64,
    /// Halting on: each example stops at its model's halting rule, or at `steps`.
    pub exact_halting: Proportion,
    pub mean_steps_halting: f64,
    pub inference_flops_per_puzzle_halting: f64,
}

/// The split an evaluation reads. Every choice (the learning curve a user watches, which
/// configuration of a sweep is best) reads the validation split; test is scored once, at the
/// end, at the checkpoint fixed in advance (the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    Validation,
    Test,
}

impl EvalSplit {
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Validation => "validation",
            EvalSplit::Test => "test",
        }
    }

    /// The split's examples and metadata in `data`; a directory without a validation split
    /// (the official builders') has none to give.
    pub fn of(self, data: &LoadedDataset) -> Result<(&Split, &Metadata)> {
        match self {
            EvalSplit::Test => Ok((&data.data.test, &data.test_metadata)),
            EvalSplit::Validation => data.val().with_context(|| {
                format!(
                    "{} has no validation split (val/); rebuild it with this version of `harness data build`",
                    data.dir.display()
                )
            }),
        }
    }

    /// ARC: the file holding the true outputs of the split's tasks.
    fn arc_solutions_file(self) -> &'static str {
        match self {
            EvalSplit::Validation => "val_puzzles.json",
            EvalSplit::Test => "test_puzzles.json",
        }
    }
}

/// One evaluation of a run: on the validation split during training and at the end, on
/// the test split once, at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: u64,
    /// Runs saved before the validation split evaluated test during training.
    #[serde(default = "test_split")]
    pub split: EvalSplit,
    pub wall_seconds: f64,
    pub evaluation: Evaluation,
}

fn test_split() -> EvalSplit {
    EvalSplit::Test
}

/// When in a run an evaluation happens, which decides its split and extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Every `eval_interval` steps: the first `eval.max_examples_during_training` examples
    /// of the validation split.
    DuringTraining,
    /// The last checkpoint on the whole validation split, at the trained budget.
    FinalValidation,
    /// The last checkpoint on the whole test split, at every test-time budget.
    FinalTest,
}

impl Stage {
    pub fn split(self) -> EvalSplit {
        match self {
            Stage::DuringTraining | Stage::FinalValidation => EvalSplit::Validation,
            Stage::FinalTest => EvalSplit::Test,
        }
    }
}

/// How one evaluation runs.
pub struct Protocol<'a> {
    pub task: &'a str,
    pub split: EvalSplit,
    pub batch_size: usize,
    /// The first this many test examples (all when `None`).
    pub max_examples: Option<usize>,
    /// Test-time budgets to score beside the trained `halt_max_steps`.
    pub test_time_steps: &'a [usize],
    /// Matmul FLOPs of one supervision step of one puzzle.
    pub flops_per_step: f64,
    /// The headline answer: at the model's own halting step (capped at `halt_max_steps`)
    /// instead of after every supervision step, the official evaluation (`eval.halting`).
    pub halting: bool,
}

impl<'a> Protocol<'a> {
    /// The protocol of `run`'s evaluation at `stage`.
    pub fn of(run: &'a ResolvedRun, stage: Stage) -> Self {
        let cfg = &run.config;
        Protocol {
            task: &cfg.task,
            split: stage.split(),
            batch_size: cfg.eval.batch_size,
            max_examples: (stage == Stage::DuringTraining)
                .then_some(cfg.eval.max_examples_during_training)
                .flatten(),
            test_time_steps: if stage == Stage::FinalTest {
                &cfg.eval.test_time_steps
            } else {
                &[]
            },
            flops_per_step: models::flops::step_flops(&run.model_config, cfg.kind()).eval_step,
            halting: cfg.eval.halting,
        }
    }
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

/// What one pass over the test examples (or one rank's share of them) saw: for each example,
/// whether it was right after each step, and the first step at which the model's rule said
/// halt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepwiseOutcomes {
    /// The split index of each entry (in split order after `merge`).
    examples: Vec<usize>,
    /// Whether each example was exactly right after each supervision step (every budget).
    right: Vec<Vec<bool>>,
    /// Each example's outcome after each trained supervision step (what the answer rules
    /// read; test-time steps past them keep only `right`).
    steps: Vec<Vec<StepOutcome>>,
    first_halt: Vec<Option<usize>>,
    /// The answers: predictions and sigmoid(q_halt) after the trained number of steps, or
    /// at the halting step when the protocol halts.
    predictions: Vec<Vec<u8>>,
    halt_probability: Vec<f64>,
}

impl StepwiseOutcomes {
    /// The ranks' passes as one, in split order; every example of `0..limit` exactly once.
    pub fn merge(parts: Vec<StepwiseOutcomes>, limit: usize) -> Result<StepwiseOutcomes> {
        let mut slots: Vec<Option<StepwiseOutcomes>> = vec![None; limit];
        for p in parts {
            let lengths = [
                p.right.len(),
                p.steps.len(),
                p.first_halt.len(),
                p.predictions.len(),
                p.halt_probability.len(),
            ];
            if lengths.iter().any(|&n| n != p.examples.len()) {
                anyhow::bail!("an evaluation shard's lists differ in length");
            }
            for (k, &e) in p.examples.iter().enumerate() {
                let slot = slots.get_mut(e).filter(|s| s.is_none()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the evaluation shards do not hold test example {e} exactly once"
                    )
                })?;
                *slot = Some(StepwiseOutcomes {
                    examples: vec![e],
                    right: vec![p.right[k].clone()],
                    steps: vec![p.steps[k].clone()],
                    first_halt: vec![p.first_halt[k]],
                    predictions: vec![p.predictions[k].clone()],
                    halt_probability: vec![p.halt_probability[k]],
                });
            }
        }
        let mut pass = StepwiseOutcomes::with_capacity(limit);
        for (e, slot) in slots.into_iter().enumerate() {
            let one = slot.ok_or_else(|| {
                anyhow::anyhow!("the evaluation shards do not hold test example {e} exactly once")
            })?;
            pass.examples.extend(one.examples);
            pass.right.extend(one.right);
            pass.steps.extend(one.steps);
            pass.first_halt.extend(one.first_halt);
            pass.predictions.extend(one.predictions);
            pass.halt_probability.extend(one.halt_probability);
        }
        Ok(pass)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    fn with_capacity(n: usize) -> StepwiseOutcomes {
        StepwiseOutcomes {
            examples: Vec::with_capacity(n),
            right: Vec::with_capacity(n),
            steps: Vec::with_capacity(n),
            first_halt: Vec::with_capacity(n),
            predictions: Vec::with_capacity(n),
            halt_probability: Vec::with_capacity(n),
        }
    }

    /// The step at which an example stops under halting with a budget of `steps`.
    fn stop(&self, e: usize, steps: usize) -> usize {
        self.first_halt[e].map_or(steps, |h| h.min(steps))
    }

    fn bits(&self, f: impl Fn(usize) -> bool) -> ExampleBits {
        ExampleBits((0..self.right.len()).map(f).collect())
    }

    /// Whether example `e` was exactly right after `step` (1-based) supervision steps.
    fn exact(&self, e: usize, step: usize) -> bool {
        self.right[e][step - 1]
    }

    /// Every answer-selection rule over the trained steps.
    fn answer_rules(&self, trained: usize, flops_per_step: f64) -> Vec<RuleScore> {
        let examples: Vec<(&[StepOutcome], Option<usize>)> = self
            .steps
            .iter()
            .zip(&self.first_halt)
            .map(|(steps, &halt)| (&steps[..trained.min(steps.len())], halt))
            .collect();
        score_rules(&examples, flops_per_step)
    }

    fn point(&self, steps: usize, flops_per_step: f64) -> TestTimePoint {
        let n = self.right.len();
        let count = |bits: ExampleBits| bits.0.iter().filter(|&&b| b).count() as u64;
        let off = count(self.bits(|e| self.exact(e, steps)));
        let on = count(self.bits(|e| self.exact(e, self.stop(e, steps))));
        let mean_steps =
            (0..n).map(|e| self.stop(e, steps)).sum::<usize>() as f64 / n.max(1) as f64;
        TestTimePoint {
            steps,
            exact: score::wilson(off, n as u64),
            inference_flops_per_puzzle: steps as f64 * flops_per_step,
            exact_halting: score::wilson(on, n as u64),
            mean_steps_halting: mean_steps,
            inference_flops_per_puzzle_halting: mean_steps * flops_per_step,
        }
    }
}

/// The test examples a protocol runs, and its budgets of supervision steps (the trained
/// one among them), in ascending order.
fn extent(protocol: &Protocol, split: &Split, trained: usize) -> (usize, Vec<usize>) {
    let limit = protocol
        .max_examples
        .unwrap_or(usize::MAX)
        .min(split.num_examples());
    let mut budgets: Vec<usize> = protocol
        .test_time_steps
        .iter()
        .copied()
        .chain([trained])
        .filter(|&s| s >= 1)
        .collect();
    budgets.sort_unstable();
    budgets.dedup();
    (limit, budgets)
}

/// Rank `shard.0` of `shard.1`'s share of the protocol's pass: test batches `rank`,
/// `rank + world`, ... for the largest budget.
pub fn run_shard(
    trainer: &Trainer,
    model: &dyn RecursiveModel,
    data: &LoadedDataset,
    protocol: &Protocol,
    shard: (usize, usize),
) -> Result<StepwiseOutcomes> {
    let (split, _) = protocol.split.of(data)?;
    let (limit, budgets) = extent(protocol, split, model.config().halt_max_steps);
    let max_steps = *budgets.last().context("halt_max_steps is at least 1")?;
    run_pass(trainer, model, data, limit, protocol, max_steps, shard)
}

/// Runs this shard's batches of the test split for `max_steps` supervision steps.
fn run_pass(
    trainer: &Trainer,
    model: &dyn RecursiveModel,
    data: &LoadedDataset,
    limit: usize,
    protocol: &Protocol,
    max_steps: usize,
    (rank, world): (usize, usize),
) -> Result<StepwiseOutcomes> {
    let (split, meta) = protocol.split.of(data)?;
    let trained = model.config().halt_max_steps;
    let halting = protocol.halting;
    let device = trainer.puzzle_table().as_tensor().device().clone();
    let mut pass = StepwiseOutcomes::with_capacity(limit.div_ceil(world.max(1)));
    let batches = test_batches(split, meta, protocol.batch_size);
    for (index, host) in batches.enumerate() {
        let first = host.example_indices[0];
        if first >= limit {
            break;
        }
        if index % world.max(1) != rank {
            continue;
        }
        let rows = host.real_rows.min(limit - first);
        let batch = to_batch(&host, &device)?;
        let mut carry = initial_carry(model, &batch)?;
        let mut right = vec![Vec::with_capacity(max_steps); rows];
        let mut steps = vec![Vec::with_capacity(trained); rows];
        let mut first_halt = vec![None; rows];
        let mut answers: Vec<Option<(Vec<u8>, f64)>> = vec![None; rows];
        for step in 1..=max_steps {
            let (mut next, out) = trainer.eval_step(model, &carry, &batch)?;
            for r in 0..rows {
                let labels = &host.labels[r * host.seq_len..(r + 1) * host.seq_len];
                right[r].push(is_exact(&out.preds[r], labels));
                if step <= trained {
                    let input = split.input(host.example_indices[r]);
                    steps[r].push(step_outcome(model, protocol.task, input, labels, &out, r));
                }
                if first_halt[r].is_none() && model.halts(out.q_halt[r], out.q_continue[r]) {
                    first_halt[r] = Some(step);
                }
                let halted_now = halting && first_halt[r] == Some(step);
                if answers[r].is_none() && step <= trained && (step == trained || halted_now) {
                    let probability = 1.0 / (1.0 + (-(out.q_halt[r] as f64)).exp());
                    answers[r] =
                        Some((out.preds[r].iter().map(|&p| p as u8).collect(), probability));
                }
            }
            // Past the trained budget every slot counts as halted and would restart from the
            // initial state; test-time compute continues the recursion instead.
            next.halted.iter_mut().for_each(|h| *h = false);
            carry = next;
        }
        for (prediction, probability) in answers.into_iter().flatten() {
            pass.predictions.push(prediction);
            pass.halt_probability.push(probability);
        }
        pass.examples.extend(&host.example_indices[..rows]);
        pass.right.extend(right);
        pass.steps.extend(steps);
        pass.first_halt.extend(first_halt);
    }
    Ok(pass)
}

/// Runs the protocol with `model`'s weights.
pub fn evaluate(
    trainer: &Trainer,
    model: &dyn RecursiveModel,
    data: &LoadedDataset,
    protocol: &Protocol,
) -> Result<EvalOutput> {
    let pass = run_shard(trainer, model, data, protocol, (0, 1))?;
    score_pass(pass, model, data, protocol)
}

/// The scores of a whole pass (one rank's, or the ranks' merged).
pub fn score_pass(
    pass: StepwiseOutcomes,
    model: &dyn RecursiveModel,
    data: &LoadedDataset,
    protocol: &Protocol,
) -> Result<EvalOutput> {
    let (split, meta) = protocol.split.of(data)?;
    let trained = model.config().halt_max_steps;
    let (_, budgets) = extent(protocol, split, trained);
    let answer_step = |e: usize| {
        if protocol.halting {
            pass.stop(e, trained)
        } else {
            trained
        }
    };
    let n = pass.predictions.len();
    let predictions = &pass.predictions;
    let ignore = meta.ignore_label_id.map(|i| i as u8);
    // Test batches run in split order, so prediction e belongs to example e.
    let labels: Vec<&[u8]> = (0..n).map(|e| split.label(e)).collect();
    let (exact, token) = score::sequence_accuracy(predictions, &labels, ignore);
    let valid_path_bits = (protocol.task == "maze-hard").then(|| {
        let inputs: Vec<&[u8]> = (0..n).map(|e| split.input(e)).collect();
        ExampleBits(score::maze_valid_paths(&inputs, predictions))
    });
    let (arc, arc_predictions) = if protocol.task.starts_with("arc-") {
        let preds = arc_predictions(data, split, predictions, &pass.halt_probability)?;
        let mut solutions = arc_solutions(data, protocol.split)?;
        if n < split.num_examples() {
            keep_covered_tasks(&mut solutions, &preds);
        }
        (Some(score::score_arc(&preds, &solutions, &[1, 2])), preds)
    } else {
        (None, Vec::new())
    };
    let at_trained = pass.point(trained, protocol.flops_per_step);
    let per_example = PerExample {
        exact: pass.bits(|e| pass.exact(e, answer_step(e))),
        exact_at_halt: pass.bits(|e| pass.exact(e, pass.stop(e, trained))),
        maze_valid_path: valid_path_bits.clone(),
    };
    let evaluation = Evaluation {
        examples: n,
        exact,
        token,
        mean_halting_step: at_trained.mean_steps_halting,
        exact_at_halt: at_trained.exact_halting,
        maze_valid_path: valid_path_bits
            .map(|b| score::wilson(b.0.iter().filter(|&&v| v).count() as u64, n as u64)),
        arc,
        test_time: budgets
            .iter()
            .map(|&s| pass.point(s, protocol.flops_per_step))
            .collect(),
        per_example,
        answer_rules: pass.answer_rules(trained, protocol.flops_per_step),
    };
    Ok(EvalOutput {
        evaluation,
        predictions: pass.predictions,
        arc_predictions,
    })
}

/// A partial evaluation (the first examples of a split, during training) scores the tasks
/// whose every test input it predicted, rather than counting the others as failed.
fn keep_covered_tasks(solutions: &mut BTreeMap<String, Vec<Grid>>, preds: &[ArcPrediction]) {
    let seen: std::collections::HashSet<(&str, usize)> = preds
        .iter()
        .map(|p| (p.task.as_str(), p.test_index))
        .collect();
    solutions
        .retain(|task, outputs| (0..outputs.len()).all(|i| seen.contains(&(task.as_str(), i))));
}

/// Row `r` of one evaluation step: right or not (exactly, and by the task's per-example
/// headline), the halting margin, and a key of the answer for majority voting.
fn step_outcome(
    model: &dyn RecursiveModel,
    task: &str,
    input: &[u8],
    labels: &[i64],
    out: &models::trainer::EvalStep,
    r: usize,
) -> StepOutcome {
    let exact = is_exact(&out.preds[r], labels);
    let headline = if task == "maze-hard" {
        let predicted: Vec<u8> = out.preds[r].iter().map(|&p| p as u8).collect();
        datasets::maze::is_valid_shortest_path(input, &predicted)
    } else {
        exact
    };
    StepOutcome {
        exact,
        headline,
        halt_margin: model.halt_margin(out.q_halt[r], out.q_continue[r]),
        answer: answer_key(&out.preds[r], labels),
    }
}

/// A key of the answer for majority voting: SipHash with fixed keys, so the same answer gives
/// the same key in every run, over the supervised positions only (ARC's padding around the
/// grid is not the answer, as `is_exact` does not read it).
fn answer_key(preds: &[u32], labels: &[i64]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    for (p, &l) in preds.iter().zip(labels) {
        if l != models::act::IGNORE_LABEL {
            p.hash(&mut hasher);
        }
    }
    hasher.finish()
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
/// (the model as saved), scoring also the test-time budgets `test_time_steps`. Returns the
/// output and whether EMA weights were used.
pub fn evaluate_checkpoint(
    run: &ResolvedRun,
    data: &LoadedDataset,
    path: &Path,
    device: &Device,
    test_time_steps: &[usize],
) -> Result<(EvalOutput, bool)> {
    let state = models::checkpoint::load_state_dict(path, device)?;
    let mut trainer = crate::run::resolve::new_trainer(run, device)?;
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
    let protocol = Protocol {
        test_time_steps,
        ..Protocol::of(run, Stage::FinalTest)
    };
    let out = evaluate(&trainer, model.as_ref(), data, &protocol)?;
    Ok((out, use_ema))
}

/// Each ARC test example is one test input of one version (puzzle) of an evaluation task; the
/// version's name says which task and augmentation.
fn arc_predictions(
    data: &LoadedDataset,
    split: &Split,
    predictions: &[Vec<u8>],
    halt_probability: &[f64],
) -> Result<Vec<ArcPrediction>> {
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

/// The true outputs of the test inputs of every task of `which` split (`test_puzzles.json`:
/// the evaluation tasks; `val_puzzles.json`: the validation tasks).
pub fn arc_solutions(
    data: &LoadedDataset,
    which: EvalSplit,
) -> Result<BTreeMap<String, Vec<Grid>>> {
    let path = data.dir.join(which.arc_solutions_file());
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

    fn trainer(
        kind: ModelKind,
        q_bias: [f32; 2],
        steps: usize,
    ) -> (Trainer, models::config::ModelConfig) {
        let preset = crate::run::config::Preset::load("smoke").unwrap();
        let model = if kind == ModelKind::Hrm {
            "hrm"
        } else {
            "trm-att"
        };
        let cfg = preset
            .resolve(
                "maze-hard",
                model,
                &[format!("arch.halt_max_steps={steps}")],
            )
            .unwrap();
        let arch = cfg.model_config(4, 6, 1).unwrap();
        let device = Device::Cpu;
        let trainer = crate::run::resolve::new_trainer(
            &crate::run::resolve::ResolvedRun {
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
            let (trainer, arch) = trainer(kind, [-1.0, -3.0], 3);
            let model = trainer.inference_model(&arch, kind, false).unwrap();
            let protocol = Protocol {
                task: "sudoku-extreme",
                split: EvalSplit::Test,
                batch_size: 2,
                max_examples: None,
                test_time_steps: &[1, 6],
                flops_per_step: 10.0,
                halting: false,
            };
            let out = evaluate(&trainer, model.as_ref(), &data, &protocol).unwrap();
            let e = &out.evaluation;
            assert_eq!(e.mean_halting_step, expected, "{kind:?}");
            let budgets: Vec<(usize, f64, f64)> = e
                .test_time
                .iter()
                .map(|p| (p.steps, p.mean_steps_halting, p.inference_flops_per_puzzle))
                .collect();
            // HRM stops at step 1 whatever the budget; TRM runs every step it is given.
            let halting_steps = |s: usize| {
                if kind == ModelKind::Hrm {
                    1.0
                } else {
                    s as f64
                }
            };
            assert_eq!(
                budgets,
                [1, 3, 6].map(|s| (s, halting_steps(s), 10.0 * s as f64)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn rank_shards_merge_to_the_one_rank_evaluation() {
        let data = tiny_data();
        let (trainer, arch) = trainer(ModelKind::Trm, [0.5, -3.0], 3);
        let model = trainer
            .inference_model(&arch, ModelKind::Trm, false)
            .unwrap();
        let protocol = Protocol {
            task: "sudoku-extreme",
            split: EvalSplit::Test,
            batch_size: 1,
            max_examples: None,
            test_time_steps: &[1, 6],
            flops_per_step: 10.0,
            halting: false,
        };
        let whole = run_shard(&trainer, model.as_ref(), &data, &protocol, (0, 1)).unwrap();
        let n = whole.len();
        assert!(n >= 2, "the tiny split has {n} examples");
        for world in [2, 3] {
            let parts: Vec<StepwiseOutcomes> = (0..world)
                .map(|r| run_shard(&trainer, model.as_ref(), &data, &protocol, (r, world)).unwrap())
                .collect();
            assert!(
                parts.iter().all(|p| p.len() < n),
                "a shard ran every example"
            );
            // Through the shard files' format.
            let parts = parts
                .into_iter()
                .map(|p| serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap())
                .collect();
            assert_eq!(
                StepwiseOutcomes::merge(parts, n).unwrap(),
                whole,
                "{world} ranks"
            );
        }
        let one = run_shard(&trainer, model.as_ref(), &data, &protocol, (0, 2)).unwrap();
        let err = StepwiseOutcomes::merge(vec![one], n)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly once"), "{err}");
    }

    #[test]
    fn a_partial_arc_evaluation_scores_only_the_tasks_it_covered() {
        let grid = Grid::new(1, 1, vec![1]);
        let mut solutions: BTreeMap<String, Vec<Grid>> = [
            ("a".to_string(), vec![grid.clone(), grid.clone()]),
            ("b".to_string(), vec![grid.clone()]),
            ("c".to_string(), vec![grid]),
        ]
        .into();
        let prediction = |task: &str, test_index: usize| ArcPrediction {
            task: task.into(),
            test_index,
            augmentation: ArcAugmentation::identity(),
            canvas: vec![],
            halt_probability: 0.5,
        };
        // Task a is cut after its first input, b is whole, c was never reached.
        keep_covered_tasks(&mut solutions, &[prediction("a", 0), prediction("b", 0)]);
        assert_eq!(solutions.keys().collect::<Vec<_>>(), ["b"]);
    }

    /// Two steps whose supervised tokens agree give one answer whatever they predict in the
    /// padding; a different supervised token gives another.
    #[test]
    fn the_answer_key_reads_the_supervised_positions_only() {
        let ignore = models::act::IGNORE_LABEL;
        let labels = [3i64, ignore, 4, ignore];
        let key = |preds: [u32; 4]| answer_key(&preds, &labels);
        assert_eq!(key([3, 0, 4, 0]), key([3, 7, 4, 9]));
        assert_ne!(key([3, 0, 4, 0]), key([3, 0, 5, 0]));
    }

    #[test]
    fn halting_at_inference_answers_at_the_halting_step() {
        let data = tiny_data();
        // HRM halts at step 1 (q_halt > q_continue). Initial weights depend only on names, so
        // a model trained for 1 step and one for 3 share them.
        let answers = |steps: usize, halting: bool| {
            let (trainer, arch) = trainer(ModelKind::Hrm, [-1.0, -3.0], steps);
            let model = trainer
                .inference_model(&arch, ModelKind::Hrm, false)
                .unwrap();
            let protocol = Protocol {
                task: "sudoku-extreme",
                split: EvalSplit::Test,
                batch_size: 2,
                max_examples: None,
                test_time_steps: &[],
                flops_per_step: 10.0,
                halting,
            };
            evaluate(&trainer, model.as_ref(), &data, &protocol)
                .unwrap()
                .predictions
        };
        let (every_step, halting, one_step) =
            (answers(3, false), answers(3, true), answers(1, false));
        assert_ne!(
            every_step, one_step,
            "steps 1 and 3 must answer differently for this test to mean anything"
        );
        assert_eq!(halting, one_step);
    }
}
