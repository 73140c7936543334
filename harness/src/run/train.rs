//! `harness train`: the official training loop. One persistent ACT batch; each optimizer step
//! is one supervision step of every slot, with halted slots refilled from the next batch of
//! the sampler (one random version per group per pass). Evaluation, with the EMA weights where
//! the recipe has them, and a checkpoint every `eval_interval` steps; Ctrl-C (or SIGTERM /
//! SIGUSR1, a scheduler's warning) saves and exits. The run directory's files are
//! `run_dir::RunDir`'s business; this loop only steps, logs, evaluates and saves.

use crate::run::config::RunConfig;
use crate::run::eval::{
    evaluate, score_pass, to_batch, EvalPoint, EvalSplit, Evaluation, Protocol, Stage,
    StepwiseOutcomes,
};
use crate::run::ranks::abort_everywhere;
use crate::run::ranks::{
    barrier, evaluate_shard, follow, gather_carry, gradient_exchanges, next_round,
    refuse_uneven_ranks, shard_file, Next,
};
use crate::run::resolve::{
    fitting_plan, planned_trainer, resolve_run, this_provenance, ResolvedRun, TrainOptions,
    CODE_VERSION,
};
use crate::run::run_dir::{ArcPredictionsFile, Retention, RunDir};
use crate::run::scores::{self, ScoresFile};
use crate::run::signals::{install_interrupt_handler, interrupted};
use crate::run::state::{MetricSums, RunState};
use anyhow::{Context, Result};
use datasets::format::LoadedDataset;
use datasets::loader::TrainSampler;
use datasets::sample::{stream_rng, RngState};
use indicatif::{ProgressBar, ProgressStyle};
use models::collective::{AbortOnPanic, Collective, ThreadGroup};
use models::optim::lr_multiplier;
use models::trainer::Trainer;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How a training run ended.
pub struct TrainOutcome {
    pub run: ResolvedRun,
    /// Trained to its last step and evaluated (false when a signal or `--stop-after` stopped it).
    pub completed: bool,
    pub steps: u64,
    pub wall_seconds: f64,
    pub evals: Vec<EvalPoint>,
    /// The final full evaluation on test (present when completed).
    pub final_eval: Option<Evaluation>,
    /// The last checkpoint on the whole validation split (when completed and the data has one).
    pub final_validation: Option<Evaluation>,
    /// Every processor setup that trained the run, the first first.
    pub provenance: Vec<crate::run::device::Provenance>,
    /// ARC, when completed: the votes of every checkpoint pooled (`pooled::arc_pooled`).
    pub arc_pooled: Option<crate::run::pooled::PooledArc>,
    /// Every code version that trained the run, the creating one first.
    pub code_versions: Vec<String>,
}

const METRICS_HEADER: &str =
    "step,epoch,lr,lm_loss,q_halt_loss,accuracy,exact_accuracy,mean_steps,wall_seconds";
const EVAL_HEADER: &str = "step,split,wall_seconds,examples,exact,exact_low,exact_high,token,mean_halting_step,exact_at_halt,maze_valid_path,arc_pass1,arc_pass2";

fn eval_row(p: &EvalPoint) -> Vec<String> {
    let e = &p.evaluation;
    let arc = |k: usize| crate::run::csv::opt6(e.arc.as_ref().map(|a| a.strict[&k].value));
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
        crate::run::csv::opt6(e.maze_valid_path.map(|v| v.value)),
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
    if opts.gpus > 1 {
        refuse_uneven_ranks(run.config.train.global_batch_size, opts.gpus)?;
    }
    fitting_plan(&run, opts, &opts.device)?;
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
    let mut devices = crate::run::device::rank_devices(opts.gpus)?;
    // Rank 0 computes on the run's device: one handle, so its exchange copies nothing.
    devices[0] = opts.device.clone();
    let run_dir = dir.path().to_path_buf();
    let run_dir = &run_dir;
    // Every rank restores the same saved state, each taking its slots of the carry.
    let resume = state
        .as_ref()
        .map(|s| (s.clone(), dir.checkpoint_path(s.step)));
    let resume = resume.as_ref();
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
                    let _guards = (AbortOnPanic(&*rank), AbortOnPanic(&*exchange));
                    let result = follow(
                        run,
                        data,
                        opts,
                        (rank.clone(), exchange.clone()),
                        device,
                        (run_dir, resume),
                    );
                    if let Err(e) = &result {
                        abort_everywhere(&rank, &*exchange, &format!("{e:#}"));
                    }
                    result
                })
            })
            .collect();
        let lead = (|| {
            let _guards = (AbortOnPanic(&*ranks[0]), AbortOnPanic(&*exchanges[0]));
            let mut training = Training::new(run, data, dir, state, opts)?;
            training.trainer.group = exchanges[0].clone();
            training.ranks = Some(ranks[0].clone());
            training.run()
        })();
        if let Err(e) = &lead {
            abort_everywhere(&ranks[0], &*exchanges[0], &format!("{e:#}"));
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
    provenance: Vec<crate::run::device::Provenance>,
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
            training.restore(state)?;
        }
        training.bar.set_position(training.trainer.step);
        training.bar.reset_eta();
        Ok(training)
    }

    /// The saved state restored exactly: weights, optimiser and carry from its checkpoint,
    /// the sampler and exploration streams, the evaluations and metrics not yet logged; this
    /// code version and processor added to those that trained the run.
    fn restore(&mut self, state: RunState) -> Result<()> {
        let here = self.dir.path().display().to_string();
        let (step, path) = self
            .dir
            .checkpoints()?
            .into_iter()
            .find(|(s, _)| *s == state.step)
            .with_context(|| {
                format!(
                    "{here}: the saved state is at step {}, but that checkpoint is missing",
                    state.step
                )
            })?;
        let global = self.run.config.train.global_batch_size;
        state.restore_rank(
            &path,
            (&mut self.trainer, global),
            &mut self.sampler,
            &mut self.exploration,
        )?;
        self.evals = state.evals;
        self.pending = state.pending;
        self.wall_before = state.wall_seconds;
        self.code_versions = state.code_versions;
        if !self.code_versions.iter().any(|v| v == CODE_VERSION) {
            self.code_versions.push(CODE_VERSION.to_string());
        }
        let processor = this_provenance(self.run, self.opts);
        self.provenance = state.provenance;
        if !self.provenance.contains(&processor) {
            self.provenance.push(processor);
        }
        if self.opts.verbose {
            self.say(&if step >= self.run.total_steps {
                format!("reusing the finished run in {here}")
            } else {
                format!("resuming {here} at step {step} of {}", self.run.total_steps)
            });
        }
        Ok(())
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
        let mut keep_going = !self.stop_requested() || self.trainer.step >= total;
        while keep_going && self.trainer.step < total {
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
            keep_going = !stop;
        }
        if let Some(rank) = &self.ranks {
            next_round(rank, Some(Next::Stop))?;
        }
        self.bar.finish_and_clear();
        if !keep_going {
            println!(
                "interrupted at step {} of {total}; the state is saved in {} (resume with --resume)",
                self.trainer.step,
                self.dir.path().display()
            );
        }
        let done = keep_going && self.trainer.step == total;
        let at_end = |split: EvalSplit| {
            self.evals
                .iter()
                .rfind(|p| done && p.step == total && p.split == split)
                .map(|p| p.evaluation.clone())
        };
        let (final_eval, final_validation) =
            (at_end(EvalSplit::Test), at_end(EvalSplit::Validation));
        let arc_pooled = match done && self.run.config.task.starts_with("arc-") {
            true => Some(self.pool_arc_votes()?),
            false => None,
        };
        Ok(TrainOutcome {
            run: self.run.clone(),
            completed: done,
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
    ) -> Result<crate::run::eval::EvalOutput> {
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
                serde_json::from_str::<StepwiseOutcomes>(&text)
                    .with_context(|| format!("{}: not an evaluation shard", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let limit = parts.iter().map(|p| p.len()).sum();
        let pass = StepwiseOutcomes::merge(parts, limit)?;
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
            let checkpoint = self.dir.checkpoint_path(step);
            let file = ScoresFile::new(
                self.run,
                &checkpoint,
                cfg.train.ema,
                point.evaluation.clone(),
            );
            scores::write(
                self.dir.path(),
                &file,
                &out.predictions,
                self.data.data.test.seq_len,
            )?;
        }
        self.evals.push(point);
        Ok(())
    }

    /// ARC: the votes of the run's eval-interval checkpoints pooled, also in `scores.json`.
    fn pool_arc_votes(&self) -> Result<crate::run::pooled::PooledArc> {
        let pooled =
            crate::run::pooled::arc_pooled(&self.dir, self.run, self.data, &self.opts.device)?;
        let path = self.dir.path().join(crate::run::run_dir::SCORES_FILE);
        let mut file: ScoresFile = datasets::format::read_json(&path)?;
        file.arc_pooled_over_checkpoints = Some(pooled.clone());
        datasets::format::write_json(&path, &file)?;
        Ok(pooled)
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
        let every_rank = match &self.ranks {
            Some(rank) => {
                next_round(rank, Some(Next::Save))?;
                gather_carry(rank, self.trainer.carry.as_ref())?
            }
            None => self.trainer.carry.clone(),
        };
        self.dir.save(
            &self.trainer.state_tensors(every_rank.as_ref())?,
            &mut state,
            &Retention::of(self.run),
        )
    }
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
