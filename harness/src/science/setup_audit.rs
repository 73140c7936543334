//! The audit of a comparison's evaluation setup, beside the audit of its data: each rule a
//! reviewer applies to a claim "model A beats model B", checked on the result records, as
//! pass or warn with the evidence. It reads only the records (what a reader of a results
//! folder has), never the run directories.

use crate::science::record::{by_model, ResultRecord};
use crate::science::stats::MIN_SEEDS_FOR_VERDICT;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub rule: &'static str,
    pub verdict: Verdict,
    pub evidence: String,
}

fn check(rule: &'static str, ok: bool, evidence: String) -> Check {
    let verdict = if ok { Verdict::Pass } else { Verdict::Warn };
    Check {
        rule,
        verdict,
        evidence,
    }
}

/// `model: value` for every model, and whether all values are equal.
fn per_model<T: PartialEq + std::fmt::Display>(
    records: &[ResultRecord],
    value: impl Fn(&ResultRecord) -> T,
) -> (String, bool) {
    let mut parts = Vec::new();
    let mut values: Vec<T> = Vec::new();
    for (model, runs) in by_model(records) {
        let mut seen: Vec<T> = Vec::new();
        for r in runs {
            let v = value(r);
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        let shown: Vec<String> = seen.iter().map(|v| v.to_string()).collect();
        parts.push(format!("{model}: {}", shown.join(" / ")));
        for v in seen {
            if !values.contains(&v) {
                values.push(v);
            }
        }
    }
    (parts.join("; "), values.len() <= 1)
}

/// Every rule, in the order a reviewer reads them.
pub fn audit(records: &[ResultRecord]) -> Vec<Check> {
    let task = records.first().map_or("", |r| r.task.as_str());
    let mut out = vec![one_comparison(records)];
    out.extend(seed_rules(records));
    out.push(test_split_untouched(records));
    out.push(last_checkpoint(records));
    out.push(same_data(records));
    out.push(same_flops(records));
    out.push(same_protocol(records));
    out.push(same_ema(records));
    out.push(no_overrides(records));
    out.push(same_halting(records));
    if task == "maze-hard" {
        out.push(maze_valid_paths(records));
    }
    if task.starts_with("arc-") {
        out.push(arc_inductive(records));
        out.push(arc_pooling(records));
    }
    out
}

/// One setting per model and one record per model and seed, so that pairing by seed pairs
/// like with like (`comparison::not_one_comparison`).
fn one_comparison(records: &[ResultRecord]) -> Check {
    let why = crate::science::comparison::not_one_comparison(records);
    check(
        "one comparison (one setting, one record per model and seed)",
        why.is_none(),
        why.unwrap_or_else(|| format!("{} records of one setting", records.len())),
    )
}

/// Enough seeds for a verdict, and the same seed indices for every model.
fn seed_rules(records: &[ResultRecord]) -> Vec<Check> {
    let groups = by_model(records);
    let seed_sets: Vec<BTreeSet<u64>> = groups
        .iter()
        .map(|(_, runs)| runs.iter().map(|r| r.seed).collect())
        .collect();
    let describe = |f: &dyn Fn(&BTreeSet<u64>) -> String| -> String {
        groups
            .iter()
            .zip(&seed_sets)
            .map(|((model, _), s)| format!("{model}: {}", f(s)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    vec![
        check(
            SEEDS_RULE,
            seed_sets.iter().all(|s| s.len() >= MIN_SEEDS_FOR_VERDICT),
            describe(&|s| format!("{} seeds", s.len())),
        ),
        check(
            "seeds paired across models (same seed indices)",
            seed_sets.windows(2).all(|w| w[0] == w[1]),
            describe(&|s| {
                let listed: Vec<String> = s.iter().map(u64::to_string).collect();
                format!("seeds {}", listed.join(","))
            }),
        ),
    ]
}

fn last_checkpoint(records: &[ResultRecord]) -> Check {
    let last = records.iter().all(|r| {
        r.learning_curve
            .last()
            .is_none_or(|(step, _)| *step == r.train_steps)
    });
    check(
        "the scored checkpoint is the last one (never chosen on test)",
        last,
        if last {
            "every record scores the final checkpoint of its run on the whole test split".into()
        } else {
            "a record's last evaluation is not at its last training step".into()
        },
    )
}

fn same_data(records: &[ResultRecord]) -> Check {
    let (data, same) = per_model(records, |r| {
        crate::science::record::short_hash(&r.dataset_hash, 12)
    });
    check("same dataset (manifest hash) for every model", same, data)
}

fn same_protocol(records: &[ResultRecord]) -> Check {
    let (protocol, same) = per_model(records, |r| {
        let budgets: Vec<String> = r
            .metrics
            .test_time
            .iter()
            .map(|p| p.steps.to_string())
            .collect();
        format!(
            "{} test examples, test-time budgets {}",
            r.metrics.examples,
            budgets.join(",")
        )
    });
    check("same evaluation protocol for every model", same, protocol)
}

fn same_ema(records: &[ResultRecord]) -> Check {
    let (ema, same) = per_model(records, |r| match r.controls.ema {
        Some(rate) => format!("EMA {rate}"),
        None => "no EMA".into(),
    });
    check("EMA alike across models", same, ema)
}

fn no_overrides(records: &[ResultRecord]) -> Check {
    let overrides: BTreeSet<&String> = records.iter().flat_map(|r| &r.setting.overrides).collect();
    let listed: Vec<String> = overrides.iter().map(|o| format!("--set {o}")).collect();
    check(
        "no --set overrides (the preset as written)",
        overrides.is_empty(),
        if overrides.is_empty() {
            "none".into()
        } else {
            listed.join(" ")
        },
    )
}

fn same_halting(records: &[ResultRecord]) -> Check {
    let (halting, same) = per_model(records, |r| {
        let steps = r.controls.supervision_steps;
        if r.controls.halting_at_inference {
            format!(
                "answer at own halting step (at most {steps}), every-step answer reported beside"
            )
        } else {
            format!("{steps} steps, answer at own halting step reported beside")
        }
    });
    check(
        "halting at evaluation: the same rule for every model",
        same,
        halting,
    )
}

fn maze_valid_paths(records: &[ResultRecord]) -> Check {
    let scored = records.iter().all(|r| r.metrics.maze_valid_path.is_some());
    let rates: Vec<String> = by_model(records)
        .iter()
        .map(|(model, runs)| {
            let mean = |f: &dyn Fn(&ResultRecord) -> f64| {
                100.0 * runs.iter().map(|r| f(r)).sum::<f64>() / runs.len() as f64
            };
            format!(
                "{model}: exact {:.1}%, valid shortest path {:.1}% (mean of {} runs)",
                mean(&|r| r.metrics.exact.value),
                mean(&|r| r.metrics.maze_valid_path.map_or(0.0, |v| v.value)),
                runs.len()
            )
        })
        .collect();
    check(
        "mazes scored by any valid shortest path, beside exact match",
        scored,
        rates.join("; "),
    )
}

fn arc_inductive(records: &[ResultRecord]) -> Check {
    let (protocols, _) = per_model(records, arc_protocol);
    let inductive = records.iter().all(|r| arc_protocol(r) == "inductive");
    check(
        "ARC evaluation tasks unseen in training (inductive)",
        inductive,
        format!(
            "{protocols}{}",
            if inductive {
                ""
            } else {
                ": transductive, the evaluation tasks' demonstrations and identifiers are trained on (the papers' setting)"
            }
        ),
    )
}

pub const SEEDS_RULE: &str = "enough paired seeds for a verdict";
const FLOPS_TOLERANCE: f64 = 0.05;

/// No choice read the test split: evaluations during training read validation (or none
/// ran), and the scored checkpoint was fixed in advance.
fn test_split_untouched(records: &[ResultRecord]) -> Check {
    let (evidence, _) = per_model(records, |r| {
        format!(
            "evaluations during training on {}, {} checkpoint scored",
            r.selection.during_training, r.selection.scored_checkpoint
        )
    });
    let clean = records.iter().all(|r| !r.selection.read_test());
    check(
        "no choice read the test split",
        clean,
        if clean {
            evidence
        } else {
            format!("{evidence}: the test split informed a choice, so its score is optimistic")
        },
    )
}

/// The training budgets in FLOPs, the cost that matters, within 5% of each other.
fn same_flops(records: &[ResultRecord]) -> Check {
    let groups = by_model(records);
    let means: Vec<(&str, f64, BTreeSet<u64>)> = groups
        .iter()
        .map(|(m, runs)| {
            let flops = runs.iter().map(|r| r.train_flops).sum::<f64>() / runs.len() as f64;
            (*m, flops, runs.iter().map(|r| r.train_steps).collect())
        })
        .collect();
    let lo = means.iter().map(|m| m.1).fold(f64::INFINITY, f64::min);
    let hi = means.iter().map(|m| m.1).fold(0.0, f64::max);
    let spread = if lo > 0.0 {
        hi / lo - 1.0
    } else {
        f64::INFINITY
    };
    let listed: Vec<String> = means
        .iter()
        .map(|(m, f, steps)| {
            let steps: Vec<String> = steps.iter().map(u64::to_string).collect();
            format!("{m}: {:.3e} FLOPs in {} steps", f, steps.join("/"))
        })
        .collect();
    let ok = spread <= FLOPS_TOLERANCE;
    let mut evidence = format!(
        "{}; the dearest spends {:.1}% more than the cheapest",
        listed.join("; "),
        100.0 * spread
    );
    if !ok {
        evidence.push_str(
            "; `harness compare --match flops` gives every model the first model's training FLOPs",
        );
    }
    check(
        "same training budget in FLOPs (within 5%) for every model",
        ok,
        evidence,
    )
}

/// ARC: the headline is the last checkpoint's votes; the pool beside it counts the
/// eval-interval checkpoints only, never one saved because the run was interrupted.
fn arc_pooling(records: &[ResultRecord]) -> Check {
    let mut stray = Vec::new();
    for r in records {
        let interval = r.config.config.train.eval_interval.max(1);
        if let Some(p) = &r.arc_pooled_over_checkpoints {
            stray.extend(
                p.checkpoints
                    .iter()
                    .filter(|&&s| !s.is_multiple_of(interval) && s != r.train_steps)
                    .map(|s| format!("{} seed {}: step {s}", r.model, r.seed)),
            );
        }
    }
    let (votes, _) = per_model(records, |r| match &r.arc_pooled_over_checkpoints {
        Some(p) => format!(
            "headline: last checkpoint's votes; beside it, votes pooled over {} checkpoints",
            p.checkpoints.len()
        ),
        None => "last checkpoint's votes, no pool".into(),
    });
    check(
        "ARC headline from the last checkpoint; pools of eval-interval checkpoints only",
        stray.is_empty(),
        if stray.is_empty() {
            votes
        } else {
            format!(
                "{votes}; pooled checkpoints off the eval-interval schedule: {}",
                stray.join(", ")
            )
        },
    )
}

fn arc_protocol(r: &ResultRecord) -> String {
    r.config
        .config
        .data
        .get("protocol")
        .and_then(|v| v.as_str())
        .unwrap_or("transductive")
        .to_string()
}

/// The checks as a plain-text table.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.rule.len()).max().unwrap_or(0);
    checks
        .iter()
        .map(|c| {
            let verdict = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Warn => "WARN",
            };
            format!("{verdict}  {:<width$}  {}\n", c.rule, c.evidence)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warned(checks: &[Check]) -> Vec<&'static str> {
        checks
            .iter()
            .filter(|c| c.verdict == Verdict::Warn)
            .map(|c| c.rule)
            .collect()
    }

    /// The committed main job's records (six paired seeds), budgets in equal FLOPs, every
    /// choice on the validation split: a setup with nothing to warn about.
    fn sound_setup() -> Vec<ResultRecord> {
        let mut records = crate::test_support::reference_records();
        for r in &mut records {
            r.selection = crate::science::record::Selection {
                during_training: "validation".into(),
                scored_checkpoint: "last".into(),
            };
            r.train_flops = 1e12;
        }
        records
    }

    #[test]
    fn a_sound_setup_passes_and_each_flaw_is_named() {
        let records = sound_setup();
        assert_eq!(warned(&audit(&records)), Vec::<&str>::new());

        let twice: Vec<ResultRecord> = records.iter().chain(&records[..1]).cloned().collect();
        let checks = audit(&twice);
        assert_eq!(
            warned(&checks),
            ["one comparison (one setting, one record per model and seed)"]
        );
        assert!(checks[0].evidence.contains("appears twice"), "{checks:?}");

        let three: Vec<ResultRecord> = records.iter().filter(|r| r.seed < 3).cloned().collect();
        assert_eq!(warned(&audit(&three)), [SEEDS_RULE]);

        let mut on_test = records.clone();
        on_test[0].selection = crate::science::record::Selection::before_validation();
        let checks = audit(&on_test);
        assert_eq!(warned(&checks), ["no choice read the test split"]);

        let mut dearer = records.clone();
        for r in dearer.iter_mut().filter(|r| r.model == "hrm") {
            r.train_flops = 1.13e12;
        }
        let checks = audit(&dearer);
        assert_eq!(
            warned(&checks),
            ["same training budget in FLOPs (within 5%) for every model"]
        );
        assert!(
            checks
                .iter()
                .any(|c| c.evidence.contains("13.0% more") && c.evidence.contains("--match flops")),
            "{checks:?}"
        );

        let mut no_ema = records.clone();
        for r in no_ema.iter_mut().filter(|r| r.model == "hrm") {
            r.controls.ema = None;
        }
        let checks = audit(&no_ema);
        assert_eq!(warned(&checks), ["EMA alike across models"]);
        let ema = checks.iter().find(|c| c.verdict == Verdict::Warn).unwrap();
        assert!(
            ema.evidence.contains("trm-att: EMA 0.98; hrm: no EMA"),
            "{}",
            ema.evidence
        );

        let mut other_data = records.clone();
        other_data[1].dataset_hash = "f".repeat(64);
        assert_eq!(
            warned(&audit(&other_data)),
            [
                "one comparison (one setting, one record per model and seed)",
                "same dataset (manifest hash) for every model"
            ]
        );

        let mut unpaired = records.clone();
        unpaired.retain(|r| !(r.model == "hrm" && r.seed == 2));
        assert_eq!(
            warned(&audit(&unpaired)),
            [SEEDS_RULE, "seeds paired across models (same seed indices)"]
        );
    }
}
