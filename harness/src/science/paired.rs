//! Paired comparisons: two models trained on the same data with the same seed index form a
//! pair, and the difference A - B of each metric over the pairs goes to the statistics
//! engine (`crate::science::stats`): seed-level t interval, sign-flip p-value, detectable difference,
//! and the two-level bootstrap over seeds and the shared test examples. The Wilson intervals
//! of one run cover test sampling only; a verdict between models needs both sources.

use crate::run::answer_rules::AnswerRule;
use crate::run::bits::ExampleBits;
use crate::science::record::{by_model, ResultRecord};
use crate::science::stats::{
    hull, two_level_bootstrap, PairBits, Reading, SeedLevel, ALPHA, MIN_SEEDS_FOR_VERDICT, POWER,
};
use serde::{Deserialize, Serialize};

/// The difference `a - b` of one metric over the seeds both models ran, with what the
/// statistics engine (`crate::science::stats`) makes of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub metric: String,
    /// The metric named in advance as the comparison's headline (`headline_metric`); the
    /// others are secondary and never decide a verdict.
    pub headline: bool,
    pub a: String,
    pub b: String,
    pub seeds: Vec<u64>,
    /// a - b of each pair, in the seeds' order.
    pub differences: Vec<f64>,
    pub seed_level: SeedLevel,
    /// The two-level bootstrap over seeds and the shared test examples, widened to contain
    /// the seed-level t interval; absent where the metric is not a per-example proportion
    /// (ARC pass@2 is per task).
    pub seeds_and_examples: Option<(f64, f64)>,
    pub reading: Reading,
}

impl PairedDifference {
    pub fn mean(&self) -> f64 {
        self.seed_level.mean
    }

    /// The interval a verdict rests on: both sources of variation where both are known,
    /// else the seed-level t interval; none for one pair without per-example bits.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.seeds_and_examples.or(self.seed_level.t_interval)
    }

    /// How `interval` was computed, in words.
    pub fn method(&self) -> String {
        let n = self.seed_level.n;
        match (self.seeds_and_examples.is_some(), n) {
            (true, 1) => "bootstrap over the test examples (one seed)".into(),
            (true, _) => "two-level bootstrap: seeds, and one draw of test examples shared by every seed and both models; widened to contain the seed-level t interval".into(),
            (false, 1) => "none (one seed, no per-example results)".into(),
            (false, _) => format!("Student t over the seeds ({} degrees of freedom)", n - 1),
        }
    }

    /// One sentence a reviewer can quote: the difference, its interval and p-value, the
    /// reading, and the smallest difference these seeds would have detected.
    pub fn verdict(&self) -> String {
        let s = &self.seed_level;
        let pts = |v: f64| format!("{:+.1}", 100.0 * v);
        let interval = self
            .interval()
            .map_or("no interval".to_string(), |(lo, hi)| {
                format!(
                    "95% interval [{}, {}] ({})",
                    pts(lo),
                    pts(hi),
                    self.method()
                )
            });
        let role = if self.headline {
            "headline"
        } else {
            "secondary"
        };
        let reading = match self.reading {
            Reading::AAhead => format!("{} is ahead", self.a),
            Reading::BAhead => format!("{} is ahead", self.b),
            Reading::NotApart => "these seeds do not tell the models apart".to_string(),
            Reading::TooFewSeeds => format!(
                "{} of {} seeds favour {}, {} favour {}: no verdict, which needs at least {} paired seeds (the exact sign-flip test cannot reach p < {} with fewer)",
                s.favour_a, s.n, self.a, s.favour_b, self.b, MIN_SEEDS_FOR_VERDICT, ALPHA
            ),
        };
        let detectable = s.detectable.map_or(String::new(), |d| {
            format!(
                "; a true difference under {:.1} points would likely go unseen with these seeds ({:.0}% power)",
                100.0 * d,
                100.0 * POWER
            )
        });
        format!(
            "{} − {} on {} ({role}): {} points over {} paired seed{}, {interval}, sign-flip p = {:.3}: {reading}{detectable}.",
            self.a,
            self.b,
            self.metric,
            pts(s.mean),
            s.n,
            if s.n == 1 { "" } else { "s" },
            s.sign_flip_p,
        )
    }
}

/// A metric as the record's value and, where there is one, its per-example bits.
type Metric = fn(&ResultRecord) -> Option<(f64, Option<&ExampleBits>)>;

/// The headline metric of a task, named before any run: valid shortest path for mazes
/// (any shortest path is right), pass@2 for ARC (the papers' metric), exact accuracy else.
pub fn headline_metric(task: &str) -> &'static str {
    if task == "maze-hard" {
        "valid shortest path"
    } else if task.starts_with("arc-") {
        "pass@2 (strict)"
    } else {
        "exact accuracy"
    }
}

/// The headline metric's value in one evaluation.
pub fn headline_value(task: &str, e: &crate::run::eval::Evaluation) -> Option<f64> {
    headline_proportion(task, e).map(|p| p.value)
}

/// The headline metric in one evaluation, with its counts (ARC: tasks).
pub fn headline_proportion(
    task: &str,
    e: &crate::run::eval::Evaluation,
) -> Option<datasets::score::Proportion> {
    if task == "maze-hard" {
        e.maze_valid_path
    } else if task.starts_with("arc-") {
        e.arc.as_ref()?.strict.get(&2).copied()
    } else {
        Some(e.exact)
    }
}

/// Every metric of a task, the headline first.
fn metrics(task: &str) -> Vec<(&'static str, Metric)> {
    let mut out: Vec<(&'static str, Metric)> = vec![
        ("exact accuracy", |r| {
            Some((r.metrics.exact.value, Some(&r.metrics.per_example.exact)))
        }),
        ("exact at halting step", |r| {
            Some((
                r.metrics.exact_at_halt.value,
                Some(&r.metrics.per_example.exact_at_halt),
            ))
        }),
    ];
    if task == "maze-hard" {
        out.push(("valid shortest path", |r| {
            let v = r.metrics.maze_valid_path?;
            Some((v.value, r.metrics.per_example.maze_valid_path.as_ref()))
        }));
    }
    if task.starts_with("arc-") {
        out.push(("pass@2 (strict)", |r| {
            Some((r.metrics.arc.as_ref()?.strict[&2].value, None))
        }));
    }
    out.extend(
        [
            rule_metric::<0> as Metric,
            rule_metric::<1>,
            rule_metric::<2>,
            rule_metric::<3>,
            rule_metric::<4>,
        ]
        .into_iter()
        .zip(AnswerRule::ALL)
        .map(|(metric, rule)| (rule.metric_name(), metric)),
    );
    let headline = headline_metric(task);
    out.sort_by_key(|(name, _)| *name != headline);
    out
}

/// The per-example headline at the answer of rule `AnswerRule::ALL[R]` (records made
/// before the rules were scored have none, and are left out of its comparison).
fn rule_metric<const R: usize>(r: &ResultRecord) -> Option<(f64, Option<&ExampleBits>)> {
    let score = r
        .metrics
        .answer_rules
        .iter()
        .find(|s| s.rule == AnswerRule::ALL[R])?;
    Some((score.right.value, Some(&score.per_example)))
}

/// Pairs of records by seed on the same dataset: the first model's runs against `b_runs`.
pub fn pairs_by_seed<'r>(
    a_runs: &[&'r ResultRecord],
    b_runs: &[&'r ResultRecord],
) -> Vec<(&'r ResultRecord, &'r ResultRecord)> {
    a_runs
        .iter()
        .filter_map(|ra| {
            let rb = b_runs
                .iter()
                .find(|rb| rb.seed == ra.seed && rb.dataset_hash == ra.dataset_hash)?;
            Some((*ra, *rb))
        })
        .collect()
}

/// The first model against each other model, for every metric of the task; pairs are the
/// seeds both ran on the same dataset.
pub fn paired_differences(records: &[ResultRecord]) -> Vec<PairedDifference> {
    let groups = by_model(records);
    let Some(((a, a_runs), others)) = groups.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (b, b_runs) in others {
        out.extend(compare_runs((a, b), &pairs_by_seed(a_runs, b_runs)));
    }
    out
}

/// Every metric of the task for these pairs of runs (`names` = (A's, B's)).
pub fn compare_runs(
    names: (&str, &str),
    pairs: &[(&ResultRecord, &ResultRecord)],
) -> Vec<PairedDifference> {
    let Some((first, _)) = pairs.first() else {
        return Vec::new();
    };
    let headline = headline_metric(&first.task);
    metrics(&first.task)
        .into_iter()
        .filter_map(|(name, metric)| difference(name, name == headline, names, pairs, metric))
        .collect()
}

fn difference(
    name: &str,
    headline: bool,
    (a, b): (&str, &str),
    pairs: &[(&ResultRecord, &ResultRecord)],
    metric: Metric,
) -> Option<PairedDifference> {
    let mut differences = Vec::with_capacity(pairs.len());
    let mut bits = Vec::with_capacity(pairs.len());
    for (ra, rb) in pairs {
        let ((va, bits_a), (vb, bits_b)) = (metric(ra)?, metric(rb)?);
        differences.push(va - vb);
        bits.push(match (bits_a, bits_b) {
            (Some(x), Some(y)) => Some(PairBits { a: &x.0, b: &y.0 }),
            _ => None,
        });
    }
    let seed_level = SeedLevel::of(&differences);
    let seeds_and_examples = bits
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .and_then(|bits| two_level_bootstrap(&bits))
        .map(|boot| match seed_level.t_interval {
            Some(t) => hull(boot, t),
            None => boot,
        });
    let interval = seeds_and_examples
        .or(seed_level.t_interval)
        .unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    Some(PairedDifference {
        metric: name.into(),
        headline,
        a: a.into(),
        b: b.into(),
        seeds: pairs.iter().map(|(ra, _)| ra.seed).collect(),
        reading: Reading::of(&seed_level, interval),
        differences,
        seed_level,
        seeds_and_examples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_need_the_seeds_and_follow_the_interval() {
        // The reference's first three seeds.
        let records: Vec<ResultRecord> = crate::test_support::reference_records()
            .into_iter()
            .filter(|r| r.seed < 3)
            .collect();
        let headline = |d: &[PairedDifference]| d.iter().find(|d| d.headline).unwrap().clone();
        // HRM replaced by copies of TRM: no difference, and no verdict.
        let twins: Vec<ResultRecord> = records
            .iter()
            .filter(|r| r.model == "trm-att")
            .flat_map(|r| {
                let mut copy = r.clone();
                copy.model = "hrm".into();
                [r.clone(), copy]
            })
            .collect();
        let d = headline(&paired_differences(&twins));
        assert_eq!(d.metric, "valid shortest path");
        assert_eq!((d.mean(), d.interval()), (0.0, Some((0.0, 0.0))));
        // TRM right on every test example of every seed: the three seeds agree, but three
        // pairs cannot give p < 0.05, so the sentence counts them instead of naming a winner.
        let mut ahead = records.clone();
        for r in ahead.iter_mut().filter(|r| r.model == "trm-att") {
            let n = r.metrics.examples as u64;
            r.metrics.maze_valid_path = Some(datasets::score::wilson(n, n));
            r.metrics.per_example.maze_valid_path = Some(ExampleBits(vec![true; n as usize]));
        }
        let d = headline(&paired_differences(&ahead));
        assert_eq!(d.seeds, [0, 1, 2]);
        assert_eq!(d.reading, Reading::TooFewSeeds);
        assert!(
            d.verdict().contains("3 of 3 seeds favour trm-att, 0 favour hrm: no verdict, which needs at least 6 paired seeds"),
            "{}",
            d.verdict()
        );
        // Six pairs that agree: now a winner, with its p-value.
        let mut six = ahead.clone();
        for r in ahead.iter() {
            let mut copy = r.clone();
            copy.seed += 3;
            six.push(copy);
        }
        let d = headline(&paired_differences(&six));
        assert_eq!(d.reading, Reading::AAhead, "{}", d.verdict());
        assert!(
            d.verdict()
                .contains("sign-flip p = 0.031: trm-att is ahead"),
            "{}",
            d.verdict()
        );
        // The interval with the examples is never narrower than the seeds' t interval.
        let d = headline(&paired_differences(&records));
        let (t, both) = (d.seed_level.t_interval.unwrap(), d.interval().unwrap());
        assert!(both.0 <= t.0 && both.1 >= t.1, "{d:?}");
        // Seeds without a partner are not paired.
        let d = headline(&paired_differences(&records[..3]));
        assert_eq!(d.seeds, [0]);
        assert!(d.verdict().contains("1 paired seed,"), "{}", d.verdict());
    }
}

/// The verdicts' error rates, measured by simulation: two models whose per-seed accuracy
/// varies with the training seed, scored on one shared test set drawn once per trial.
#[cfg(test)]
mod simulation {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    const EXAMPLES: usize = 120;
    const TRIALS: usize = 300;

    /// Records of one trial: `seeds` paired seeds, model A's expected accuracy `delta` above
    /// B's, seed-to-seed spread 6 points, one test set shared by every run.
    fn trial(
        template: &ResultRecord,
        seeds: u64,
        delta: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<ResultRecord> {
        let difficulty: Vec<f64> = (0..EXAMPLES).map(|_| rng.random()).collect();
        let mut out = Vec::new();
        for seed in 0..seeds {
            for (model, shift) in [("trm-att", delta), ("hrm", 0.0)] {
                let z: f64 = rng.sample(StandardNormal);
                let p = (0.5 + shift + 0.06 * z).clamp(0.01, 0.99);
                // Mostly the shared difficulty decides, partly chance: P(right) = p either way.
                let bits: Vec<bool> = difficulty
                    .iter()
                    .map(|&u| {
                        if rng.random::<f64>() < 0.8 {
                            u < p
                        } else {
                            rng.random::<f64>() < p
                        }
                    })
                    .collect();
                let right = bits.iter().filter(|&&b| b).count() as u64;
                let mut r = template.clone();
                r.task = "sudoku-small".into();
                r.model = model.into();
                r.seed = seed;
                r.metrics.examples = EXAMPLES;
                r.metrics.exact = datasets::score::wilson(right, EXAMPLES as u64);
                r.metrics.exact_at_halt = r.metrics.exact;
                // The secondary metric gets no bits: only the headline is simulated.
                r.metrics.per_example.exact = ExampleBits(bits);
                r.metrics.per_example.exact_at_halt = ExampleBits::default();
                r.metrics.per_example.maze_valid_path = None;
                r.metrics.maze_valid_path = None;
                out.push(r);
            }
        }
        out
    }

    /// (share of trials naming a winner, share whose interval covers `delta`).
    fn rates(seeds: u64, delta: f64) -> (f64, f64) {
        let template = crate::test_support::reference_records().remove(0);
        let mut rng = ChaCha8Rng::seed_from_u64(seeds * 1000 + (delta * 100.0) as u64);
        let (mut named, mut covered) = (0, 0);
        for _ in 0..TRIALS {
            let records = trial(&template, seeds, delta, &mut rng);
            let d = paired_differences(&records).remove(0);
            assert_eq!(d.metric, "exact accuracy");
            named += d.verdict().contains(" is ahead") as usize;
            let (lo, hi) = d.interval().unwrap();
            covered += (lo <= delta && delta <= hi) as usize;
        }
        (named as f64 / TRIALS as f64, covered as f64 / TRIALS as f64)
    }

    /// Two Monte Carlo standard errors of a 5% rate over `TRIALS` trials.
    fn slack() -> f64 {
        2.0 * (0.05f64 * 0.95 / TRIALS as f64).sqrt()
    }

    #[test]
    fn equal_models_get_a_verdict_at_most_five_percent_of_the_time() {
        for seeds in [3, 5, 10] {
            let (named, _) = rates(seeds, 0.0);
            eprintln!(
                "{seeds} seeds, equal models: a winner named in {:.1}% of trials",
                100.0 * named
            );
            assert!(
                named <= 0.05 + slack(),
                "{seeds} seeds: a winner named in {:.1}% of trials of equal models",
                100.0 * named
            );
        }
    }

    #[test]
    fn the_interval_covers_a_known_difference_at_least_95_percent_of_the_time() {
        for seeds in [3, 5, 10] {
            let (_, covered) = rates(seeds, 0.05);
            eprintln!(
                "{seeds} seeds, a 5-point difference: covered in {:.1}% of trials",
                100.0 * covered
            );
            assert!(
                covered >= 0.95 - slack(),
                "{seeds} seeds: the interval covered the true 5-point difference in {:.1}% of trials",
                100.0 * covered
            );
        }
    }
}
