//! Ablations: each variant of a plan against its family's reference (the plan's first
//! variant) at the same axis values, paired by seed, with the comparison's statistics engine:
//! the effect of one ingredient on one family, with its interval, and a verdict only where
//! the seeds support one.

use crate::science::collect::Group;
use crate::science::paired::{compare_runs, headline_value, pairs_by_seed, PairedDifference};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub model: String,
    pub variant: String,
    /// What the variant changes (`--set` overrides).
    pub overrides: Vec<String>,
    /// The axis values both groups share.
    pub axes: Vec<String>,
    pub reference: String,
    /// The headline metric's mean over each side's seeds.
    pub reference_mean: f64,
    pub variant_mean: f64,
    /// Headline variant − reference over the seeds both ran; none without a shared seed.
    pub difference: Option<PairedDifference>,
}

/// Every non-reference variant's effect, in the plan's order; none for a plan without variants.
pub fn effects(groups: &[Group]) -> Vec<Effect> {
    let Some(reference) = groups.first().and_then(|g| g.variant) else {
        return Vec::new();
    };
    groups
        .iter()
        .filter(|g| g.variant.is_some_and(|v| v != reference))
        .filter_map(|g| {
            let base = groups.iter().find(|r| {
                r.model == g.model && r.variant == Some(reference) && r.assignments == g.assignments
            })?;
            Some(effect(g, base))
        })
        .collect()
}

fn effect(g: &Group, base: &Group) -> Effect {
    let (a, b) = (
        format!("{} {}", g.model, g.label()),
        format!("{} {}", base.model, base.label()),
    );
    let pairs = pairs_by_seed(&g.runs, &base.runs);
    let difference = compare_runs((a.as_str(), b.as_str()), &pairs)
        .into_iter()
        .find(|d| d.headline);
    let mean = |x: &Group| {
        let values: Vec<f64> = x
            .runs
            .iter()
            .filter_map(|r| headline_value(&r.task, &r.metrics))
            .collect();
        values.iter().sum::<f64>() / values.len().max(1) as f64
    };
    Effect {
        model: g.model.to_string(),
        variant: g.variant.unwrap_or_default().to_string(),
        overrides: g.variant_set.to_vec(),
        axes: g.assignments.to_vec(),
        reference: base.variant.unwrap_or_default().to_string(),
        reference_mean: mean(base),
        variant_mean: mean(g),
        difference,
    }
}
