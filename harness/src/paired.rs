//! Paired comparisons: two models trained on the same data with the same seed index form a
//! pair, and the difference A - B of a metric is summarised by its mean over the pairs with
//! two bootstrap 95% intervals: over seeds (training randomness alone) and over seeds and
//! test examples together (resample the seeds, then each chosen seed's test examples, the
//! same examples for both models). The Wilson intervals of one run cover test sampling only;
//! a verdict between models needs both sources.

use crate::results::{by_model, ResultRecord};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};

/// One bit per test example (in split order), stored as hex digits (4 examples each, the
/// first example in the high bit) so that a record of a 400k-example split stays ~100 kB.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExampleBits(pub Vec<bool>);

impl Serialize for ExampleBits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let digits: String = self
            .0
            .chunks(4)
            .map(|c| {
                let v = c
                    .iter()
                    .enumerate()
                    .fold(0u32, |v, (i, &b)| v | ((b as u32) << (3 - i)));
                char::from_digit(v, 16).unwrap_or('0')
            })
            .collect();
        s.serialize_str(&format!("{}:{digits}", self.0.len()))
    }
}

impl<'de> Deserialize<'de> for ExampleBits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let (len, digits) = text
            .split_once(':')
            .ok_or_else(|| D::Error::custom("example bits are `count:hexdigits`"))?;
        let len: usize = len
            .parse()
            .map_err(|_| D::Error::custom(format!("example count {len:?} is not a number")))?;
        if digits.len() != len.div_ceil(4) {
            return Err(D::Error::custom(format!(
                "{} hex digits cannot hold {len} examples",
                digits.len()
            )));
        }
        let mut bits = Vec::with_capacity(len);
        for c in digits.chars() {
            let v = c
                .to_digit(16)
                .ok_or_else(|| D::Error::custom(format!("{c:?} is not a hex digit")))?;
            bits.extend((0..4).map(|i| v & (1 << (3 - i)) != 0));
        }
        bits.truncate(len);
        Ok(ExampleBits(bits))
    }
}

/// Which examples each metric counts as right, for the example-level bootstrap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerExample {
    pub exact: ExampleBits,
    pub exact_at_halt: ExampleBits,
    pub maze_valid_path: Option<ExampleBits>,
}

/// The difference `a - b` of one metric over the seeds both models ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub metric: String,
    pub a: String,
    pub b: String,
    pub seeds: Vec<u64>,
    /// a - b of each pair, in the seeds' order.
    pub differences: Vec<f64>,
    pub mean: f64,
    /// 95% percentile interval of the mean, resampling seeds.
    pub over_seeds: (f64, f64),
    /// 95% percentile interval of the mean, resampling seeds and then test examples; absent
    /// where the metric is not a per-example proportion (ARC pass@2 is per task).
    pub over_seeds_and_examples: Option<(f64, f64)>,
}

const RESAMPLES: usize = 10_000;
/// Fixed, so a report is reproducible to the digit.
const BOOTSTRAP_SEED: u64 = 0x5eed;

impl PairedDifference {
    /// The interval a verdict rests on: both sources of variation when both are known.
    pub fn interval(&self) -> (f64, f64) {
        self.over_seeds_and_examples.unwrap_or(self.over_seeds)
    }

    /// One sentence a reviewer can quote.
    pub fn verdict(&self) -> String {
        let (lo, hi) = self.interval();
        let pts = |v: f64| format!("{:+.1}", 100.0 * v);
        let sources = if self.over_seeds_and_examples.is_some() {
            "its seeds and test examples"
        } else {
            "its seeds"
        };
        let n = self.seeds.len();
        let pairs = if n == 1 {
            "1 paired seed".to_string()
        } else {
            format!("{n} paired seeds")
        };
        let reading = if lo > 0.0 {
            format!("{} is ahead", self.a)
        } else if hi < 0.0 {
            format!("{} is ahead", self.b)
        } else {
            "the interval contains zero: this comparison does not tell the models apart".into()
        };
        let caveat = if n < 3 {
            "; fewer than 3 seeds, so training randomness is barely measured"
        } else {
            ""
        };
        format!(
            "{} − {} on {}: {} points, 95% bootstrap interval [{}, {}] over {pairs} ({sources}): {reading}{caveat}.",
            self.a,
            self.b,
            self.metric,
            pts(self.mean),
            pts(lo),
            pts(hi)
        )
    }
}

pub const CSV_HEADER: &str = "metric,a,b,seeds,differences,mean,seeds_low,seeds_high,seeds_and_examples_low,seeds_and_examples_high";

pub fn csv_rows(diffs: &[PairedDifference]) -> Vec<Vec<String>> {
    let join = |v: Vec<String>| v.join(" ");
    diffs
        .iter()
        .map(|d| {
            let both = d.over_seeds_and_examples;
            vec![
                d.metric.clone(),
                d.a.clone(),
                d.b.clone(),
                join(d.seeds.iter().map(u64::to_string).collect()),
                join(d.differences.iter().map(|v| format!("{v:.6}")).collect()),
                format!("{:.6}", d.mean),
                format!("{:.6}", d.over_seeds.0),
                format!("{:.6}", d.over_seeds.1),
                crate::table::opt6(both.map(|b| b.0)),
                crate::table::opt6(both.map(|b| b.1)),
            ]
        })
        .collect()
}

/// A metric as the record's value and, where there is one, its per-example bits.
type Metric = fn(&ResultRecord) -> Option<(f64, Option<&ExampleBits>)>;

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
    out
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
        let pairs: Vec<(&ResultRecord, &ResultRecord)> = a_runs
            .iter()
            .filter_map(|ra| {
                let rb = b_runs
                    .iter()
                    .find(|rb| rb.seed == ra.seed && rb.dataset_hash == ra.dataset_hash)?;
                Some((*ra, *rb))
            })
            .collect();
        if pairs.is_empty() {
            continue;
        }
        for (name, metric) in metrics(&pairs[0].0.task) {
            if let Some(d) = difference(name, a, b, &pairs, metric) {
                out.push(d);
            }
        }
    }
    out
}

fn difference(
    name: &str,
    a: &str,
    b: &str,
    pairs: &[(&ResultRecord, &ResultRecord)],
    metric: Metric,
) -> Option<PairedDifference> {
    let mut differences = Vec::with_capacity(pairs.len());
    let mut discordant = Vec::with_capacity(pairs.len());
    for (ra, rb) in pairs {
        let ((va, bits_a), (vb, bits_b)) = (metric(ra)?, metric(rb)?);
        differences.push(va - vb);
        discordant.push(match (bits_a, bits_b) {
            (Some(x), Some(y)) if x.0.len() == y.0.len() && !x.0.is_empty() => {
                Some(Discordant::of(x, y))
            }
            _ => None,
        });
    }
    let mean = differences.iter().sum::<f64>() / differences.len() as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let over_seeds = percentile_interval(
        (0..RESAMPLES)
            .map(|_| resample_mean(&mut rng, differences.len(), |i, _| differences[i]))
            .collect(),
    );
    let over_seeds_and_examples = discordant
        .iter()
        .copied()
        .collect::<Option<Vec<_>>>()
        .map(|d| {
            percentile_interval(
                (0..RESAMPLES)
                    .map(|_| resample_mean(&mut rng, d.len(), |i, rng| d[i].resample(rng)))
                    .collect(),
            )
        });
    Some(PairedDifference {
        metric: name.into(),
        a: a.into(),
        b: b.into(),
        seeds: pairs.iter().map(|(ra, _)| ra.seed).collect(),
        differences,
        mean,
        over_seeds,
        over_seeds_and_examples,
    })
}

/// Mean of `n` draws with replacement of `value(index)`.
fn resample_mean(
    rng: &mut ChaCha8Rng,
    n: usize,
    mut value: impl FnMut(usize, &mut ChaCha8Rng) -> f64,
) -> f64 {
    (0..n)
        .map(|_| {
            let i = rng.random_range(0..n);
            value(i, rng)
        })
        .sum::<f64>()
        / n as f64
}

fn percentile_interval(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// A pair's test examples by outcome: only the examples one model gets right and the other
/// wrong move the difference, so resampling the examples is drawing these two counts from a
/// multinomial, in time independent of the split's size.
#[derive(Debug, Clone, Copy)]
struct Discordant {
    examples: u64,
    only_a: u64,
    only_b: u64,
}

impl Discordant {
    fn of(a: &ExampleBits, b: &ExampleBits) -> Self {
        let only = |x: &ExampleBits, y: &ExampleBits| {
            x.0.iter().zip(&y.0).filter(|(&p, &q)| p && !q).count() as u64
        };
        Discordant {
            examples: a.0.len() as u64,
            only_a: only(a, b),
            only_b: only(b, a),
        }
    }

    fn resample(&self, rng: &mut ChaCha8Rng) -> f64 {
        let n = self.examples;
        let p_a = self.only_a as f64 / n as f64;
        let only_a = draw_binomial(rng, n, p_a);
        let rest = n - only_a;
        let p_b = if p_a < 1.0 {
            (self.only_b as f64 / n as f64) / (1.0 - p_a)
        } else {
            0.0
        };
        let only_b = draw_binomial(rng, rest, p_b.min(1.0));
        (only_a as f64 - only_b as f64) / n as f64
    }
}

fn draw_binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    match Binomial::new(n, p) {
        Ok(d) => d.sample(rng),
        // p is a ratio of counts, within [0, 1] by construction.
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_interval() {
        let records = crate::test_support::reference_records();
        let exact = |d: &[PairedDifference]| d[0].clone();
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
        let d = exact(&paired_differences(&twins));
        assert_eq!((d.mean, d.interval()), (0.0, (0.0, 0.0)));
        assert!(
            d.verdict().contains("does not tell the models apart"),
            "{}",
            d.verdict()
        );
        // TRM right on every test example of every seed: ahead by a margin no resampling closes.
        let mut ahead = records.clone();
        for r in ahead.iter_mut().filter(|r| r.model == "trm-att") {
            let n = r.metrics.examples as u64;
            r.metrics.exact = datasets::score::wilson(n, n);
            r.metrics.per_example.exact = ExampleBits(vec![true; n as usize]);
        }
        let d = exact(&paired_differences(&ahead));
        assert_eq!(d.seeds, [0, 1, 2]);
        assert!(d.interval().0 > 0.0 && d.over_seeds.0 > 0.0, "{d:?}");
        assert!(
            d.verdict().contains(": trm-att is ahead."),
            "{}",
            d.verdict()
        );
        // The seeds-only interval spans the per-seed differences; examples widen it.
        let d = exact(&paired_differences(&records));
        let (min, max) = d
            .differences
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(d.over_seeds.0 >= min && d.over_seeds.1 <= max, "{d:?}");
        let both = d.over_seeds_and_examples.unwrap();
        assert!(
            both.0 <= d.over_seeds.0 + 0.01 && both.1 >= d.over_seeds.1 - 0.01,
            "{d:?}"
        );
        // Seeds without a partner are not paired; one pair says so.
        let d = exact(&paired_differences(&records[..3]));
        assert_eq!(d.seeds, [0]);
        assert!(
            d.verdict().contains("fewer than 3 seeds"),
            "{}",
            d.verdict()
        );
    }

    #[test]
    fn example_bits_round_trip_through_json() {
        for len in [0, 1, 3, 4, 5, 17] {
            let bits = ExampleBits((0..len).map(|i| i % 3 == 0).collect());
            let text = serde_json::to_string(&bits).unwrap();
            assert_eq!(serde_json::from_str::<ExampleBits>(&text).unwrap(), bits);
        }
        assert_eq!(
            serde_json::to_string(&ExampleBits(vec![true; 5])).unwrap(),
            "\"5:f8\""
        );
        for bad in ["\"5:f\"", "\"x:f8\"", "\"5:g8\"", "\"f8\""] {
            assert!(serde_json::from_str::<ExampleBits>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resampled_examples_keep_the_observed_difference_on_average() {
        let a = ExampleBits((0..1000).map(|i| i % 2 == 0).collect());
        let b = ExampleBits((0..1000).map(|i| i % 4 == 0).collect());
        let d = Discordant::of(&a, &b);
        assert_eq!((d.only_a, d.only_b), (250, 0));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<f64> = (0..4000).map(|_| d.resample(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.25).abs() < 0.005, "{mean}");
        // Binomial(1000, 0.25) / 1000 has sd 0.0137: the interval is about +-0.027 wide.
        let (lo, hi) = percentile_interval(draws);
        assert!(
            lo > 0.21 && lo < 0.235 && hi > 0.265 && hi < 0.29,
            "{lo} {hi}"
        );
    }
}
