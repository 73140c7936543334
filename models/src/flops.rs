//! Analytic cost of every model: parameter counts (trainable weights apart from buffers: the
//! initial states and the puzzle-embedding table, which the papers' "7M" / "27M" exclude) and
//! matmul FLOPs (2 m n k per product) of one supervision step, one training step and one
//! evaluation step. Backward is counted as twice the forward of the part that trains.

use crate::config::{Gradient, ModelConfig};
use crate::layers::swiglu_inner;
use crate::model::ModelKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ParameterCounts {
    /// What the optimiser updates (`model.parameters()`).
    pub trainable: u64,
    /// The initial states (`H_init`, `L_init`, ...) and the puzzle-embedding table.
    pub buffers: u64,
    /// The puzzle-embedding table alone (trained by sign-SGD, not counted as parameters).
    pub puzzle_embedding: u64,
}

fn swiglu_params(width: usize, expansion: f64) -> u64 {
    3 * (width * swiglu_inner(width, expansion)) as u64
}

fn block_params(cfg: &ModelConfig, sequence_mlp: bool) -> u64 {
    let d = cfg.hidden_size as u64;
    let mixer = if sequence_mlp {
        swiglu_params(cfg.full_seq_len(), cfg.expansion)
    } else {
        4 * d * d
    };
    mixer + swiglu_params(cfg.hidden_size, cfg.expansion)
}

pub fn parameter_counts(cfg: &ModelConfig, kind: ModelKind) -> ParameterCounts {
    let d = cfg.hidden_size as u64;
    let io = 2 * cfg.vocab_size as u64 * d + 2 * d + 2;
    let blocks: u64 = kind
        .levels(cfg)
        .iter()
        .map(|l| l.layers as u64 * block_params(cfg, l.sequence_mlp))
        .sum();
    let puzzle_embedding = (cfg.num_puzzle_identifiers * cfg.puzzle_emb_ndim) as u64;
    let initial_states = kind.state_names().len() as u64 * d;
    ParameterCounts {
        trainable: io + blocks,
        buffers: initial_states + puzzle_embedding,
        puzzle_embedding,
    }
}

/// FLOPs per sample (multiply by the batch size for a batch).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepFlops {
    /// Forward of one supervision step (all cycles, heads included).
    pub supervision_forward: f64,
    /// One training call: forward, backward of the part with a graph, and HRM's extra
    /// forward for the Q target.
    pub train_step: f64,
    /// One evaluation call (forward only).
    pub eval_step: f64,
    /// A full evaluation of one puzzle: `halt_max_steps` evaluation calls.
    pub eval_puzzle: f64,
}

/// FLOPs of one block on one sample.
fn block_flops(cfg: &ModelConfig, sequence_mlp: bool) -> f64 {
    let (s, d) = (cfg.full_seq_len() as f64, cfg.hidden_size as f64);
    let channel_inner = swiglu_inner(cfg.hidden_size, cfg.expansion) as f64;
    let channel_mlp = 2.0 * s * d * 3.0 * channel_inner;
    let mixer = if sequence_mlp {
        2.0 * d * s * 3.0 * swiglu_inner(cfg.full_seq_len(), cfg.expansion) as f64
    } else {
        // qkv and output projections, then scores and weighted values over all heads.
        2.0 * s * d * 4.0 * d + 2.0 * 2.0 * s * s * d
    };
    mixer + channel_mlp
}

pub fn step_flops(cfg: &ModelConfig, kind: ModelKind) -> StepFlops {
    let heads = 2.0 * cfg.seq_len as f64 * cfg.hidden_size as f64 * cfg.vocab_size as f64
        + 2.0 * cfg.hidden_size as f64 * 2.0;
    // The L updates of the last cycle that build a graph.
    let l_with_graph = match cfg.gradient(kind) {
        Gradient::LastCycle => cfg.L_cycles as f64,
        Gradient::OneStep => 1.0,
    };
    let (forward, with_graph) = match kind {
        // TRM-SingleZ and TRM-Hier6 apply the one net as often as TRM (n latent updates and
        // one closing update per round); their sums of states are not matmuls.
        ModelKind::Trm | ModelKind::TrmSingleZ | ModelKind::TrmHier6 => {
            let net = cfg.L_layers as f64 * block_flops(cfg, cfg.mlp_t);
            let per_round = (cfg.L_cycles + 1) as f64 * net;
            let forward = cfg.H_cycles as f64 * per_round + heads;
            (forward, (l_with_graph + 1.0) * net + heads)
        }
        ModelKind::Hrm => {
            let (h, l) = (
                cfg.H_layers as f64 * block_flops(cfg, false),
                cfg.L_layers as f64 * block_flops(cfg, false),
            );
            let forward =
                (cfg.H_cycles * cfg.L_cycles) as f64 * l + cfg.H_cycles as f64 * h + heads;
            (forward, h + l_with_graph * l + heads)
        }
        ModelKind::Transformer => {
            let pass = cfg.H_layers as f64 * block_flops(cfg, false) + heads;
            (pass, pass)
        }
    };
    // The continue target is a second forward pass from the next state.
    let target = if cfg.trains_continue(kind) {
        forward
    } else {
        0.0
    };
    StepFlops {
        supervision_forward: forward,
        train_step: forward + 2.0 * with_graph + target,
        eval_step: forward,
        eval_puzzle: cfg.halt_max_steps as f64 * forward,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sudoku(kind: ModelKind, mlp_t: bool, hidden: usize) -> ModelConfig {
        ModelConfig::sudoku_paper(kind, mlp_t, hidden)
    }

    /// What each ablation switch adds to or removes from a training step's count.
    #[test]
    fn ablation_switches_change_what_a_step_counts() {
        let with = |cfg: &ModelConfig, f: &dyn Fn(&mut ModelConfig)| {
            let mut c = cfg.clone();
            f(&mut c);
            c
        };
        let close =
            |a: f64, b: f64| assert!((a - b).abs() <= 1e-9 * a.abs().max(b.abs()), "{a} vs {b}");
        let step = |cfg: &ModelConfig, kind| step_flops(cfg, kind).train_step;
        let (trm, hrm) = (
            sudoku(ModelKind::Trm, false, 512),
            sudoku(ModelKind::Hrm, false, 512),
        );
        // TRM's one-step gradient backpropagates 2 of the last round's n + 1 net passes.
        let net = trm.L_layers as f64 * block_flops(&trm, false);
        let one_step = with(&trm, &|c| c.gradient = Some("one-step".into()));
        let fewer = 2.0 * (trm.L_cycles - 1) as f64 * net;
        close(
            step(&trm, ModelKind::Trm) - step(&one_step, ModelKind::Trm),
            fewer,
        );
        // HRM's last-cycle gradient backpropagates L_cycles L passes instead of one.
        let l = hrm.L_layers as f64 * block_flops(&hrm, false);
        let last_cycle = with(&hrm, &|c| c.gradient = Some("last-cycle".into()));
        let more = 2.0 * (hrm.L_cycles - 1) as f64 * l;
        close(
            step(&last_cycle, ModelKind::Hrm) - step(&hrm, ModelKind::Hrm),
            more,
        );
        // The continue loss costs one more forward pass (the Q-target), in either family.
        for (cfg, kind) in [(&trm, ModelKind::Trm), (&hrm, ModelKind::Hrm)] {
            let forward = step_flops(cfg, kind).supervision_forward;
            let on = with(cfg, &|c| c.no_ACT_continue = Some(false));
            let off = with(cfg, &|c| c.no_ACT_continue = Some(true));
            close(step(&on, kind) - step(&off, kind), forward);
            // With one supervision step there is no next step to learn it from.
            let single = with(&on, &|c| c.halt_max_steps = 1);
            let single_off = with(&off, &|c| c.halt_max_steps = 1);
            close(step(&single, kind), step(&single_off, kind));
        }
    }

    #[test]
    fn counts_reproduce_the_specs() {
        assert_eq!(
            parameter_counts(&sudoku(ModelKind::Trm, false, 512), ModelKind::Trm).trainable,
            6_828_034
        );
        assert_eq!(
            parameter_counts(&sudoku(ModelKind::Trm, true, 512), ModelKind::Trm).trainable,
            5_028_866
        );
        let hrm = parameter_counts(&sudoku(ModelKind::Hrm, false, 512), ModelKind::Hrm);
        assert_eq!(hrm.trainable, 27_275_266);
        assert_eq!(hrm.buffers, 3 * 512);
        // TRM-MLP on 30x30 tasks: the token mixer grows with the sequence (spec: 18,795,522).
        let mut maze = sudoku(ModelKind::Trm, true, 512);
        (maze.seq_len, maze.vocab_size) = (900, 6);
        assert_eq!(
            parameter_counts(&maze, ModelKind::Trm).trainable,
            18_795_522
        );
    }

    #[test]
    fn flops_reproduce_the_design_measurements() {
        // DESIGN.md: GFLOP per batch of 64, matmuls only.
        // The table rounds to whole GFLOP; allow that rounding (and nothing more).
        let check = |kind, hidden, train: f64, eval: f64| {
            let f = step_flops(&sudoku(kind, false, hidden), kind);
            let (t, e) = (f.train_step * 64.0 / 1e9, f.eval_step * 64.0 / 1e9);
            assert!(
                (t - train).abs() <= 0.6 && (e - eval).abs() <= 0.6,
                "{kind:?} d={hidden}: {t:.2} / {e:.2} GFLOP"
            );
        };
        check(ModelKind::Trm, 512, 3048.0, 1829.0);
        check(ModelKind::Hrm, 512, 2346.0, 880.0);
        check(ModelKind::Trm, 128, 250.0, 150.0);
        check(ModelKind::Hrm, 128, 190.0, 71.0);
    }
}
