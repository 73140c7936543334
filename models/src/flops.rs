//! Analytic cost of both models: parameter counts (trainable weights apart from buffers: the
//! initial states and the puzzle-embedding table, which the papers' "7M" / "27M" exclude) and
//! matmul FLOPs (2 m n k per product) of one supervision step, one training step and one
//! evaluation step. Backward is counted as twice the forward of the part that trains.

use crate::config::ModelConfig;
use crate::layers::swiglu_inner;
use crate::model::ModelKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ParameterCounts {
    /// What the optimiser updates (`model.parameters()`).
    pub trainable: u64,
    /// `H_init`, `L_init` and the puzzle-embedding table.
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
    let blocks = match kind {
        ModelKind::Trm => cfg.L_layers as u64 * block_params(cfg, cfg.mlp_t),
        ModelKind::Hrm => (cfg.H_layers + cfg.L_layers) as u64 * block_params(cfg, false),
    };
    let puzzle_embedding = (cfg.num_puzzle_identifiers * cfg.puzzle_emb_ndim) as u64;
    ParameterCounts {
        trainable: io + blocks,
        buffers: 2 * d + puzzle_embedding,
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
    let (forward, with_graph, target) = match kind {
        ModelKind::Trm => {
            let net = cfg.L_layers as f64 * block_flops(cfg, cfg.mlp_t);
            let per_round = (cfg.L_cycles + 1) as f64 * net;
            let forward = cfg.H_cycles as f64 * per_round + heads;
            let learns_continue = !cfg.no_ACT_continue.unwrap_or(true);
            (
                forward,
                per_round + heads,
                if learns_continue { forward } else { 0.0 },
            )
        }
        ModelKind::Hrm => {
            let (h, l) = (
                cfg.H_layers as f64 * block_flops(cfg, false),
                cfg.L_layers as f64 * block_flops(cfg, false),
            );
            let forward =
                (cfg.H_cycles * cfg.L_cycles) as f64 * l + cfg.H_cycles as f64 * h + heads;
            (forward, h + l + heads, forward)
        }
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
