//! `harness train`: the official training loop. One persistent ACT batch; each optimizer step
//! is one supervision step of every slot, with halted slots refilled from the next batch of
//! the sampler (one random version per group per pass). Evaluation, with the EMA weights where
//! the recipe has them, and a checkpoint every `eval_interval` steps; Ctrl-C saves and exits.
//!
//! A run directory holds `config.json` (the resolved config, the derived architecture and
//! step count, and the dataset's manifest hash), `metrics.csv` (training), `eval.csv` (one row
//! per evaluation), `checkpoints/step_N.safetensors` (full state: weights, moments, EMA,
//! carry), `state.json` (sampler and random streams, eval history) and, at the end,
//! `scores.json` and `predictions.npy`.

use crate::config::RunConfig;
use crate::eval::{evaluate, to_batch, Evaluation};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use datasets::format::{read_json, write_json, LoadedDataset};
use datasets::loader::{SamplerState, TrainSampler};
use datasets::sample::{stream_rng, RngState};
use datasets::score::ArcPrediction;
use indicatif::{ProgressBar, ProgressStyle};
use models::config::ModelConfig;
use models::optim::{lr_multiplier, AdamAtan2Config};
use models::trainer::{OptimConfig, Trainer};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub const CONFIG_FILE: &str = "config.json";
const STATE_FILE: &str = "state.json";
pub const SCORES_FILE: &str = "scores.json";

/// What a run directory records about its setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedRun {
    pub config: RunConfig,
    pub model_config: ModelConfig,
    pub total_steps: u64,
    pub dataset_dir: PathBuf,
    pub dataset_hash: String,
}

/// One evaluation during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: u64,
    pub wall_seconds: f64,
    pub evaluation: Evaluation,
}

const ARC_PREDICTIONS_DIR: &str = "arc_predictions";

/// ARC: each evaluation's predictions are written once, to `arc_predictions/step_N.json`,
/// for the scoring pooled over checkpoints (kept out of `state.json`, which every save
/// rewrites).
fn save_arc_predictions(run_dir: &Path, step: u64, predictions: &[ArcPrediction]) -> Result<()> {
    let dir = run_dir.join(ARC_PREDICTIONS_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("step_{step}.json"));
    let tmp = path.with_extension("json.tmp");
    write_json(&tmp, &predictions)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// ARC pass@k with the votes of every evaluation of the run pooled, as the official
/// evaluator does (evaluations during training may cover a subset of the test inputs).
pub fn pooled_arc_scores(
    run_dir: &Path,
    dataset_dir: &Path,
) -> Result<Option<datasets::score::ArcScores>> {
    let dir = run_dir.join(ARC_PREDICTIONS_DIR);
    if !dir.exists() {
        return Ok(None);
    }
    let mut pooled: Vec<ArcPrediction> = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let predictions: Vec<ArcPrediction> = read_json(&path)?;
            pooled.extend(predictions);
        }
    }
    let solutions = crate::eval::arc_solutions_for(dataset_dir)?;
    Ok(Some(datasets::score::score_arc(
        &pooled,
        &solutions,
        &[1, 2],
    )))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    step: u64,
    sampler: SamplerState,
    exploration: RngState,
    wall_seconds: f64,
    evals: Vec<EvalPoint>,
    /// Training metrics summed since the last `metrics.csv` row.
    pending: MetricSums,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MetricSums {
    steps: u64,
    count: f64,
    accuracy: f64,
    exact: f64,
    halt_steps: f64,
    lm_loss: f64,
    q_halt_loss: f64,
}

/// How a training run ended.
pub struct TrainOutcome {
    pub run: ResolvedRun,
    pub completed: bool,
    pub steps: u64,
    pub wall_seconds: f64,
    pub evals: Vec<EvalPoint>,
    /// The final full evaluation (present when completed).
    pub final_eval: Option<Evaluation>,
}

pub struct TrainOptions {
    pub resume: bool,
    /// Print one line per evaluation (besides the progress bar).
    pub verbose: bool,
    pub device: Device,
    /// Save and stop after this step, as Ctrl-C would (to train in chunks, or to test resume).
    pub stop_after: Option<u64>,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ctrl-C asks the loop to save and stop; a second Ctrl-C kills at once.
#[cfg(unix)]
fn install_interrupt_handler() {
    extern "C" fn on_sigint(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        // SAFETY: signal() is async-signal-safe; restoring the default makes a second Ctrl-C
        // terminate the process.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
        }
    }
    // SAFETY: installs a handler that only stores an atomic and calls signal().
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

#[cfg(not(unix))]
fn install_interrupt_handler() {}

fn optim_config(cfg: &RunConfig) -> Result<OptimConfig> {
    let t = &cfg.train;
    Ok(OptimConfig {
        adam: AdamAtan2Config {
            lr: t.lr,
            weight_decay: t.weight_decay,
            beta1: t.beta1,
            beta2: t.beta2,
        },
        puzzle_emb_lr: t.puzzle_emb_lr,
        puzzle_emb_weight_decay: t.puzzle_emb_weight_decay,
        loss: cfg.loss()?,
        ema: t.ema.then_some(t.ema_rate),
    })
}

/// The run's architecture and step count for this dataset.
pub fn resolve_run(cfg: &RunConfig, data: &LoadedDataset) -> Result<ResolvedRun> {
    let meta = data.metadata("train");
    let model_config =
        cfg.model_config(meta.seq_len, meta.vocab_size, meta.num_puzzle_identifiers)?;
    let dataset_hash = match &data.manifest {
        Some(m) => m.dataset_hash.clone(),
        None => "none (no manifest.json)".into(),
    };
    Ok(ResolvedRun {
        config: cfg.clone(),
        model_config,
        total_steps: cfg.total_steps(meta.total_groups, meta.mean_puzzle_examples),
        dataset_dir: data.dir.clone(),
        dataset_hash,
    })
}

/// A trainer for a resolved run, freshly initialised from the run's seed.
pub fn new_trainer(run: &ResolvedRun, device: &Device) -> Result<Trainer> {
    Trainer::new(
        &run.model_config,
        run.config.kind(),
        optim_config(&run.config)?,
        run.config.seed,
        device,
    )
    .context("building the model")
}

fn checkpoint_path(run_dir: &Path, step: u64) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("step_{step}.safetensors"))
}

/// Checkpoints of a run directory, by step.
pub fn checkpoints(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = run_dir.join("checkpoints");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step_"))
            .and_then(|n| n.strip_suffix(".safetensors"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}

fn append_line(path: &Path, header: &str, line: &str) -> Result<()> {
    let fresh = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if fresh {
        writeln!(f, "{header}")?;
    }
    writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))
}

const METRICS_HEADER: &str =
    "step,epoch,lr,lm_loss,q_halt_loss,accuracy,exact_accuracy,mean_steps,wall_seconds";
const EVAL_HEADER: &str = "step,wall_seconds,examples,exact,exact_low,exact_high,token,mean_halting_step,exact_at_halt,maze_valid_path,arc_pass1,arc_pass2";

fn eval_line(p: &EvalPoint) -> String {
    let e = &p.evaluation;
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    let arc = |k: usize| opt(e.arc.as_ref().map(|a| a.strict[&k].value));
    format!(
        "{},{:.1},{},{:.6},{:.6},{:.6},{:.6},{:.4},{:.6},{},{},{}",
        p.step,
        p.wall_seconds,
        e.examples,
        e.exact.value,
        e.exact.low,
        e.exact.high,
        e.token.value,
        e.mean_halting_step,
        e.exact_at_halt.value,
        opt(e.maze_valid_path.map(|v| v.value)),
        arc(1),
        arc(2)
    )
}

/// Trains (or resumes) the run in `run_dir` on `data`.
pub fn train(
    cfg: &RunConfig,
    data: &LoadedDataset,
    run_dir: &Path,
    opts: &TrainOptions,
) -> Result<TrainOutcome> {
    let run = resolve_run(cfg, data)?;
    let config_path = run_dir.join(CONFIG_FILE);
    let state_path = run_dir.join(STATE_FILE);
    if config_path.exists() {
        if !opts.resume {
            bail!(
                "{} already holds a run (pass --resume to continue it, or choose another --run)",
                run_dir.display()
            );
        }
        let saved: ResolvedRun = read_json(&config_path)?;
        if saved.config != run.config || saved.dataset_hash != run.dataset_hash {
            bail!(
                "{} was started with another config or dataset; resume it with the same preset, --set values and data",
                run_dir.display()
            );
        }
    } else {
        std::fs::create_dir_all(run_dir.join("checkpoints"))
            .with_context(|| format!("creating {}", run_dir.display()))?;
        write_json(&config_path, &run)?;
    }

    let device = &opts.device;
    let mut trainer = new_trainer(&run, device)?;
    let train_split = &data.data.train;
    let meta = data.metadata("train");
    let batch_size = cfg.train.global_batch_size;
    let mut sampler = TrainSampler::new(train_split, meta, batch_size, stream_rng(cfg.seed, 1))
        .map_err(|e| anyhow::anyhow!("{}: {e}", data.dir.display()))?;
    let mut exploration = stream_rng(cfg.seed, 2);
    let mut evals: Vec<EvalPoint> = Vec::new();
    let mut pending = MetricSums::default();
    let mut wall_before = 0.0;
    if opts.resume && state_path.exists() {
        let state: RunState = read_json(&state_path)?;
        let path = checkpoint_path(run_dir, state.step);
        let tensors = models::checkpoint::load_state_dict(&path, device)?;
        trainer
            .restore(&tensors)
            .with_context(|| format!("restoring {}", path.display()))?;
        sampler
            .restore(&state.sampler)
            .map_err(|e| anyhow::anyhow!("{}: {e}", state_path.display()))?;
        exploration = state
            .exploration
            .rebuild()
            .map_err(|e| anyhow::anyhow!("{}: {e}", state_path.display()))?;
        evals = state.evals;
        pending = state.pending;
        wall_before = state.wall_seconds;
        if opts.verbose && trainer.step >= run.total_steps {
            println!("reusing the finished run in {}", run_dir.display());
        } else if opts.verbose {
            println!(
                "resuming {} at step {} of {}",
                run_dir.display(),
                trainer.step,
                run.total_steps
            );
        }
    }

    install_interrupt_handler();
    INTERRUPTED.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let wall = |started: &Instant| wall_before + started.elapsed().as_secs_f64();
    let bar = ProgressBar::new(run.total_steps);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} {bar:30} {pos}/{len} {msg} {per_sec} [{elapsed_precise} < {eta_precise}]",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(format!("{} {}", cfg.model, cfg.task));
    bar.set_position(trainer.step);
    bar.reset_eta();

    let save = |trainer: &Trainer,
                sampler: &TrainSampler,
                exploration: &rand_chacha::ChaCha8Rng,
                evals: &Vec<EvalPoint>,
                pending: &MetricSums,
                wall_seconds: f64|
     -> Result<()> {
        let path = checkpoint_path(run_dir, trainer.step);
        models::checkpoint::save(&path, &trainer.state_tensors()?)?;
        let state = RunState {
            step: trainer.step,
            sampler: sampler.state(),
            exploration: RngState::of(exploration),
            wall_seconds,
            evals: evals.clone(),
            pending: pending.clone(),
        };
        let tmp = state_path.with_extension("json.tmp");
        write_json(&tmp, &state)?;
        std::fs::rename(&tmp, &state_path)
            .with_context(|| format!("writing {}", state_path.display()))
    };

    let stop_requested = |step: u64| {
        INTERRUPTED.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|s| step >= s)
    };
    // A run resumed at or past its stop step has nothing to do: its state is on disk.
    let mut completed = !stop_requested(trainer.step) || trainer.step >= run.total_steps;
    while completed && trainer.step < run.total_steps {
        let host = sampler.next_batch();
        let batch = to_batch(&host, device)?;
        let t = &cfg.train;
        let lr_scale = lr_multiplier(
            trainer.step + 1,
            t.lr_warmup_steps,
            run.total_steps,
            t.lr_min_ratio,
        );
        let m = trainer
            .train_step(&batch, lr_scale, &mut exploration)
            .with_context(|| format!("training step {}", trainer.step + 1))?;
        pending.steps += 1;
        pending.count += m.count as f64;
        pending.accuracy += m.accuracy as f64;
        pending.exact += m.exact_accuracy as f64;
        pending.halt_steps += m.steps as f64;
        pending.lm_loss += m.lm_loss / batch_size as f64;
        pending.q_halt_loss += m.q_halt_loss as f64 / batch_size as f64;
        let step = trainer.step;
        let last = step == run.total_steps;
        if step % t.log_interval == 0 || last {
            let c = pending.count.max(1.0);
            let n = pending.steps.max(1) as f64;
            append_line(
                &run_dir.join("metrics.csv"),
                METRICS_HEADER,
                &format!(
                    "{step},{},{:.6e},{:.6},{:.6},{:.6},{:.6},{:.4},{:.2}",
                    sampler.epochs,
                    t.lr * lr_scale,
                    pending.lm_loss / n,
                    pending.q_halt_loss / n,
                    pending.accuracy / c,
                    pending.exact / c,
                    pending.halt_steps / c,
                    wall(&started)
                ),
            )?;
            bar.set_message(format!(
                "loss {:.3} acc {:.3} exact {:.3}",
                pending.lm_loss / n,
                pending.accuracy / c,
                pending.exact / c
            ));
            pending = MetricSums::default();
        }
        bar.set_position(step);
        let evaluate_now = step % t.eval_interval == 0 || last;
        if evaluate_now {
            let model = trainer.inference_model(&run.model_config, cfg.kind(), cfg.train.ema)?;
            let limit = if last {
                None
            } else {
                cfg.eval.max_examples_during_training
            };
            let out = evaluate(
                &trainer,
                model.as_ref(),
                data,
                &cfg.task,
                cfg.eval.batch_size,
                limit,
            )?;
            if !out.arc_predictions.is_empty() {
                save_arc_predictions(run_dir, step, &out.arc_predictions)?;
            }
            let point = EvalPoint {
                step,
                wall_seconds: wall(&started),
                evaluation: out.evaluation,
            };
            append_line(&run_dir.join("eval.csv"), EVAL_HEADER, &eval_line(&point))?;
            let line = format!(
                "{} {} step {step}: exact {:.3} [{:.3}, {:.3}] on {} test examples, token {:.3}",
                cfg.model,
                cfg.task,
                point.evaluation.exact.value,
                point.evaluation.exact.low,
                point.evaluation.exact.high,
                point.evaluation.examples,
                point.evaluation.token.value
            );
            if opts.verbose {
                // A hidden bar (no terminal) drops println; logs still want the line.
                if bar.is_hidden() {
                    println!("{line}");
                } else {
                    bar.println(line);
                }
            }
            if last {
                datasets::npy::write(
                    &run_dir.join("predictions.npy"),
                    &[out.predictions.len(), data.data.test.seq_len],
                    &out.predictions.concat(),
                )?;
                write_json(&run_dir.join(SCORES_FILE), &point.evaluation)?;
            }
            evals.push(point);
        }
        // Ctrl-C during a step or an evaluation lands here: save, then stop.
        let stop = !last && stop_requested(step);
        if evaluate_now || stop {
            save(
                &trainer,
                &sampler,
                &exploration,
                &evals,
                &pending,
                wall(&started),
            )?;
        }
        completed = !stop;
    }
    bar.finish_and_clear();
    if !completed {
        println!(
            "interrupted at step {} of {}; the state is saved in {} (resume with --resume)",
            trainer.step,
            run.total_steps,
            run_dir.display()
        );
    }
    let final_eval = (completed && trainer.step == run.total_steps)
        .then(|| evals.last().map(|p| p.evaluation.clone()))
        .flatten();
    Ok(TrainOutcome {
        run,
        completed,
        steps: trainer.step,
        wall_seconds: wall(&started),
        evals,
        final_eval,
    })
}
