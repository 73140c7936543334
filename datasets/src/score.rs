//! Scores with their uncertainty: exact and token accuracy with a 95% Wilson interval, the
//! maze "valid shortest path" rate beside exact match, and ARC pass@k after undoing each
//! version's augmentation and voting over all versions (ties broken by the mean halting
//! probability), scored both strictly (a task counts only if all its test inputs are right)
//! and by the ARC rule (the fraction of a task's test inputs that are right).

use crate::arc::augment::ArcAugmentation;
use crate::arc::encode::crop_prediction;
use crate::grid::Grid;
use std::collections::{BTreeMap, HashMap};

/// A proportion with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proportion {
    pub successes: u64,
    pub total: u64,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

pub fn wilson(successes: u64, total: u64) -> Proportion {
    if total == 0 {
        return Proportion {
            successes,
            total,
            value: 0.0,
            low: 0.0,
            high: 1.0,
        };
    }
    let z = 1.959963984540054;
    let (n, p) = (total as f64, successes as f64 / total as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / denom;
    Proportion {
        successes,
        total,
        value: p,
        // Clamped to contain p: rounding leaves 1e-17 gaps at p = 0 and p = 1.
        low: (centre - half).clamp(0.0, p),
        high: (centre + half).clamp(p, 1.0),
    }
}

/// Exact and token accuracy of predictions against labels (`ignore` positions skipped).
/// Labels may be slices of the split's arrays: nothing is copied.
pub fn sequence_accuracy<P: AsRef<[u8]>, L: AsRef<[u8]>>(
    predictions: &[P],
    labels: &[L],
    ignore: Option<u8>,
) -> (Proportion, Proportion) {
    let (mut exact, mut tokens, mut right) = (0u64, 0u64, 0u64);
    for (p, l) in predictions.iter().zip(labels) {
        let mut all = true;
        for (&a, &b) in p.as_ref().iter().zip(l.as_ref()) {
            if Some(b) == ignore {
                continue;
            }
            tokens += 1;
            if a == b {
                right += 1;
            } else {
                all = false;
            }
        }
        exact += all as u64;
    }
    (
        wilson(exact, predictions.len() as u64),
        wilson(right, tokens),
    )
}

/// Which predicted mazes mark a valid shortest path (any of them, not only the stored one).
pub fn maze_valid_paths<I: AsRef<[u8]>, P: AsRef<[u8]>>(
    inputs: &[I],
    predictions: &[P],
) -> Vec<bool> {
    inputs
        .iter()
        .zip(predictions)
        .map(|(i, p)| crate::maze::is_valid_shortest_path(i.as_ref(), p.as_ref()))
        .collect()
}

/// One prediction for one version of one test input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArcPrediction {
    pub task: String,
    /// Position of the input among the task's test pairs.
    pub test_index: usize,
    /// The version's augmentation (to undo).
    pub augmentation: ArcAugmentation,
    /// The predicted 30x30 canvas, in the version's frame.
    pub canvas: Vec<u8>,
    /// sigmoid(q_halt) of the prediction.
    pub halt_probability: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArcScores {
    /// k -> share of tasks with every test input among the top k (HRM's notebook).
    pub strict: BTreeMap<usize, Proportion>,
    /// k -> mean over tasks of the share of its test inputs among the top k (ARC rule, TRM).
    pub fractional: BTreeMap<usize, f64>,
    pub tasks: usize,
    pub test_inputs: usize,
    /// Test inputs for which no version produced a readable grid.
    pub without_candidates: usize,
}

/// Candidates for one test input, best first: (grid, votes, mean halting probability).
pub fn ranked_candidates(predictions: &[&ArcPrediction]) -> Vec<(Grid, usize, f64)> {
    let mut votes: Vec<(Grid, usize, f64)> = Vec::new();
    // Keyed by the grid: linear in the votes (about 10k per test input at paper scale
    // when checkpoints are pooled), where a search of the candidates was quadratic.
    let mut index: HashMap<Grid, usize> = HashMap::new();
    for p in predictions {
        let Some(grid) = crop_prediction(&p.canvas).map(|g| p.augmentation.invert(&g)) else {
            continue;
        };
        match index.get(&grid) {
            Some(&i) => {
                votes[i].1 += 1;
                votes[i].2 += p.halt_probability;
            }
            None => {
                index.insert(grid.clone(), votes.len());
                votes.push((grid, 1, p.halt_probability));
            }
        }
    }
    for v in &mut votes {
        v.2 /= v.1 as f64;
    }
    // Stable: full ties keep the order of first appearance.
    votes.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal))
    });
    votes
}

/// Votes over every version of every test input and scores pass@k for each `k`.
/// `solutions[task][i]` is the true output of test input `i`; tasks without any prediction
/// count as failed.
pub fn score_arc(
    predictions: &[ArcPrediction],
    solutions: &BTreeMap<String, Vec<Grid>>,
    ks: &[usize],
) -> ArcScores {
    let mut by_input: BTreeMap<(&str, usize), Vec<&ArcPrediction>> = BTreeMap::new();
    for p in predictions {
        by_input
            .entry((p.task.as_str(), p.test_index))
            .or_default()
            .push(p);
    }
    let mut strict_solved: BTreeMap<usize, u64> = ks.iter().map(|&k| (k, 0)).collect();
    let mut fractional: BTreeMap<usize, f64> = ks.iter().map(|&k| (k, 0.0)).collect();
    let mut without_candidates = 0;
    for (task, outputs) in solutions {
        let mut solved_inputs: BTreeMap<usize, usize> = ks.iter().map(|&k| (k, 0)).collect();
        for (i, truth) in outputs.iter().enumerate() {
            let ranked = by_input
                .get(&(task.as_str(), i))
                .map(|p| ranked_candidates(p))
                .unwrap_or_default();
            if ranked.is_empty() {
                without_candidates += 1;
            }
            let rank = ranked.iter().position(|(g, _, _)| g == truth);
            for &k in ks {
                if rank.is_some_and(|r| r < k) {
                    *solved_inputs.get_mut(&k).unwrap() += 1;
                }
            }
        }
        for &k in ks {
            let solved = solved_inputs[&k];
            if solved == outputs.len() && !outputs.is_empty() {
                *strict_solved.get_mut(&k).unwrap() += 1;
            }
            *fractional.get_mut(&k).unwrap() += solved as f64 / outputs.len().max(1) as f64;
        }
    }
    let tasks = solutions.len();
    ArcScores {
        strict: strict_solved
            .into_iter()
            .map(|(k, s)| (k, wilson(s, tasks as u64)))
            .collect(),
        fractional: fractional
            .into_iter()
            .map(|(k, f)| (k, f / tasks.max(1) as f64))
            .collect(),
        tasks,
        test_inputs: solutions.values().map(Vec::len).sum(),
        without_candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arc::encode::encode;

    #[test]
    fn wilson_matches_known_values() {
        let p = wilson(87, 100);
        // statsmodels proportion_confint(87, 100, method="wilson") = (0.7902, 0.9224)
        assert!(
            (p.low - 0.7902).abs() < 1e-4 && (p.high - 0.9224).abs() < 1e-4,
            "{p:?}"
        );
        let zero = wilson(0, 10);
        assert_eq!(zero.low, 0.0);
        assert!((zero.high - 0.2775).abs() < 1e-3);
        assert_eq!(wilson(0, 0).high, 1.0);
    }

    #[test]
    fn accuracies_skip_ignored_positions() {
        let (exact, tokens) = sequence_accuracy(
            &[vec![1, 2, 3], vec![1, 9, 3]],
            &[vec![1, 2, 0], vec![1, 2, 3]],
            Some(0),
        );
        assert_eq!((exact.successes, exact.total), (1, 2));
        assert_eq!((tokens.successes, tokens.total), (4, 5));
    }

    fn grid(rows: &[&[u8]]) -> Grid {
        Grid::new(
            rows.len(),
            rows[0].len(),
            rows.iter().flat_map(|r| r.to_vec()).collect(),
        )
    }

    /// A prediction of `g` made in the frame of `aug` (so `aug` must be undone to score it).
    fn predict(task: &str, i: usize, aug: ArcAugmentation, g: &Grid, q: f64) -> ArcPrediction {
        ArcPrediction {
            task: task.into(),
            test_index: i,
            augmentation: aug,
            canvas: encode(&aug.apply(g), 0, 0),
            halt_probability: q,
        }
    }

    #[test]
    fn votes_are_counted_after_undoing_each_augmentation() {
        let truth = grid(&[&[1, 2], &[3, 0]]);
        let wrong = grid(&[&[5]]);
        let rot = ArcAugmentation {
            dihedral: 1,
            colours: [0, 2, 3, 1, 4, 5, 6, 7, 8, 9],
        };
        let flip = ArcAugmentation {
            dihedral: 5,
            colours: [0, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        };
        let preds = vec![
            predict("t", 0, rot, &truth, 0.1),
            predict("t", 0, flip, &truth, 0.2),
            predict("t", 0, ArcAugmentation::identity(), &wrong, 0.9),
        ];
        let solutions = BTreeMap::from([("t".to_string(), vec![truth.clone()])]);
        let s = score_arc(&preds, &solutions, &[1, 2]);
        // The truth wins 2 votes to 1 although every version saw it in another frame.
        assert_eq!(s.strict[&1].successes, 1);
        assert_eq!(s.fractional[&1], 1.0);
    }

    #[test]
    fn ties_are_broken_by_mean_halting_probability() {
        let (a, b) = (grid(&[&[1]]), grid(&[&[2]]));
        let id = ArcAugmentation::identity();
        let preds = vec![
            predict("t", 0, id, &a, 0.3),
            predict("t", 0, id, &b, 0.8),
            predict("t", 0, id, &a, 0.5),
            predict("t", 0, id, &b, 0.6),
        ];
        let refs: Vec<&ArcPrediction> = preds.iter().collect();
        let ranked = ranked_candidates(&refs);
        assert_eq!((ranked[0].0.clone(), ranked[0].1), (b.clone(), 2));
        assert!((ranked[0].2 - 0.7).abs() < 1e-12 && (ranked[1].2 - 0.4).abs() < 1e-12);
        let truth_a = BTreeMap::from([("t".to_string(), vec![a])]);
        let s = score_arc(&preds, &truth_a, &[1, 2]);
        assert_eq!((s.strict[&1].successes, s.strict[&2].successes), (0, 1));
    }

    #[test]
    fn strict_and_fractional_rules_differ_on_multi_input_tasks() {
        let (x, y, z) = (grid(&[&[1]]), grid(&[&[2]]), grid(&[&[3]]));
        let id = ArcAugmentation::identity();
        // Task "two": input 0 right, input 1 wrong. Task "one": right. Task "none": no prediction.
        let preds = vec![
            predict("two", 0, id, &x, 0.5),
            predict("two", 1, id, &z, 0.5),
            predict("one", 0, id, &y, 0.5),
        ];
        let solutions = BTreeMap::from([
            ("two".to_string(), vec![x.clone(), y.clone()]),
            ("one".to_string(), vec![y.clone()]),
            ("none".to_string(), vec![z.clone()]),
        ]);
        let s = score_arc(&preds, &solutions, &[1]);
        assert_eq!((s.strict[&1].successes, s.strict[&1].total), (1, 3));
        assert!((s.fractional[&1] - (0.5 + 1.0 + 0.0) / 3.0).abs() < 1e-12);
        assert_eq!((s.tasks, s.test_inputs, s.without_candidates), (3, 4, 1));
    }

    #[test]
    fn maze_valid_paths_count_beyond_exact_match() {
        let parse = |s: &str| crate::maze::parse(s, true).unwrap();
        let input = parse("S       G");
        let stored = parse("S  o  ooG");
        let other = parse("Soo  o  G");
        let invalid = parse("So      G");
        let valid = maze_valid_paths(
            &[input.clone(), input.clone(), input],
            &[stored.clone(), other.clone(), invalid],
        );
        assert_eq!(valid, [true, true, false]);
        let (exact, _) = sequence_accuracy(&[other], &[stored], None);
        assert_eq!(exact.successes, 0);
    }
}
