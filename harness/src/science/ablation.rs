//! Ablations: each variant of a plan against its family's reference (the plan's first
//! variant) at the same axis values, paired by seed, with the comparison's statistics engine:
//! the effect of one ingredient on one family, with its interval, and a verdict only where
//! the seeds support one.

use crate::science::collect::Group;
use crate::science::paired::{compare_runs, headline_value, pairs_by_seed, PairedDifference};
use crate::science::record::ResultRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub model: String,
    pub variant: String,
    /// What the variant changes: `model=M` for an architecture swap, then its `--set`
    /// overrides.
    pub overrides: Vec<String>,
    /// The axis values both groups share.
    pub axes: Vec<String>,
    /// The reference variant's name; none when none of its runs finished.
    pub reference: Option<String>,
    /// Runs paired by seed (same seed, same data) that both have the headline metric.
    pub paired_seeds: usize,
    /// The headline metric's mean over the paired runs of each side.
    pub reference_mean: Option<f64>,
    pub variant_mean: Option<f64>,
    /// Headline variant − reference over the paired runs.
    pub difference: Option<PairedDifference>,
}

/// Every non-reference variant's effect, in the plan's order, including those whose
/// reference never finished (no difference, and the table says why); none for a plan
/// without variants.
pub fn effects(groups: &[Group]) -> Vec<Effect> {
    groups
        .iter()
        .filter(|g| g.variant.is_some() && !g.reference)
        .map(|g| {
            let base = groups
                .iter()
                .find(|r| r.reference && r.model == g.model && r.assignments == g.assignments);
            effect(g, base)
        })
        .collect()
}

fn effect(g: &Group, base: Option<&Group>) -> Effect {
    let headline = |r: &ResultRecord| headline_value(&r.task, &r.metrics);
    let pairs: Vec<(&ResultRecord, &ResultRecord)> = base
        .map(|b| pairs_by_seed(&g.runs, &b.runs))
        .unwrap_or_default()
        .into_iter()
        .filter(|(a, b)| headline(a).is_some() && headline(b).is_some())
        .collect();
    // Over the paired runs only, so that the two means and the difference agree.
    let mean = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let variant_mean = mean(pairs.iter().filter_map(|(a, _)| headline(a)).collect());
    let reference_mean = mean(pairs.iter().filter_map(|(_, b)| headline(b)).collect());
    let difference = base.and_then(|b| {
        let (a_name, b_name) = (
            format!("{} {}", g.model, g.label()),
            format!("{} {}", b.model, b.label()),
        );
        compare_runs((a_name.as_str(), b_name.as_str()), &pairs)
            .into_iter()
            .find(|d| d.headline)
    });
    Effect {
        model: g.model.to_string(),
        variant: g.variant.unwrap_or_default().to_string(),
        overrides: g
            .replaced_by
            .map(|m| format!("model={m}"))
            .into_iter()
            .chain(g.variant_set.iter().cloned())
            .collect(),
        axes: g.assignments.to_vec(),
        reference: base.and_then(|b| b.variant).map(String::from),
        paired_seeds: pairs.len(),
        reference_mean,
        variant_mean,
        difference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group<'a>(
        model: &'a str,
        variant: &'a str,
        reference: bool,
        runs: &'a [ResultRecord],
    ) -> Group<'a> {
        Group {
            model,
            replaced_by: None,
            variant: Some(variant),
            variant_set: &[],
            reference,
            assignments: &[],
            runs: runs.iter().collect(),
        }
    }

    /// The reference's runs: the main job's TRM-Att; the variant's: its HRM runs (same seeds
    /// and data), so the effect is HRM − TRM-Att on the paired seeds.
    #[test]
    fn a_variant_is_measured_against_its_models_reference_on_the_paired_seeds() {
        let records = crate::test_support::reference_records();
        let (trm, hrm): (Vec<ResultRecord>, Vec<ResultRecord>) =
            records.into_iter().partition(|r| r.model == "trm-att");
        // The variant lost seed 5: the means cover the five seeds both sides ran.
        let variant_runs: Vec<ResultRecord> = hrm.into_iter().filter(|r| r.seed < 5).collect();
        let mut swap = group("trm-att", "swap", false, &variant_runs);
        swap.replaced_by = Some("hrm");
        let groups = [group("trm-att", "reference", true, &trm), swap];
        let effects = effects(&groups);
        assert_eq!(effects.len(), 1);
        let e = &effects[0];
        assert_eq!(
            (e.reference.as_deref(), e.paired_seeds),
            (Some("reference"), 5)
        );
        assert_eq!(e.overrides, ["model=hrm"]);
        let mean = |rs: &[ResultRecord]| {
            let paired: Vec<f64> = rs
                .iter()
                .filter(|r| r.seed < 5)
                .map(|r| r.metrics.maze_valid_path.unwrap().value)
                .collect();
            paired.iter().sum::<f64>() / paired.len() as f64
        };
        assert!((e.reference_mean.unwrap() - mean(&trm)).abs() < 1e-12);
        assert!((e.variant_mean.unwrap() - mean(&variant_runs)).abs() < 1e-12);
        let d = e.difference.as_ref().unwrap();
        assert!((d.mean() - (e.variant_mean.unwrap() - e.reference_mean.unwrap())).abs() < 1e-12);
    }

    /// When none of a model's reference runs finished, its variants say so; no other variant
    /// (or another model's reference) is taken as the reference instead, as the first
    /// finished group once was.
    #[test]
    fn a_variant_without_a_finished_reference_is_named_not_measured_against_another() {
        let records = crate::test_support::reference_records();
        let (trm, hrm): (Vec<ResultRecord>, Vec<ResultRecord>) =
            records.into_iter().partition(|r| r.model == "trm-att");
        let groups = [
            group("trm-att", "swap", false, &trm),
            group("hrm", "reference", true, &hrm),
        ];
        let effects = effects(&groups);
        assert_eq!(effects.len(), 1);
        let e = &effects[0];
        assert_eq!((e.model.as_str(), e.variant.as_str()), ("trm-att", "swap"));
        assert_eq!((e.reference.as_deref(), e.paired_seeds), (None, 0));
        assert!(e.difference.is_none() && e.variant_mean.is_none());
    }
}
