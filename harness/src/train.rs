//! `harness train`: the official training loop. One persistent ACT batch; each optimizer step
//! is one supervision step of every slot, with halted slots refilled from the next batch of
//! the sampler (one random version per group per pass). Evaluation, with the EMA weights where
//! the recipe has them, and a checkpoint every `eval_interval` steps; Ctrl-C (or SIGTERM /
//! SIGUSR1, a scheduler's warning) saves and exits. The run directory's files are
//! `run_dir::RunDir`'s business; this loop only steps, logs, evaluates and saves.

use crate::config::RunConfig;
use crate::eval::{
    evaluate, run_shard, score_pass, to_batch, EvalSplit, Evaluation, Pass, Protocol, Stage,
};
use crate::run_dir::{ArcPredictionsFile, RunDir, RunState};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use datasets::format::LoadedDataset;
use datasets::loader::TrainSampler;
use datasets::sample::{stream_rng, RngState};
use indicatif::{ProgressBar, ProgressStyle};
use models::collective::{Collective, ThreadGroup};
use models::config::ModelConfig;
use models::optim::{lr_multiplier, AdamAtan2Config};
use models::trainer::{OptimConfig, Trainer};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The commit (and `-dirty`) of the code this binary was built from.
pub const CODE_VERSION: &str = env!("HARNESS_CODE_VERSION");

/// What a run directory records about its setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedRun {
    pub config: RunConfig,
    pub model_config: ModelConfig,
    pub total_steps: u64,
    pub dataset_dir: PathBuf,
    pub dataset_hash: String,
    /// The code version that created the run (`CODE_VERSION` then).
    pub code_version: String,
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

/// Training metrics summed since the last `metrics.csv` row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetricSums {
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
    /// The final full evaluation on test (present when completed).
    pub final_eval: Option<Evaluation>,
    /// The last checkpoint on the whole validation split (when completed and the data has one).
    pub final_validation: Option<Evaluation>,
    /// Every processor setup that trained the run, the first first.
    pub provenance: Vec<crate::device::Provenance>,
    /// ARC, when completed: the votes of every checkpoint pooled (`pooled::arc_pooled`).
    pub arc_pooled: Option<crate::pooled::PooledArc>,
    /// Every code version that trained the run, the creating one first.
    pub code_versions: Vec<String>,
}

pub struct TrainOptions {
    pub resume: bool,
    /// Print one line per evaluation (besides the progress bar).
    pub verbose: bool,
    /// Draw a progress bar (off when several runs share the terminal).
    pub progress_bar: bool,
    pub device: Device,
    /// Save and stop after this step, as Ctrl-C would (to train in chunks, or to test resume).
    pub stop_after: Option<u64>,
    /// The memory a step may use (default: a GPU's free memory; none on the CPU): the step
    /// runs in as many micro-batches as `harness plan` says it needs.
    pub device_memory: Option<u64>,
    /// Data-parallel ranks (`--gpus`); `device` is rank 0's.
    pub gpus: usize,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: std::sync::Once = std::sync::Once::new();

/// Whether SIGINT, SIGTERM or SIGUSR1 arrived since the first run of this process started.
/// Never reset: a signal that lands between two runs of a compare or a sweep, or during an
/// evaluation, still stops everything that follows.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// SIGINT (Ctrl-C), SIGTERM and SIGUSR1 (what Slurm sends before a kill) ask the loop to
/// save and stop; a second one of the same signal kills at once. Installed once per process.
fn install_interrupt_handler() {
    HANDLER.call_once(install_signal_handlers);
}

#[cfg(unix)]
fn install_signal_handlers() {
    extern "C" fn on_signal(signal: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        // SAFETY: signal() is async-signal-safe; restoring the default makes a second
        // signal terminate the process.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: installs a handler that only stores an atomic and calls signal().
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

#[cfg(not(unix))]
fn install_signal_handlers() {}

pub fn optim_config(cfg: &RunConfig) -> Result<OptimConfig> {
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
        halt_early: t.act,
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
        code_version: CODE_VERSION.to_string(),
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

/// `new_trainer` with the micro-batches that fit the device's memory.
fn planned_trainer(run: &ResolvedRun, opts: &TrainOptions, device: &Device) -> Result<Trainer> {
    // Before the model exists: the plan counts its weights and state itself.
    let budget = opts
        .device_memory
        .or_else(|| crate::device::free_memory(device));
    let mut trainer = new_trainer(run, device)?;
    if let Some(budget) = budget {
        let path = crate::plan::layer_path(device, &run.model_config);
        let ranks = opts.gpus.max(1);
        let p = crate::plan::plan(&run.model_config, &run.config, path, ranks, Some(budget));
        if !p.fits {
            bail!(
                "a training step needs {:.2} GB even one slot at a time, more than the {:.2} GB available (harness plan shows the parts)",
                p.peak as f64 / 1e9,
                budget as f64 / 1e9
            );
        }
        if p.micro_batches > 1 && opts.verbose && device.same_device(&opts.device) {
            println!(
                "{} micro-batches of {} slots per step fit {:.2} GB (peak {:.2} GB)",
                p.micro_batches,
                p.rank_slots.div_ceil(p.micro_batches),
                budget as f64 / 1e9,
                p.peak as f64 / 1e9
            );
        }
        trainer.micro_batches = p.micro_batches;
    }
    Ok(trainer)
}

const METRICS_HEADER: &str =
    "step,epoch,lr,lm_loss,q_halt_loss,accuracy,exact_accuracy,mean_steps,wall_seconds";
const EVAL_HEADER: &str = "step,split,wall_seconds,examples,exact,exact_low,exact_high,token,mean_halting_step,exact_at_halt,maze_valid_path,arc_pass1,arc_pass2";

fn eval_row(p: &EvalPoint) -> Vec<String> {
    let e = &p.evaluation;
    let arc = |k: usize| crate::table::opt6(e.arc.as_ref().map(|a| a.strict[&k].value));
    vec![
        p.step.to_string(),
        p.split.name().to_string(),
        format!("{:.1}", p.wall_seconds),
        e.examples.to_string(),
        format!("{:.6}", e.exact.value),
        format!("{:.6}", e.exact.low),
        format!("{:.6}", e.exact.high),
        format!("{:.6}", e.token.value),
        format!("{:.4}", e.mean_halting_step),
        format!("{:.6}", e.exact_at_halt.value),
        crate::table::opt6(e.maze_valid_path.map(|v| v.value)),
        arc(1),
        arc(2),
    ]
}

/// Trains (or resumes) the run in `run_dir` on `data`.
pub fn train(
    cfg: &RunConfig,
    data: &LoadedDataset,
    run_dir: &Path,
    opts: &TrainOptions,
) -> Result<TrainOutcome> {
    let run = resolve_run(cfg, data)?;
    let (dir, state) = RunDir::open(run_dir, &run, opts.resume)?;
    // The creating version, from config.json: a resumed run keeps it.
    let run = ResolvedRun {
        code_version: dir.resolved()?.code_version,
        ..run
    };
    if opts.gpus > 1 {
        return train_ranks(&run, data, dir, state, opts);
    }
    Training::new(&run, data, dir, state, opts)?.run()
}

/// `--gpus N`: ranks 1..N as threads that only step, in lockstep with rank 0, which runs the
/// whole loop (logs, evaluation, checkpoints). Every rank draws the same global batch and
/// exploration (the same seeded streams), holds its rows of the slots and sums gradients
/// with the others (`ThreadGroup`); a failing rank ends the others' waits.
fn train_ranks(
    run: &ResolvedRun,
    data: &LoadedDataset,
    dir: RunDir,
    state: Option<RunState>,
    opts: &TrainOptions,
) -> Result<TrainOutcome> {
    if state.is_some() {
        bail!(
            "{}: resuming on {} ranks is not supported yet: a checkpoint holds rank 0's slots only, so the run cannot continue where it stopped (its checkpoints can still be evaluated)",
            dir.path().display(),
            opts.gpus
        );
    }
    let batch = run.config.train.global_batch_size;
    if batch < opts.gpus {
        bail!(
            "--gpus {}: the global batch of {batch} slots leaves a rank without one",
            opts.gpus
        );
    }
    let mut devices = crate::device::rank_devices(opts.gpus)?;
    // Rank 0 computes on the run's device: one handle, so its exchange copies nothing.
    devices[0] = opts.device.clone();
    let run_dir = dir.path().to_path_buf();
    let run_dir = &run_dir;
    let ranks: Vec<Arc<ThreadGroup>> = ThreadGroup::new(devices.clone())
        .into_iter()
        .map(Arc::new)
        .collect();
    let exchanges = gradient_exchanges(&ranks, &devices)?;
    std::thread::scope(|s| {
        let followers: Vec<_> = ranks[1..]
            .iter()
            .zip(&devices[1..])
            .zip(&exchanges[1..])
            .map(|((rank, device), exchange)| {
                let (rank, exchange) = (rank.clone(), exchange.clone());
                s.spawn(move || {
                    let _guard = rank.abort_on_panic();
                    let result = follow(run, data, opts, (rank.clone(), exchange), device, run_dir);
                    if let Err(e) = &result {
                        rank.abort(&format!("{e:#}"));
                    }
                    result
                })
            })
            .collect();
        let lead = (|| {
            let _guard = ranks[0].abort_on_panic();
            let mut training = Training::new(run, data, dir, None, opts)?;
            training.trainer.group = exchanges[0].clone();
            training.ranks = Some(ranks[0].clone());
            training.run()
        })();
        if let Err(e) = &lead {
            ranks[0].abort(&format!("{e:#}"));
        }
        for (r, follower) in followers.into_iter().enumerate() {
            let outcome = follower
                .join()
                .map_err(|_| anyhow::anyhow!("rank {} panicked", r + 1))?;
            // A follower's own failure is the cause; its stop after rank 0's is not.
            if lead.is_ok() {
                outcome.with_context(|| format!("rank {}", r + 1))?;
            }
        }
        lead
    })
}

/// What the ranks' trainers exchange gradients through: NCCL with `--features nccl`, else
/// the threads' own group (device-to-device copies). The rounds of `next_round` and
/// `barrier` always go through the threads' group.
fn gradient_exchanges(
    ranks: &[Arc<ThreadGroup>],
    devices: &[Device],
) -> Result<Vec<Arc<dyn Collective>>> {
    #[cfg(feature = "nccl")]
    if devices.iter().all(Device::is_cuda) {
        let _ = ranks;
        return Ok(models::nccl::NcclGroup::new(devices)?
            .into_iter()
            .map(|g| Arc::new(g) as Arc<dyn Collective>)
            .collect());
    }
    let _ = devices;
    Ok(ranks
        .iter()
        .map(|r| r.clone() as Arc<dyn Collective>)
        .collect())
}

/// What the ranks do next, as rank 0 says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    Stop,
    Step,
    Evaluate(Stage),
}

impl Next {
    const ALL: [Next; 5] = [
        Next::Stop,
        Next::Step,
        Next::Evaluate(Stage::DuringTraining),
        Next::Evaluate(Stage::FinalValidation),
        Next::Evaluate(Stage::FinalTest),
    ];
}

/// Rank 0's `Next` (the others give none), read by every rank: its index in `Next::ALL`,
/// summed with the others' zeros.
fn next_round(rank: &ThreadGroup, mine: Option<Next>) -> Result<Next> {
    let code = mine.map_or(0, |n| Next::ALL.iter().position(|&m| m == n).unwrap_or(0));
    let flag = Tensor::new(&[code as f32], &Device::Cpu)?;
    let sum = rank.all_reduce_sum(vec![flag])?;
    let code = models::host::vec1::<f32>(&sum[0])?[0] as usize;
    Next::ALL
        .get(code)
        .copied()
        .with_context(|| format!("rank 0 sent an unknown instruction {code}"))
}

/// Waits until every rank has arrived.
fn barrier(rank: &ThreadGroup) -> Result<()> {
    rank.all_reduce_sum(vec![Tensor::new(&[0f32], &Device::Cpu)?])?;
    Ok(())
}

/// Where rank `r` writes its share of the evaluation of `split` at `step`.
fn shard_file(run_dir: &Path, step: u64, split: EvalSplit, r: usize) -> PathBuf {
    run_dir
        .join("eval-shards")
        .join(format!("step_{step}.{}.rank{r}.json", split.name()))
}

/// This rank's share of the evaluation at `stage` of its trainer's step, written to its file.
fn evaluate_shard(
    run: &ResolvedRun,
    data: &LoadedDataset,
    trainer: &Trainer,
    (rank, stage): (&ThreadGroup, Stage),
    run_dir: &Path,
) -> Result<()> {
    let cfg = &run.config;
    let model = trainer.inference_model(&run.model_config, cfg.kind(), cfg.train.ema)?;
    let protocol = Protocol::of(run, stage);
    let pass = run_shard(
        trainer,
        model.as_ref(),
        data,
        &protocol,
        (rank.rank(), rank.world()),
    )?;
    let path = shard_file(run_dir, trainer.step, stage.split(), rank.rank());
    std::fs::create_dir_all(path.parent().expect("a shard file has a folder"))
        .with_context(|| format!("creating the folder of {}", path.display()))?;
    datasets::format::write_json(&path, &pass)?;
    Ok(())
}

/// A rank other than 0: the same trainer, batches and exploration as rank 0, stepping while
/// rank 0 does.
fn follow(
    run: &ResolvedRun,
    data: &LoadedDataset,
    opts: &TrainOptions,
    (rank, exchange): (Arc<ThreadGroup>, Arc<dyn Collective>),
    device: &Device,
    run_dir: &Path,
) -> Result<()> {
    let cfg = &run.config;
    let mut trainer = planned_trainer(run, opts, device)?;
    trainer.group = exchange;
    let mut sampler = TrainSampler::new(
        &data.data.train,
        data.metadata("train"),
        cfg.train.global_batch_size,
        stream_rng(cfg.seed, 1),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", data.dir.display()))?;
    let mut exploration = stream_rng(cfg.seed, 2);
    loop {
        match next_round(&rank, None)? {
            Next::Stop => return Ok(()),
            Next::Evaluate(stage) => {
                evaluate_shard(run, data, &trainer, (&rank, stage), run_dir)?;
                barrier(&rank)?;
                continue;
            }
            Next::Step => {}
        }
        let batch = to_batch(&sampler.next_batch(), device)?;
        let t = &cfg.train;
        let lr_scale = lr_multiplier(
            trainer.step + 1,
            t.lr_warmup_steps,
            run.total_steps,
            t.lr_min_ratio,
        );
        trainer.train_step(&batch, lr_scale, &mut exploration)?;
    }
}

/// The loop's state between steps.
struct Training<'a> {
    run: &'a ResolvedRun,
    data: &'a LoadedDataset,
    dir: RunDir,
    opts: &'a TrainOptions,
    trainer: Trainer,
    sampler: TrainSampler<'a>,
    exploration: ChaCha8Rng,
    evals: Vec<EvalPoint>,
    pending: MetricSums,
    code_versions: Vec<String>,
    provenance: Vec<crate::device::Provenance>,
    wall_before: f64,
    started: Instant,
    bar: ProgressBar,
    /// Rank 0 of `--gpus N`, which tells the other ranks whether to step.
    ranks: Option<Arc<ThreadGroup>>,
}

impl<'a> Training<'a> {
    /// A fresh start, or the saved state restored exactly.
    fn new(
        run: &'a ResolvedRun,
        data: &'a LoadedDataset,
        dir: RunDir,
        state: Option<RunState>,
        opts: &'a TrainOptions,
    ) -> Result<Self> {
        let cfg = &run.config;
        let mut training = Training {
            run,
            data,
            opts,
            trainer: planned_trainer(run, opts, &opts.device)?,
            sampler: TrainSampler::new(
                &data.data.train,
                data.metadata("train"),
                cfg.train.global_batch_size,
                stream_rng(cfg.seed, 1),
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", data.dir.display()))?,
            exploration: stream_rng(cfg.seed, 2),
            evals: Vec::new(),
            pending: MetricSums::default(),
            code_versions: vec![run.code_version.clone()],
            provenance: vec![this_provenance(run, opts)],
            wall_before: 0.0,
            started: Instant::now(),
            bar: if opts.progress_bar {
                progress_bar(run)
            } else {
                ProgressBar::hidden()
            },
            dir,
            ranks: None,
        };
        if let Some(state) = state {
            let (step, path) = training
                .dir
                .checkpoints()?
                .into_iter()
                .find(|(s, _)| *s == state.step)
                .with_context(|| {
                    format!(
                        "{}: the saved state is at step {}, but that checkpoint is missing",
                        training.dir.path().display(),
                        state.step
                    )
                })?;
            let tensors = models::checkpoint::load_state_dict(&path, &opts.device)?;
            training
                .trainer
                .restore(&tensors)
                .with_context(|| format!("restoring {}", path.display()))?;
            training
                .sampler
                .restore(&state.sampler)
                .map_err(|e| anyhow::anyhow!("{}: {e}", training.dir.path().display()))?;
            training.exploration = state
                .exploration
                .rebuild()
                .map_err(|e| anyhow::anyhow!("{}: {e}", training.dir.path().display()))?;
            training.evals = state.evals;
            training.pending = state.pending;
            training.wall_before = state.wall_seconds;
            training.code_versions = state.code_versions;
            if !training.code_versions.iter().any(|v| v == CODE_VERSION) {
                training.code_versions.push(CODE_VERSION.to_string());
            }
            let here = this_provenance(run, opts);
            training.provenance = state.provenance;
            if !training.provenance.contains(&here) {
                training.provenance.push(here);
            }
            if opts.verbose {
                training.say(&if step >= run.total_steps {
                    format!(
                        "reusing the finished run in {}",
                        training.dir.path().display()
                    )
                } else {
                    format!(
                        "resuming {} at step {step} of {}",
                        training.dir.path().display(),
                        run.total_steps
                    )
                });
            }
        }
        training.bar.set_position(training.trainer.step);
        training.bar.reset_eta();
        Ok(training)
    }

    fn wall(&self) -> f64 {
        self.wall_before + self.started.elapsed().as_secs_f64()
    }

    fn say(&self, line: &str) {
        // A hidden bar (no terminal) drops println; logs still want the line.
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn stop_requested(&self) -> bool {
        interrupted() || self.opts.stop_after.is_some_and(|s| self.trainer.step >= s)
    }

    fn run(mut self) -> Result<TrainOutcome> {
        install_interrupt_handler();
        let total = self.run.total_steps;
        // A run resumed at or past its stop step has nothing to do: its state is on disk.
        let mut completed = !self.stop_requested() || self.trainer.step >= total;
        while completed && self.trainer.step < total {
            self.step()?;
            let last = self.trainer.step == total;
            let evaluate_now = self
                .trainer
                .step
                .is_multiple_of(self.run.config.train.eval_interval)
                || last;
            let has_validation = self.data.val().is_some();
            if evaluate_now && !last && has_validation {
                self.evaluate(Stage::DuringTraining)?;
            }
            if last {
                if has_validation {
                    self.evaluate(Stage::FinalValidation)?;
                }
                self.evaluate(Stage::FinalTest)?;
            }
            // A signal during a step or an evaluation lands here: save, then stop.
            let stop = !last && self.stop_requested();
            if evaluate_now || stop {
                self.save()?;
            }
            completed = !stop;
        }
        if let Some(rank) = &self.ranks {
            next_round(rank, Some(Next::Stop))?;
        }
        self.bar.finish_and_clear();
        if !completed {
            println!(
                "interrupted at step {} of {total}; the state is saved in {} (resume with --resume)",
                self.trainer.step,
                self.dir.path().display()
            );
        }
        let done = completed && self.trainer.step == total;
        let at_end = |split: EvalSplit| {
            self.evals
                .iter()
                .rfind(|p| done && p.step == total && p.split == split)
                .map(|p| p.evaluation.clone())
        };
        let (final_eval, final_validation) =
            (at_end(EvalSplit::Test), at_end(EvalSplit::Validation));
        let arc_pooled = match done && self.run.config.task.starts_with("arc-") {
            true => Some(crate::pooled::arc_pooled(
                &self.dir,
                self.run,
                self.data,
                &self.opts.device,
            )?),
            false => None,
        };
        Ok(TrainOutcome {
            run: self.run.clone(),
            completed,
            steps: self.trainer.step,
            wall_seconds: self.wall(),
            evals: self.evals,
            final_eval,
            final_validation,
            arc_pooled,
            code_versions: self.code_versions,
            provenance: self.provenance,
        })
    }

    /// One optimizer step on the next batch, and its `metrics.csv` row when due.
    fn step(&mut self) -> Result<()> {
        if let Some(rank) = &self.ranks {
            next_round(rank, Some(Next::Step))?;
        }
        let t = &self.run.config.train;
        let batch = to_batch(&self.sampler.next_batch(), &self.opts.device)?;
        let lr_scale = lr_multiplier(
            self.trainer.step + 1,
            t.lr_warmup_steps,
            self.run.total_steps,
            t.lr_min_ratio,
        );
        let m = self
            .trainer
            .train_step(&batch, lr_scale, &mut self.exploration)
            .with_context(|| {
                let last_good = self.evals.last().map_or(0, |p| p.step);
                format!(
                    "training step {}: stopped without applying it; the run directory keeps its last good state (checkpoint of step {last_good})",
                    self.trainer.step + 1
                )
            })?;
        let batch_size = t.global_batch_size as f64;
        let p = &mut self.pending;
        p.steps += 1;
        p.count += m.count as f64;
        p.accuracy += m.accuracy as f64;
        p.exact += m.exact_accuracy as f64;
        p.halt_steps += m.steps as f64;
        p.lm_loss += m.lm_loss / batch_size;
        p.q_halt_loss += m.q_halt_loss as f64 / batch_size;
        let step = self.trainer.step;
        if step.is_multiple_of(t.log_interval) || step == self.run.total_steps {
            self.log(t.lr * lr_scale)?;
        }
        self.bar.set_position(step);
        Ok(())
    }

    fn log(&mut self, lr: f64) -> Result<()> {
        let p = std::mem::take(&mut self.pending);
        let c = p.count.max(1.0);
        let n = p.steps.max(1) as f64;
        let row = vec![
            self.trainer.step.to_string(),
            self.sampler.epochs.to_string(),
            format!("{lr:.6e}"),
            format!("{:.6}", p.lm_loss / n),
            format!("{:.6}", p.q_halt_loss / n),
            format!("{:.6}", p.accuracy / c),
            format!("{:.6}", p.exact / c),
            format!("{:.4}", p.halt_steps / c),
            format!("{:.2}", self.wall()),
        ];
        self.dir.append_metrics(METRICS_HEADER, row)?;
        self.bar.set_message(format!(
            "loss {:.3} acc {:.3} exact {:.3}",
            p.lm_loss / n,
            p.accuracy / c,
            p.exact / c
        ));
        Ok(())
    }

    /// Every rank evaluates its share of the batches and writes it to a file; rank 0 merges
    /// the files (never the ranks' memory) and scores the whole.
    fn evaluate_sharded(
        &self,
        rank: &ThreadGroup,
        model: &dyn models::model::RecursiveModel,
        (stage, protocol): (Stage, &Protocol),
    ) -> Result<crate::eval::EvalOutput> {
        next_round(rank, Some(Next::Evaluate(stage)))?;
        evaluate_shard(
            self.run,
            self.data,
            &self.trainer,
            (rank, stage),
            self.dir.path(),
        )?;
        barrier(rank)?;
        let step = self.trainer.step;
        let parts = (0..rank.world())
            .map(|r| {
                let path = shard_file(self.dir.path(), step, stage.split(), r);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str::<Pass>(&text)
                    .with_context(|| format!("{}: not an evaluation shard", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let limit = parts.iter().map(|p| p.len()).sum();
        let pass = Pass::merge(parts, limit)?;
        let shards = self.dir.path().join("eval-shards");
        std::fs::remove_dir_all(&shards)
            .with_context(|| format!("removing {}", shards.display()))?;
        score_pass(pass, model, self.data, protocol)
    }

    /// The protocol at `stage` (`Protocol::of`), with the EMA weights where the recipe has
    /// them: validation during training and at the end, test once, at the end.
    fn evaluate(&mut self, stage: Stage) -> Result<()> {
        let cfg = &self.run.config;
        let step = self.trainer.step;
        let model =
            self.trainer
                .inference_model(&self.run.model_config, cfg.kind(), cfg.train.ema)?;
        let protocol = Protocol::of(self.run, stage);
        let out = match &self.ranks {
            None => evaluate(&self.trainer, model.as_ref(), self.data, &protocol)?,
            Some(rank) => self.evaluate_sharded(rank, model.as_ref(), (stage, &protocol))?,
        };
        if stage == Stage::FinalTest && !out.arc_predictions.is_empty() {
            // The last checkpoint's votes, for pooling (`pooled::arc_pooled`).
            let file = ArcPredictionsFile {
                examples: out.evaluation.examples,
                predictions: out.arc_predictions,
            };
            self.dir.save_arc_predictions(step, &file)?;
        }
        let point = EvalPoint {
            step,
            split: stage.split(),
            wall_seconds: self.wall(),
            evaluation: out.evaluation,
        };
        self.dir.append_eval(EVAL_HEADER, eval_row(&point))?;
        if self.opts.verbose {
            let e = &point.evaluation;
            self.say(&format!(
                "{} {} step {step}: exact {:.3} [{:.3}, {:.3}] on {} {} examples, token {:.3}",
                cfg.model,
                cfg.task,
                e.exact.value,
                e.exact.low,
                e.exact.high,
                e.examples,
                stage.split().name(),
                e.token.value
            ));
        }
        if stage == Stage::FinalTest {
            self.dir.write_final(
                &out.predictions,
                self.data.data.test.seq_len,
                &point.evaluation,
            )?;
        }
        self.evals.push(point);
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let mut state = RunState {
            step: self.trainer.step,
            sampler: self.sampler.state(),
            exploration: RngState::of(&self.exploration),
            wall_seconds: self.wall(),
            evals: self.evals.clone(),
            pending: self.pending.clone(),
            metrics_bytes: 0,
            eval_bytes: 0,
            code_versions: self.code_versions.clone(),
            provenance: self.provenance.clone(),
        };
        self.dir.save(&self.trainer.state_tensors()?, &mut state)
    }
}

/// The processor, kernel path, threads and dtype this process trains `run` with.
fn this_provenance(run: &ResolvedRun, opts: &TrainOptions) -> crate::device::Provenance {
    let mut p = crate::device::Provenance::of(&opts.device, &run.model_config.forward_dtype);
    if opts.gpus > 1 {
        p.kernel_path = format!("{}, {} ranks", p.kernel_path, opts.gpus);
    }
    p
}

fn progress_bar(run: &ResolvedRun) -> ProgressBar {
    let bar = ProgressBar::new(run.total_steps);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} {bar:30} {pos}/{len} {msg} {per_sec} [{elapsed_precise} < {eta_precise}]",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(format!("{} {}", run.config.model, run.config.task));
    bar
}
