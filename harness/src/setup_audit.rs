//! The audit of a comparison's evaluation setup, beside the audit of its data: each rule a
//! reviewer applies to a claim "model A beats model B", checked on the result records, as
//! pass or warn with the evidence. It reads only the records (what a reader of a results
//! folder has), never the run directories.

use crate::results::{by_model, ResultRecord};
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
    let groups = by_model(records);
    let seeds = |runs: &[&ResultRecord]| -> BTreeSet<u64> { runs.iter().map(|r| r.seed).collect() };
    let task = records.first().map_or("", |r| r.task.as_str());
    let mut out = Vec::new();

    let seed_sets: Vec<BTreeSet<u64>> = groups.iter().map(|(_, runs)| seeds(runs)).collect();
    let describe = |f: &dyn Fn(&BTreeSet<u64>) -> String| -> String {
        groups
            .iter()
            .zip(&seed_sets)
            .map(|((model, _), s)| format!("{model}: {}", f(s)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    out.push(check(
        "at least 3 training seeds per model",
        seed_sets.iter().all(|s| s.len() >= 3),
        describe(&|s| format!("{} seeds", s.len())),
    ));
    out.push(check(
        "seeds paired across models (same seed indices)",
        seed_sets.windows(2).all(|w| w[0] == w[1]),
        describe(&|s| {
            let listed: Vec<String> = s.iter().map(u64::to_string).collect();
            format!("seeds {}", listed.join(","))
        }),
    ));

    let last = records.iter().all(|r| {
        r.learning_curve
            .last()
            .is_none_or(|(step, _)| *step == r.train_steps)
    });
    out.push(check(
        "the scored checkpoint is the last one (never chosen on test)",
        last,
        if last {
            "every record scores the final checkpoint of its run on the whole test split".into()
        } else {
            "a record's last evaluation is not at its last training step".into()
        },
    ));

    let (data, same_data) = per_model(records, |r| crate::results::short_hash(&r.dataset_hash, 12));
    let (budget, same_budget) = per_model(records, |r| {
        if r.budget_match == "flops" {
            format!("equal FLOPs ({:.3e})", r.train_flops)
        } else {
            format!("{} steps ({} budget)", r.train_steps, r.budget_match)
        }
    });
    let flops_matched = records.iter().all(|r| r.budget_match == "flops") && {
        let f: Vec<f64> = records.iter().map(|r| r.train_flops).collect();
        let (lo, hi) = f
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        hi <= lo * 1.05
    };
    let (protocol, same_protocol) = per_model(records, |r| {
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
    out.push(check(
        "same dataset (manifest hash) for every model",
        same_data,
        data,
    ));
    out.push(check(
        "same training budget for every model",
        same_budget || flops_matched,
        budget,
    ));
    out.push(check(
        "same evaluation protocol for every model",
        same_protocol,
        protocol,
    ));

    let (ema, same_ema) = per_model(records, |r| match r.controls.ema {
        Some(rate) => format!("EMA {rate}"),
        None => "no EMA".into(),
    });
    out.push(check("EMA alike across models", same_ema, ema));

    let overrides: BTreeSet<&String> = records.iter().flat_map(|r| &r.setting.overrides).collect();
    out.push(check(
        "no --set overrides (the preset as written)",
        overrides.is_empty(),
        if overrides.is_empty() {
            "none".into()
        } else {
            overrides
                .iter()
                .map(|o| format!("--set {o}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    ));

    let (halting, same_halting) = per_model(records, |r| {
        let steps = r.controls.supervision_steps;
        if r.controls.halting_at_inference {
            format!(
                "answer at own halting step (at most {steps}), every-step answer reported beside"
            )
        } else {
            format!("{steps} steps, answer at own halting step reported beside")
        }
    });
    out.push(check(
        "halting at evaluation: the same rule for every model",
        same_halting,
        halting,
    ));

    if task == "maze-hard" {
        let scored = records.iter().all(|r| r.metrics.maze_valid_path.is_some());
        let rates: Vec<String> = groups
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
        let rates = rates.join("; ");
        out.push(check(
            "mazes scored by any valid shortest path, beside exact match",
            scored,
            rates,
        ));
    }
    if task.starts_with("arc-") {
        let (protocols, _) = per_model(records, arc_protocol);
        let inductive = records.iter().all(|r| arc_protocol(r) == "inductive");
        out.push(check(
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
        ));
        let (votes, _) = per_model(records, |r| match &r.arc_pooled_over_checkpoints {
            Some(p) => format!(
                "headline: last checkpoint's votes; pooled over {} checkpoints labelled apart",
                p.checkpoints.len()
            ),
            None => "last checkpoint's votes".into(),
        });
        out.push(check(
            "ARC headline from one checkpoint's votes (pooling labelled apart)",
            true,
            votes,
        ));
    }
    out
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

    #[test]
    fn the_readme_main_job_passes_and_each_flaw_is_named() {
        let records = crate::test_support::reference_records();
        assert_eq!(warned(&audit(&records)), Vec::<&str>::new());

        let one_seed: Vec<ResultRecord> = records.iter().filter(|r| r.seed == 0).cloned().collect();
        assert_eq!(
            warned(&audit(&one_seed)),
            ["at least 3 training seeds per model"]
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
            ["same dataset (manifest hash) for every model"]
        );

        let mut unpaired = records.clone();
        unpaired.retain(|r| !(r.model == "hrm" && r.seed == 2));
        assert_eq!(
            warned(&audit(&unpaired)),
            [
                "at least 3 training seeds per model",
                "seeds paired across models (same seed indices)"
            ]
        );
    }
}
