//! Answer selection at test time: which supervision step's answer an example is scored at.
//! The evaluation runs every trained step of every example in one pass, so one pass scores
//! every rule: the last step (the official evaluation), the model's halting step (ACT
//! inference), its most confident step, the answer most steps agree on, and the oracle (right
//! at any step), the ceiling no rule can pass. A wrong answer is a *selection* failure when the
//! oracle was right: the model had the answer and the rule did not pick it.

use crate::run::bits::ExampleBits;
use datasets::score::{self, Proportion};
use serde::{Deserialize, Serialize};

/// One supervision step of one example.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Every supervised token right.
    pub exact: bool,
    /// Right by the task's per-example headline: a valid shortest path for mazes, exact
    /// match elsewhere.
    pub headline: bool,
    /// The halting head's margin past its threshold (`RecursiveModel::halt_margin`).
    pub halt_margin: f32,
    /// A hash of the predicted sequence: equal answers, equal keys.
    pub answer: u64,
}

/// The answer one example is scored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerRule {
    /// After every trained supervision step: the official evaluation.
    LastStep,
    /// At the first step where the model's own rule says halt (the last if it never does).
    HaltingStep,
    /// At the step with the largest halting margin (the later one on ties).
    MostConfident,
    /// The answer given at most steps (on ties, the one given latest).
    Majority,
    /// Right if any step was right: what a perfect selector would reach.
    Oracle,
}

impl AnswerRule {
    pub const ALL: [AnswerRule; 5] = [
        AnswerRule::LastStep,
        AnswerRule::HaltingStep,
        AnswerRule::MostConfident,
        AnswerRule::Majority,
        AnswerRule::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AnswerRule::LastStep => "last step",
            AnswerRule::HaltingStep => "halting step",
            AnswerRule::MostConfident => "most confident step",
            AnswerRule::Majority => "majority over steps",
            AnswerRule::Oracle => "oracle (any step)",
        }
    }

    /// The rule as a paired metric's name.
    pub fn metric_name(self) -> &'static str {
        match self {
            AnswerRule::LastStep => "answer rule: last step",
            AnswerRule::HaltingStep => "answer rule: halting step",
            AnswerRule::MostConfident => "answer rule: most confident step",
            AnswerRule::Majority => "answer rule: majority over steps",
            AnswerRule::Oracle => "answer rule: oracle (any step)",
        }
    }

    /// Whether the rule's answer is right by the headline, from the trained steps of one
    /// example (`first_halt` is 1-based).
    fn right(self, steps: &[StepOutcome], first_halt: Option<usize>) -> bool {
        let at = |i: usize| steps[i].headline;
        match self {
            AnswerRule::LastStep => at(steps.len() - 1),
            AnswerRule::HaltingStep => at(halting_step(steps.len(), first_halt) - 1),
            AnswerRule::MostConfident => at(most_confident(steps)),
            AnswerRule::Majority => at(majority(steps)),
            AnswerRule::Oracle => steps.iter().any(|s| s.headline),
        }
    }

    /// The supervision steps the rule runs for an example: halting stops early; the other
    /// rules compare or look at every step.
    fn steps_run(self, trained: usize, first_halt: Option<usize>) -> usize {
        match self {
            AnswerRule::HaltingStep => halting_step(trained, first_halt),
            _ => trained,
        }
    }
}

fn halting_step(trained: usize, first_halt: Option<usize>) -> usize {
    first_halt.map_or(trained, |h| h.min(trained))
}

/// Index of the largest halting margin, the later step on ties; a NaN margin never wins.
fn most_confident(steps: &[StepOutcome]) -> usize {
    let mut best = steps.len() - 1;
    for (i, s) in steps.iter().enumerate() {
        if s.halt_margin >= steps[best].halt_margin || steps[best].halt_margin.is_nan() {
            best = i;
        }
    }
    best
}

/// Index of the latest step that gave the most frequent answer.
fn majority(steps: &[StepOutcome]) -> usize {
    let count = |key: u64| steps.iter().filter(|s| s.answer == key).count();
    let mut best = steps.len() - 1;
    for i in (0..steps.len()).rev() {
        if count(steps[i].answer) > count(steps[best].answer) {
            best = i;
        }
    }
    best
}

/// One rule's scores over a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    pub rule: AnswerRule,
    /// Examples right by the task's per-example headline at the rule's answer.
    pub right: Proportion,
    pub mean_steps: f64,
    pub inference_flops_per_puzzle: f64,
    /// Examples the rule got wrong.
    pub failures: u64,
    /// Of those, examples some trained step got right.
    pub selection_failures: u64,
    /// Which examples the rule got right, for paired statistics.
    pub per_example: ExampleBits,
}

impl RuleScore {
    /// The share of failures that are selection failures; none without failures.
    pub fn selection_share(&self) -> Option<f64> {
        (self.failures > 0).then(|| self.selection_failures as f64 / self.failures as f64)
    }
}

/// Every rule's scores, from each example's trained steps and first halting step.
pub fn score_rules(
    examples: &[(&[StepOutcome], Option<usize>)],
    flops_per_step: f64,
) -> Vec<RuleScore> {
    let n = examples.len();
    let oracle: Vec<bool> = examples
        .iter()
        .map(|(steps, halt)| AnswerRule::Oracle.right(steps, *halt))
        .collect();
    AnswerRule::ALL
        .iter()
        .map(|&rule| {
            let right: Vec<bool> = examples
                .iter()
                .map(|(steps, halt)| rule.right(steps, *halt))
                .collect();
            let solved = right.iter().filter(|&&r| r).count() as u64;
            let steps: usize = examples
                .iter()
                .map(|(steps, halt)| rule.steps_run(steps.len(), *halt))
                .sum();
            let mean_steps = steps as f64 / n.max(1) as f64;
            RuleScore {
                rule,
                right: score::wilson(solved, n as u64),
                mean_steps,
                inference_flops_per_puzzle: mean_steps * flops_per_step,
                failures: n as u64 - solved,
                selection_failures: (0..n).filter(|&e| oracle[e] && !right[e]).count() as u64,
                per_example: ExampleBits(right),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(headline: bool, halt_margin: f32, answer: u64) -> StepOutcome {
        StepOutcome {
            exact: headline,
            headline,
            halt_margin,
            answer,
        }
    }

    /// Four examples of four trained steps where the rules disagree: the oracle and the
    /// last step differ on the first two.
    #[test]
    fn each_rule_picks_its_step_and_counts_selection_failures() {
        let examples: Vec<(Vec<StepOutcome>, Option<usize>)> = vec![
            // Right at step 2 only, where it was most confident and halted.
            (
                vec![
                    step(false, -1.0, 1),
                    step(true, 3.0, 2),
                    step(false, 1.0, 3),
                    step(false, 0.5, 3),
                ],
                Some(2),
            ),
            // Right at steps 1 and 2 (one answer), then a different wrong answer twice; the
            // model never halts; the most confident step is the last.
            (
                vec![
                    step(true, -2.0, 7),
                    step(true, -1.5, 7),
                    step(false, -1.0, 8),
                    step(false, -0.5, 8),
                ],
                None,
            ),
            // Right from step 3 on; halts at step 1.
            (
                vec![
                    step(false, 2.0, 4),
                    step(false, 0.0, 5),
                    step(true, 1.0, 6),
                    step(true, 1.0, 6),
                ],
                Some(1),
            ),
            // Never right.
            (vec![step(false, 0.0, 9); 4], Some(4)),
        ];
        let views: Vec<(&[StepOutcome], Option<usize>)> =
            examples.iter().map(|(s, h)| (s.as_slice(), *h)).collect();
        let scores = score_rules(&views, 10.0);
        let by = |rule: AnswerRule| scores.iter().find(|s| s.rule == rule).unwrap();
        let right = |rule: AnswerRule| by(rule).right.value;
        assert_eq!(right(AnswerRule::LastStep), 0.25);
        assert_eq!(right(AnswerRule::HaltingStep), 0.25);
        assert_eq!(right(AnswerRule::MostConfident), 0.25);
        // Example 2's tie (two 7s, two 8s) goes to the later answer, 8: wrong.
        assert_eq!(right(AnswerRule::Majority), 0.25);
        assert_eq!(right(AnswerRule::Oracle), 0.75);
        let last = by(AnswerRule::LastStep);
        assert_eq!((last.failures, last.selection_failures), (3, 2));
        assert_eq!(last.selection_share(), Some(2.0 / 3.0));
        let oracle = by(AnswerRule::Oracle);
        assert_eq!((oracle.failures, oracle.selection_failures), (1, 0));
        // Halting runs 2, 4, 1 and 4 steps; every other rule all 4.
        assert_eq!(by(AnswerRule::HaltingStep).mean_steps, 2.75);
        assert_eq!(by(AnswerRule::HaltingStep).inference_flops_per_puzzle, 27.5);
        assert_eq!(by(AnswerRule::Majority).inference_flops_per_puzzle, 40.0);
        // Which examples each rule gets right, not only how many.
        let picks = |rule: AnswerRule| by(rule).per_example.0.clone();
        assert_eq!(picks(AnswerRule::LastStep), [false, false, true, false]);
        assert_eq!(picks(AnswerRule::HaltingStep), [true, false, false, false]);
        assert_eq!(
            picks(AnswerRule::MostConfident),
            [true, false, false, false]
        );
        assert_eq!(picks(AnswerRule::Majority), [false, false, true, false]);
    }

    #[test]
    fn a_nan_margin_is_never_the_most_confident() {
        let steps = [
            step(false, f32::NAN, 1),
            step(true, -3.0, 2),
            step(false, f32::NAN, 3),
        ];
        assert_eq!(most_confident(&steps), 1);
    }
}
