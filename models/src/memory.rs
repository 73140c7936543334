//! The analytic peak memory of one training step, from the code's own tensors: what lives
//! for the whole run (weights, AdamATan2 moments, EMA shadows, the puzzle table, the carry)
//! and what one micro-batch's graph keeps until its backward pass (every intermediate of
//! the layers with a gradient, per slot), plus the backward's working set.
//!
//! The per-token counts follow the two paths of `layers`: the fused CPU kernels (f32) and
//! the candle compositions that CUDA and bf16 run, with the chunked attention backend
//! (`attention::chunked`).

use crate::attention::chunked::{query_chunk, SCORE_BLOCK_BYTES};
use crate::config::{Gradient, ModelConfig};
use crate::flops::parameter_counts;
use crate::layers::swiglu_inner;
use crate::model::ModelKind;

/// Which implementation of the layers a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerPath {
    /// The CPU in f32: fused kernels (`kernels`).
    FusedCpu,
    /// CUDA or bf16: candle compositions and chunked attention.
    Composed,
}

/// One training step's memory, in bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepMemory {
    /// Weights, moments, EMA, puzzle table, parameter gradients (twice with micro-batches):
    /// `(what, bytes)`.
    pub fixed: Vec<(String, u64)>,
    /// The carry `z_H`, `z_L` (old and new) and the graph's activations, per slot.
    pub per_slot: u64,
    /// The largest transient of the backward pass for `slots` slots at once.
    pub workspace_per_slot: u64,
    /// `(heads, positions)` of the composed path's attention, whose backward holds up to
    /// five f32 score blocks of one query chunk.
    pub score_blocks_of: Option<(usize, usize)>,
    /// `z_H` and `z_L`, the old carry and the new, per slot of the rank.
    pub carry_per_slot: u64,
}

impl StepMemory {
    pub fn fixed_bytes(&self) -> u64 {
        self.fixed.iter().map(|(_, b)| b).sum()
    }

    /// The peak of a step whose pieces hold `slots` slots each, on a rank holding
    /// `rank_slots` (the carry is the rank's, the graph a piece's).
    pub fn peak(&self, rank_slots: usize, slots: usize) -> u64 {
        self.fixed_bytes()
            + self.carry_per_slot * rank_slots as u64
            + (self.per_slot + self.workspace_per_slot) * slots as u64
            + self.score_blocks(slots)
    }

    pub fn score_blocks(&self, slots: usize) -> u64 {
        self.score_blocks_of.map_or(0, |(heads, seq)| {
            let rows = query_chunk(slots, heads, seq, SCORE_BLOCK_BYTES);
            // One chunk in f32: P, dP, dP - delta and dS in the backward, with the scores,
            // their shift and exponentials while P is recomputed: five blocks at the most.
            5 * (slots * heads * rows * seq * 4) as u64
        })
    }
}

/// Bytes of one element of the forward dtype.
fn element_bytes(cfg: &ModelConfig) -> u64 {
    match cfg.compute_dtype() {
        Ok(candle_core::DType::BF16) => 2,
        Ok(candle_core::DType::F64) => 8,
        _ => 4,
    }
}

/// Bytes per token that one block keeps for its backward.
fn block_bytes_per_token(cfg: &ModelConfig, path: LayerPath, sequence_mlp: bool) -> u64 {
    let (d, e) = (cfg.hidden_size as u64, element_bytes(cfg));
    let inner = swiglu_inner(cfg.hidden_size, cfg.expansion) as u64;
    let s = cfg.full_seq_len() as u64;
    match path {
        LayerPath::FusedCpu => {
            // qkv, heads' outputs, o_proj, rms; gate_up, gate, down, rms.
            let channel_mlp = (2 * inner + inner + 2 * d) * e;
            let mixer = if sequence_mlp {
                // Per token of the transposed state: its copy, gate_up, gate, down, rms and
                // the copy back, over the sequence-MLP's inner width.
                let inner_t = swiglu_inner(cfg.full_seq_len(), cfg.expansion) as u64;
                (4 * s + 3 * inner_t) * d * e / s
            } else {
                (3 * d + 3 * d) * e
            };
            mixer + channel_mlp
        }
        LayerPath::Composed => {
            // rms(h + delta): the sum, its f32 copy (bf16), the square and the quotient in
            // f32, the copy back (bf16).
            let widen = if e == 4 { 0 } else { 1 };
            let rms = d * e + widen * d * 4 + 2 * d * 4 + widen * d * e;
            // gate_up, silu, product, down.
            let channel_mlp = (2 * inner + inner + inner) * e + d * e + rms;
            let mixer = if sequence_mlp {
                let inner_t = swiglu_inner(cfg.full_seq_len(), cfg.expansion) as u64;
                (2 * s + 4 * inner_t + s) * d * e / s + rms
            } else {
                // qkv, the op's two outputs (its argument and its result), o_proj.
                (3 * d + 2 * d + d) * e + rms
            };
            mixer + channel_mlp
        }
    }
}

/// How many module applications (each: the injection sum, then its blocks) run with a
/// graph in one supervision step, and how many blocks each.
fn graph_applications(cfg: &ModelConfig, kind: ModelKind) -> Vec<usize> {
    let (l_with_graph, h_with_graph) = match cfg.gradient(kind) {
        Gradient::LastCycle => (cfg.L_cycles, 1),
        Gradient::OneStep => (1, 1),
    };
    match kind {
        // n latent updates and the answer (closing) update of the one net.
        ModelKind::Trm | ModelKind::TrmSingleZ | ModelKind::TrmHier6 => {
            vec![cfg.L_layers; l_with_graph + 1]
        }
        ModelKind::Hrm => [
            vec![cfg.L_layers; l_with_graph],
            vec![cfg.H_layers; h_with_graph],
        ]
        .concat(),
        // The one pass of the stack.
        ModelKind::Transformer => vec![cfg.H_layers],
    }
}

/// The memory of one training step of `kind` at `cfg` (its batch size is the global batch).
pub fn step_memory(
    cfg: &ModelConfig,
    kind: ModelKind,
    ema: bool,
    (micro_batches, ranks): (usize, usize),
    path: LayerPath,
) -> StepMemory {
    let counts = parameter_counts(cfg, kind);
    let (d, e) = (cfg.hidden_size as u64, element_bytes(cfg));
    let s = cfg.full_seq_len() as u64;
    let v = cfg.vocab_size as u64;
    let p = counts.trainable * 4;
    let mut fixed = vec![
        ("weights (f32)".to_string(), p),
        ("AdamATan2 moments m, v".to_string(), 2 * p),
        ("parameter gradients".to_string(), p),
        (
            "puzzle-embedding table".to_string(),
            counts.puzzle_embedding * 4,
        ),
    ];
    if ema {
        fixed.push(("EMA shadows".to_string(), p));
    }
    if micro_batches > 1 {
        fixed.push(("gradients summed over micro-batches".to_string(), p));
    }
    if ranks > 1 {
        // The exchange (`ThreadGroup`) copies every other rank's gradients, then sums.
        fixed.push((
            "other ranks' gradients during the exchange".to_string(),
            ranks as u64 * p,
        ));
    }
    if path == LayerPath::Composed && e != 4 {
        // Each application's weights cast to the forward dtype, kept by its graph.
        let applications: usize = graph_applications(cfg, kind).iter().sum();
        let per_block = (counts.trainable - 2 * v * d) / (cfg.L_layers + cfg.H_layers) as u64;
        fixed.push((
            "weights cast to bf16 in the graph".to_string(),
            applications as u64 * per_block * e,
        ));
    }
    let applications = graph_applications(cfg, kind);
    let blocks: u64 = applications
        .iter()
        .map(|&layers| layers as u64 * block_bytes_per_token(cfg, path, cfg.mlp_t && kind.is_trm()))
        .sum();
    // Each application's `hidden + injection`, TRM's `y + x`, HRM's `z_H + x`.
    let sums = (applications.len() as u64 + 1) * d * e;
    // Token rows in f32, their cast, the prefix, the concatenation and the scale.
    let embeddings = d * 4 + 4 * d * e;
    // Logits, their f64 copy and stablemax's f64 intermediates (mask, shift, reciprocal,
    // branch, select, quotient, log).
    let loss = v * e + 8 * v * 8 + v;
    let per_slot = s * (blocks + sums + embeddings) + (s - cfg.prefix_len() as u64) * loss;
    // The gradients in flight: about three of a block's widest tensors at once, in f32; the
    // composed attention's backward adds f32 q, k, v, their gradients and dO, O.
    let inner = swiglu_inner(cfg.hidden_size, cfg.expansion) as u64;
    let attention = !(cfg.mlp_t && kind.is_trm());
    let composed_attention = path == LayerPath::Composed && attention;
    let workspace_per_slot =
        s * (3 * d.max(2 * inner) * 4 + if composed_attention { 12 * d * 4 } else { 0 });
    StepMemory {
        fixed,
        per_slot,
        workspace_per_slot,
        score_blocks_of: composed_attention.then_some((cfg.num_heads, s as usize)),
        carry_per_slot: 4 * s * d * e,
    }
}

/// The fewest micro-batches whose step fits in `budget` bytes on each of `ranks` ranks
/// holding `rank_slots` slots, with that step's peak; none when one slot at a time does not
/// fit.
pub fn micro_batches_to_fit(
    cfg: &ModelConfig,
    kind: ModelKind,
    ema: bool,
    path: LayerPath,
    (rank_slots, ranks): (usize, usize),
    budget: u64,
) -> Option<(usize, u64)> {
    (1..=rank_slots.max(1)).find_map(|k| {
        let memory = step_memory(cfg, kind, ema, (k, ranks), path);
        let peak = memory.peak(rank_slots, rank_slots.div_ceil(k));
        (peak <= budget).then_some((k, peak))
    })
}
