//! Two families at equal training compute: each family's frontier (mean exact accuracy over
//! seeds of each configuration, the configurations no cheaper one beats) read at the same
//! training FLOPs, linearly in log FLOPs between frontier points and held at its best past
//! the last one; the difference with a bootstrap interval over seeds (the same resampled
//! seed indices for both families, as the runs are paired by seed).

use crate::collect::{frontier, Group};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;

/// One configuration of a family: its training FLOPs and exact accuracy per seed.
#[derive(Debug, Clone)]
pub struct Config {
    pub flops: f64,
    pub by_seed: BTreeMap<u64, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IsoPoint {
    pub train_flops: f64,
    pub a: String,
    pub b: String,
    pub a_exact: f64,
    pub b_exact: f64,
    /// a - b, and its 95% percentile interval over seeds.
    pub difference: f64,
    pub interval: (f64, f64),
    pub seeds: usize,
}

/// (training FLOPs, accuracy) by increasing cost and accuracy.
type Frontier = Vec<(f64, f64)>;

const RESAMPLES: usize = 2000;
const BOOTSTRAP_SEED: u64 = 0x150;

/// A family's frontier read at `budget`; `None` below its cheapest configuration.
fn at(frontier: &[(f64, f64)], budget: f64) -> Option<f64> {
    let first = frontier.first()?;
    if budget < first.0 {
        return None;
    }
    for w in frontier.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if budget <= x1 {
            let t = (budget.ln() - x0.ln()) / (x1.ln() - x0.ln());
            return Some(y0 + t * (y1 - y0));
        }
    }
    frontier.last().map(|p| p.1)
}

/// The frontier of a family when its seeds are `seeds` (indices may repeat).
fn family_frontier(configs: &[Config], seeds: &[u64]) -> Frontier {
    let points = configs
        .iter()
        .map(|c| {
            let mean = seeds.iter().map(|s| c.by_seed[s]).sum::<f64>() / seeds.len() as f64;
            (c.flops, mean)
        })
        .collect();
    frontier(points)
}

/// `a` against `b` at three training budgets spread (in log FLOPs) over the range where
/// both frontiers are defined; empty when the ranges do not overlap or no seed is common to
/// every configuration.
pub fn compare(a: (&str, &[Config]), b: (&str, &[Config])) -> Vec<IsoPoint> {
    let common: Vec<u64> =
        a.1.iter()
            .chain(b.1)
            .map(|c| {
                c.by_seed
                    .keys()
                    .copied()
                    .collect::<std::collections::BTreeSet<u64>>()
            })
            .reduce(|x, y| &x & &y)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
    if common.is_empty() {
        return Vec::new();
    }
    let (fa, fb) = (family_frontier(a.1, &common), family_frontier(b.1, &common));
    // Where both families ran: from the dearer of the two cheapest configurations to the
    // cheaper of the two dearest.
    let cost = |configs: &[Config], pick: fn(f64, f64) -> f64, start: f64| {
        configs.iter().map(|c| c.flops).fold(start, pick)
    };
    let lo = cost(a.1, f64::min, f64::INFINITY).max(cost(b.1, f64::min, f64::INFINITY));
    let hi = cost(a.1, f64::max, 0.0).min(cost(b.1, f64::max, 0.0));
    if !(lo.is_finite() && lo > 0.0) || lo > hi {
        return Vec::new();
    }
    // Clamped: exp(ln(x)) may round to just below x, outside a frontier.
    let budgets = [0.0, 0.5, 1.0].map(|t| (lo.ln() + t * (hi.ln() - lo.ln())).exp().clamp(lo, hi));
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_SEED);
    let draws: Vec<Vec<u64>> = (0..RESAMPLES)
        .map(|_| {
            (0..common.len())
                .map(|_| common[rng.random_range(0..common.len())])
                .collect()
        })
        .collect();
    let resampled: Vec<(Frontier, Frontier)> = draws
        .iter()
        .map(|s| (family_frontier(a.1, s), family_frontier(b.1, s)))
        .collect();
    budgets
        .iter()
        .filter_map(|&budget| {
            let (ya, yb) = (at(&fa, budget)?, at(&fb, budget)?);
            let mut diffs: Vec<f64> = resampled
                .iter()
                .filter_map(|(ra, rb)| Some(at(ra, budget)? - at(rb, budget)?))
                .collect();
            diffs.sort_by(f64::total_cmp);
            let q = |p: f64| diffs[((diffs.len() - 1) as f64 * p).round() as usize];
            Some(IsoPoint {
                train_flops: budget,
                a: a.0.to_string(),
                b: b.0.to_string(),
                a_exact: ya,
                b_exact: yb,
                difference: ya - yb,
                interval: (q(0.025), q(0.975)),
                seeds: common.len(),
            })
        })
        .collect()
}

/// The first family against each other one, from a sweep's groups.
pub fn from_groups(groups: &[Group]) -> Vec<IsoPoint> {
    let mut families: Vec<(&str, Vec<Config>)> = Vec::new();
    for g in groups {
        let config = Config {
            flops: g.runs.iter().map(|r| r.train_flops).sum::<f64>() / g.runs.len() as f64,
            by_seed: g
                .runs
                .iter()
                .map(|r| (r.seed, r.metrics.exact.value))
                .collect(),
        };
        match families.iter_mut().find(|(m, _)| *m == g.model) {
            Some((_, configs)) => configs.push(config),
            None => families.push((g.model, vec![config])),
        }
    }
    let Some(((a, a_configs), others)) = families.split_first() else {
        return Vec::new();
    };
    others
        .iter()
        .flat_map(|(b, b_configs)| compare((a, a_configs), (b, b_configs)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(accuracy: [f64; 3], noise: f64) -> Vec<Config> {
        [1e9, 1e10, 1e11]
            .iter()
            .zip(accuracy)
            .map(|(&flops, y)| Config {
                flops,
                by_seed: (0..3).map(|s| (s, y + noise * (s as f64 - 1.0))).collect(),
            })
            .collect()
    }

    #[test]
    fn a_family_ahead_everywhere_is_ahead_at_equal_compute() {
        let a = family([0.1, 0.3, 0.5], 0.01);
        let b = family([0.2, 0.4, 0.6], 0.01);
        let points = compare(("trm", &a), ("hrm", &b));
        let budgets: Vec<f64> = points.iter().map(|p| p.train_flops).collect();
        assert_eq!(points.len(), 3);
        assert!((budgets[0] - 1e9).abs() < 1.0 && (budgets[2] - 1e11).abs() < 1e2);
        // Halfway in log FLOPs between 1e9 and 1e11 is the middle configuration.
        assert!((points[1].a_exact - 0.3).abs() < 1e-9, "{points:?}");
        for p in &points {
            assert!((p.difference + 0.1).abs() < 1e-9, "{p:?}");
            assert!(p.interval.1 < 0.0, "{p:?}");
        }
    }

    #[test]
    fn frontiers_interpolate_in_log_flops_and_hold_their_best() {
        let f = [(1e9, 0.1), (1e11, 0.5)];
        assert_eq!(at(&f, 1e8), None);
        assert!((at(&f, 1e10).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(at(&f, 1e12), Some(0.5));
    }
}
