//! Two families at equal training compute. At each budget a family's configuration is the
//! best one whose training cost is at most the budget, judged by its headline metric on the
//! validation split (mean over its seeds): a step function, never an interpolation between
//! configurations nobody trained. The two chosen configurations are then scored once on the
//! test split, paired by seed, by the statistics engine (`paired::compare_runs`), so a
//! verdict at equal compute needs the same seeds and meets the same rules as any other.

use crate::science::collect::Group;
use crate::science::paired::{
    compare_runs, headline_metric, headline_value, pairs_by_seed, PairedDifference,
};
use crate::science::record::ResultRecord;
use serde::{Deserialize, Serialize};

/// One family's choice at one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The configuration's axis values (`key=value ...`).
    pub config: String,
    pub train_flops: f64,
    /// The mean headline metric it was chosen by, on `IsoPoint::chosen_on`.
    pub chosen_by: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsoPoint {
    /// The budget: the least training FLOPs at which these two choices are the best.
    pub train_flops: f64,
    pub a: Choice,
    pub b: Choice,
    /// The split the choices read: `validation`; `test` where a record has no validation
    /// scores (then the test difference below is optimistic and says so).
    pub chosen_on: String,
    /// The headline metric's difference a - b on the test split, paired by seed.
    pub difference: PairedDifference,
}

/// A configuration of a family: its runs (one per seed) and its mean training cost.
struct Candidate<'a> {
    group: &'a Group<'a>,
    flops: f64,
}

/// The first family against each other one, from a sweep's groups.
pub fn from_groups(groups: &[Group]) -> Vec<IsoPoint> {
    let mut families: Vec<(&str, Vec<Candidate>)> = Vec::new();
    for g in groups {
        let flops = g.runs.iter().map(|r| r.train_flops).sum::<f64>() / g.runs.len() as f64;
        let c = Candidate { group: g, flops };
        match families.iter_mut().find(|(m, _)| *m == g.model) {
            Some((_, configs)) => configs.push(c),
            None => families.push((g.model, vec![c])),
        }
    }
    let Some(((a, a_configs), others)) = families.split_first() else {
        return Vec::new();
    };
    let on_validation = groups
        .iter()
        .flat_map(|g| &g.runs)
        .all(|r| r.validation.is_some());
    others
        .iter()
        .flat_map(|(b, b_configs)| compare((a, a_configs), (b, b_configs), on_validation))
        .collect()
}

/// The mean headline metric of a configuration's runs on the split the choices read.
fn selection_score(c: &Candidate, on_validation: bool) -> Option<f64> {
    let task = &c.group.runs.first()?.task;
    let values: Option<Vec<f64>> = c
        .group
        .runs
        .iter()
        .map(|r| {
            let e = if on_validation {
                r.validation.as_ref()?
            } else {
                &r.metrics
            };
            headline_value(task, e)
        })
        .collect();
    let values = values?;
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// The best configuration costing at most `budget`: highest score, then the cheaper.
fn best_within<'c, 'a>(
    configs: &'c [Candidate<'a>],
    budget: f64,
    on_validation: bool,
) -> Option<(&'c Candidate<'a>, f64)> {
    configs
        .iter()
        .filter(|c| c.flops <= budget)
        .filter_map(|c| Some((c, selection_score(c, on_validation)?)))
        .max_by(|(x, sx), (y, sy)| sx.total_cmp(sy).then(y.flops.total_cmp(&x.flops)))
}

fn compare(
    (a, a_configs): (&str, &[Candidate]),
    (b, b_configs): (&str, &[Candidate]),
    on_validation: bool,
) -> Vec<IsoPoint> {
    let mut budgets: Vec<f64> = a_configs.iter().chain(b_configs).map(|c| c.flops).collect();
    budgets.sort_by(f64::total_cmp);
    budgets.dedup();
    let mut out: Vec<IsoPoint> = Vec::new();
    for budget in budgets {
        let (Some((ca, sa)), Some((cb, sb))) = (
            best_within(a_configs, budget, on_validation),
            best_within(b_configs, budget, on_validation),
        ) else {
            continue;
        };
        let choice = |c: &Candidate, score: f64| Choice {
            config: match c.group.variant {
                Some(v) => format!("{v}: {}", c.group.assignments.join(" ")),
                None => c.group.assignments.join(" "),
            },
            train_flops: c.flops,
            chosen_by: score,
        };
        let (choice_a, choice_b) = (choice(ca, sa), choice(cb, sb));
        if out
            .last()
            .is_some_and(|p| p.a.config == choice_a.config && p.b.config == choice_b.config)
        {
            continue;
        }
        let pairs = pairs_by_seed(&ca.group.runs, &cb.group.runs);
        let Some(difference) = headline_difference((a, b), &pairs) else {
            continue;
        };
        out.push(IsoPoint {
            train_flops: budget,
            a: choice_a,
            b: choice_b,
            chosen_on: if on_validation { "validation" } else { "test" }.into(),
            difference,
        });
    }
    out
}

fn headline_difference(
    names: (&str, &str),
    pairs: &[(&ResultRecord, &ResultRecord)],
) -> Option<PairedDifference> {
    let task = &pairs.first()?.0.task;
    compare_runs(names, pairs)
        .into_iter()
        .find(|d| d.metric == headline_metric(task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::record::ResultRecord;

    /// A sudoku record of `model` and `seed` with `flops`, and exact accuracy `test` on test
    /// and `val` on validation (200 examples, the first ones right).
    fn record(model: &str, seed: u64, flops: f64, (val, test): (f64, f64)) -> ResultRecord {
        let mut r = crate::test_support::reference_records().remove(0);
        let eval = |value: f64| {
            let mut e = r.metrics.clone();
            let right = (value * 200.0).round() as usize;
            e.examples = 200;
            e.exact = datasets::score::wilson(right as u64, 200);
            e.per_example.exact =
                crate::run::bits::ExampleBits((0..200).map(|i| i < right).collect());
            e
        };
        r.task = "sudoku-small".into();
        r.model = model.into();
        r.seed = seed;
        r.train_flops = flops;
        r.validation = Some(eval(val));
        r.metrics = eval(test);
        r
    }

    fn groups(records: &[(ResultRecord, String)]) -> Vec<Group<'_>> {
        let mut out: Vec<Group> = Vec::new();
        for (r, axes) in records {
            match out
                .iter_mut()
                .find(|g| g.model == r.model && g.assignments[0] == *axes)
            {
                Some(g) => g.runs.push(r),
                None => out.push(Group {
                    model: &r.model,
                    replaced_by: None,
                    variant: None,
                    variant_set: &[],
                    reference: false,
                    assignments: std::slice::from_ref(axes),
                    runs: vec![r],
                }),
            }
        }
        out
    }

    #[test]
    fn the_best_affordable_configuration_is_chosen_on_validation() {
        let mut records = Vec::new();
        for seed in 0..3 {
            // TRM: small (1e9) and large (1e11); the large one is best on validation.
            records.push((
                record("trm-att", seed, 1e9, (0.10, 0.20)),
                "w=1".to_string(),
            ));
            records.push((
                record("trm-att", seed, 1e11, (0.50, 0.40)),
                "w=3".to_string(),
            ));
            // HRM at 1e10: two configurations, the one that is worse on test wins on
            // validation, so the test split never decides.
            records.push((record("hrm", seed, 1e10, (0.30, 0.10)), "w=2".to_string()));
            records.push((record("hrm", seed, 1e10, (0.20, 0.45)), "w=2b".to_string()));
        }
        let points = from_groups(&groups(&records));
        let summary: Vec<(f64, &str, &str)> = points
            .iter()
            .map(|p| (p.train_flops, p.a.config.as_str(), p.b.config.as_str()))
            .collect();
        // At 1e10 TRM can only afford its small configuration: no interpolation toward 1e11.
        assert_eq!(summary, [(1e10, "w=1", "w=2"), (1e11, "w=3", "w=2")]);
        assert!(points.iter().all(|p| p.chosen_on == "validation"));
        assert!((points[0].difference.mean() - (0.20 - 0.10)).abs() < 1e-12);
        assert!((points[1].difference.mean() - (0.40 - 0.10)).abs() < 1e-12);
        assert_eq!(points[0].difference.seeds, [0, 1, 2]);
        assert_eq!(
            points[0].difference.reading,
            crate::science::stats::Reading::TooFewSeeds
        );
    }

    #[test]
    fn records_without_validation_scores_say_their_choice_read_test() {
        let mut records = Vec::new();
        for seed in 0..2 {
            for (model, flops) in [("trm-att", 1e9), ("hrm", 1e9)] {
                let mut r = record(model, seed, flops, (0.1, 0.2));
                r.validation = None;
                records.push((r, "w=1".to_string()));
            }
        }
        let points = from_groups(&groups(&records));
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].chosen_on, "test");
    }
}
