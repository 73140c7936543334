//! The one statistics engine behind every verdict (compare, sweeps, iso-compute).
//!
//! The unit of evidence is the training seed: a pair is the two models trained with the same
//! seed index on the same data, and its difference is one observation. Over the `n` pairs:
//! - a Student t interval with `n - 1` degrees of freedom;
//! - the exact two-sided sign-flip permutation p-value (every one of the `2^n` sign patterns,
//!   which under "no difference" are equally likely); it cannot fall below `2 / 2^n`, so no
//!   verdict is possible below `MIN_SEEDS_FOR_VERDICT` pairs;
//! - the smallest difference these seeds would detect (80% power, from their spread);
//! - where each run says which test examples it got right, a two-level bootstrap: draw seeds,
//!   and per replicate one vector of test-example indices shared by every seed and both
//!   models (they were all scored on the same examples), widened to contain the t interval,
//!   so adding the examples' variation never narrows what the seeds alone allow.
//!
//! A winner is named only when the interval excludes zero and p < `ALPHA`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::HashMap;

/// Two-sided level of every interval and test.
pub const ALPHA: f64 = 0.05;
/// The power at which the detectable difference is quoted.
pub const POWER: f64 = 0.8;
/// The fewest pairs whose exact sign-flip test can reach p < `ALPHA` (2 / 2^6 = 0.031).
pub const MIN_SEEDS_FOR_VERDICT: usize = min_seeds_for(ALPHA);
/// Bootstrap replicates; fixed seed, so a report is reproducible to the digit.
const RESAMPLES: usize = 10_000;
const BOOTSTRAP_SEED: u64 = 0x5eed;
/// Above this many pairs the sign-flip p-value is estimated from random sign patterns.
const EXACT_SIGN_FLIP_MAX: usize = 22;
const SIGN_FLIP_DRAWS: usize = 200_000;

const fn min_seeds_for(alpha: f64) -> usize {
    let mut n = 1;
    // The two all-same sign patterns are the most extreme: p >= 2 / 2^n.
    while 2.0 / (1u64 << n) as f64 >= alpha {
        n += 1;
    }
    n
}

/// What the per-seed differences alone say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedLevel {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation of the differences (n - 1 in the denominator); none for one pair.
    pub sd: Option<f64>,
    /// 95% Student t interval of the mean; none for one pair.
    pub t_interval: Option<(f64, f64)>,
    /// Exact two-sided sign-flip permutation p-value (Monte Carlo above 22 pairs).
    pub sign_flip_p: f64,
    /// Pairs whose difference is positive (favour A) and negative (favour B).
    pub favour_a: usize,
    pub favour_b: usize,
    /// The true difference a two-sided 5% t test on these seeds detects with 80% power:
    /// smaller ones may well go unseen. None for one pair.
    pub detectable: Option<f64>,
}

impl SeedLevel {
    pub fn of(differences: &[f64]) -> SeedLevel {
        let n = differences.len();
        let mean = differences.iter().sum::<f64>() / n.max(1) as f64;
        let sd = (n >= 2).then(|| {
            let ss: f64 = differences.iter().map(|d| (d - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        let t = |q: f64| t_quantile(q, (n - 1) as f64);
        let t_interval = sd.map(|sd| {
            let half = t(1.0 - ALPHA / 2.0) * sd / (n as f64).sqrt();
            (mean - half, mean + half)
        });
        let detectable = sd.map(|sd| (t(1.0 - ALPHA / 2.0) + t(POWER)) * sd / (n as f64).sqrt());
        SeedLevel {
            n,
            mean,
            sd,
            t_interval,
            sign_flip_p: sign_flip_p(differences),
            favour_a: differences.iter().filter(|&&d| d > 0.0).count(),
            favour_b: differences.iter().filter(|&&d| d < 0.0).count(),
            detectable,
        }
    }
}

/// The q-quantile of Student's t with `df` degrees of freedom.
fn t_quantile(q: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(q))
        .unwrap_or(f64::NAN)
}

/// Two-sided p-value of "the differences are symmetric about zero": the share of sign
/// patterns whose |sum| is at least the observed one.
pub fn sign_flip_p(differences: &[f64]) -> f64 {
    if differences.len() <= EXACT_SIGN_FLIP_MAX {
        exact_sign_flip_p(differences)
    } else {
        sampled_sign_flip_p(differences)
    }
}

/// Whether a sum of signed differences is at least as far from zero as the observed one;
/// sums that differ from it by rounding alone count as ties.
fn at_least_as_extreme(differences: &[f64]) -> impl Fn(f64) -> bool {
    let observed = differences.iter().sum::<f64>().abs();
    let tolerance = 1e-9 * differences.iter().map(|d| d.abs()).sum::<f64>();
    move |sum: f64| sum.abs() >= observed - tolerance
}

fn exact_sign_flip_p(differences: &[f64]) -> f64 {
    let extreme = at_least_as_extreme(differences);
    // Gray code: each pattern differs from the last in one sign.
    let mut signs = vec![1.0; differences.len()];
    let mut sum: f64 = differences.iter().sum();
    let mut count = extreme(sum) as u64;
    for k in 1u64..(1 << differences.len()) {
        let i = k.trailing_zeros() as usize;
        signs[i] = -signs[i];
        sum += 2.0 * signs[i] * differences[i];
        count += extreme(sum) as u64;
    }
    count as f64 / (1u64 << differences.len()) as f64
}

fn sampled_sign_flip_p(differences: &[f64]) -> f64 {
    let extreme = at_least_as_extreme(differences);
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let count = (0..SIGN_FLIP_DRAWS)
        .filter(|_| {
            let sum: f64 = differences
                .iter()
                .map(|&d| if rng.random::<bool>() { d } else { -d })
                .sum();
            extreme(sum)
        })
        .count();
    // The observed pattern is one of the population drawn from: (count + 1) / (draws + 1).
    (count + 1) as f64 / (SIGN_FLIP_DRAWS + 1) as f64
}

/// Which test examples each model got right in one pair (the same examples, in split order).
pub struct PairBits<'a> {
    pub a: &'a [bool],
    pub b: &'a [bool],
}

/// The two-level bootstrap interval of the mean difference: per replicate, seeds drawn with
/// replacement and one draw of test examples (with replacement) applied to every seed and
/// both models. None when the pairs do not share one test set of the same size.
pub fn two_level_bootstrap(pairs: &[PairBits]) -> Option<(f64, f64)> {
    let examples = pairs.first()?.a.len();
    if examples == 0
        || pairs
            .iter()
            .any(|p| p.a.len() != examples || p.b.len() != examples)
    {
        return None;
    }
    let n = pairs.len();
    // Examples with the same per-seed differences are interchangeable: drawing examples is
    // drawing how many of each pattern, a multinomial over the patterns seen.
    let mut counts: HashMap<Vec<i8>, u64> = HashMap::new();
    for e in 0..examples {
        let pattern: Vec<i8> = pairs.iter().map(|p| p.a[e] as i8 - p.b[e] as i8).collect();
        *counts.entry(pattern).or_insert(0) += 1;
    }
    let mut patterns: Vec<(Vec<i8>, u64)> = counts.into_iter().collect();
    patterns.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let mut seed_weights = vec![0u32; n];
    let mut per_seed = vec![0i64; n];
    let mut samples = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        seed_weights.iter_mut().for_each(|w| *w = 0);
        for _ in 0..n {
            seed_weights[rng.random_range(0..n)] += 1;
        }
        per_seed.iter_mut().for_each(|v| *v = 0);
        let (mut left, mut mass_left) = (examples as u64, examples as u64);
        for (pattern, count) in &patterns {
            let drawn = draw_binomial(&mut rng, left, *count as f64 / mass_left as f64);
            (left, mass_left) = (left - drawn, mass_left - count);
            if drawn > 0 {
                for (v, &d) in per_seed.iter_mut().zip(pattern) {
                    *v += d as i64 * drawn as i64;
                }
            }
        }
        let total: f64 = per_seed
            .iter()
            .zip(&seed_weights)
            .map(|(&v, &w)| v as f64 * w as f64)
            .sum();
        samples.push(total / (n * examples) as f64);
    }
    Some(percentile_interval(samples))
}

fn draw_binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    match Binomial::new(n, p.clamp(0.0, 1.0)) {
        Ok(d) => d.sample(rng),
        // p is a ratio of counts, within [0, 1] by construction.
        Err(_) => 0,
    }
}

fn percentile_interval(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(ALPHA / 2.0), at(1.0 - ALPHA / 2.0))
}

/// The smallest interval holding both.
pub fn hull(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0.min(b.0), a.1.max(b.1))
}

/// What a comparison of two models may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The interval excludes zero above it and p < ALPHA.
    AAhead,
    BAhead,
    /// Enough seeds for a verdict, and they do not support one.
    NotApart,
    /// Fewer pairs than any verdict needs.
    TooFewSeeds,
}

impl Reading {
    pub fn of(seed_level: &SeedLevel, interval: (f64, f64)) -> Reading {
        if seed_level.n < MIN_SEEDS_FOR_VERDICT {
            Reading::TooFewSeeds
        } else if seed_level.sign_flip_p >= ALPHA {
            Reading::NotApart
        } else if interval.0 > 0.0 {
            Reading::AAhead
        } else if interval.1 < 0.0 {
            Reading::BAhead
        } else {
            Reading::NotApart
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_needs_six_pairs_at_five_percent() {
        assert_eq!(MIN_SEEDS_FOR_VERDICT, 6);
        assert_eq!(sign_flip_p(&[1.0; 5]), 2.0 / 32.0);
        assert_eq!(sign_flip_p(&[1.0; 6]), 2.0 / 64.0);
        assert_eq!(sign_flip_p(&[0.0; 4]), 1.0);
    }

    #[test]
    fn the_sign_flip_test_counts_the_patterns_at_least_as_extreme() {
        // Sums over the 8 sign patterns of (3, 1, 1): ±5 twice, ±3 four times, ±1 twice.
        assert_eq!(sign_flip_p(&[3.0, 1.0, 1.0]), 2.0 / 8.0);
        assert_eq!(sign_flip_p(&[3.0, -1.0, 1.0]), 6.0 / 8.0);
        // Past the exact limit, random patterns estimate the same share.
        let d: Vec<f64> = (0..24).map(|i| (i as f64 * 0.37).sin() + 0.3).collect();
        let (exact, sampled) = (exact_sign_flip_p(&d), sign_flip_p(&d));
        assert!(
            exact > 0.001 && (sampled - exact).abs() < 0.003,
            "{exact} {sampled}"
        );
    }

    #[test]
    fn the_t_interval_of_the_issue_example() {
        // The committed sudoku-small differences quoted in the Verdicts issue.
        let s = SeedLevel::of(&[-0.380, -0.058, -0.062]);
        let (lo, hi) = s.t_interval.unwrap();
        assert!(
            (lo + 0.626).abs() < 0.002 && (hi - 0.293).abs() < 0.002,
            "{lo} {hi}"
        );
        assert_eq!((s.favour_a, s.favour_b), (0, 3));
        assert_eq!(s.sign_flip_p, 0.25);
        assert_eq!(Reading::of(&s, (lo, hi)), Reading::TooFewSeeds);
        // Detectable at 80% power: (t_.975 + t_.8, df 2) sd / sqrt(3) = (4.303 + 1.061) sd / 1.732.
        let expected = (4.3027 + 1.0607) * s.sd.unwrap() / 3f64.sqrt();
        assert!((s.detectable.unwrap() - expected).abs() < 1e-3);
    }

    #[test]
    fn six_pairs_of_one_sign_with_a_clear_interval_name_a_winner() {
        let s = SeedLevel::of(&[0.10, 0.12, 0.08, 0.11, 0.09, 0.10]);
        assert!(s.sign_flip_p < ALPHA);
        assert_eq!(Reading::of(&s, s.t_interval.unwrap()), Reading::AAhead);
        let s = SeedLevel::of(&[0.10, 0.12, -0.08, 0.11, 0.09, 0.10]);
        assert_eq!(Reading::of(&s, s.t_interval.unwrap()), Reading::NotApart);
    }

    #[test]
    fn the_two_level_bootstrap_shares_one_draw_of_examples() {
        // A right on the first half of the examples in every seed, B never: the difference
        // is 0.5 in every seed, and only the shared draw of examples moves it.
        let a: Vec<bool> = (0..400).map(|e| e < 200).collect();
        let b = vec![false; 400];
        let pairs: Vec<PairBits> = (0..3).map(|_| PairBits { a: &a, b: &b }).collect();
        let (lo, hi) = two_level_bootstrap(&pairs).unwrap();
        // Binomial(400, 1/2) / 400 has sd 0.025: about ±0.049, the same as one seed's.
        assert!(
            lo > 0.44 && lo < 0.46 && hi > 0.54 && hi < 0.56,
            "{lo} {hi}"
        );
        let one = two_level_bootstrap(&pairs[..1]).unwrap();
        assert!((one.0 - lo).abs() < 0.01 && (one.1 - hi).abs() < 0.01);
        let short = vec![false; 3];
        assert_eq!(two_level_bootstrap(&[PairBits { a: &a, b: &short }]), None);
    }
}
