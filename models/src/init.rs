//! The official initialisation (`models/common.py: trunc_normal_init_` and the constructors):
//! LeCun truncated-normal linear weights, token embedding with std 1/sqrt(D), initial states
//! with std 1, the halting head at weight 0 and bias -5, the puzzle embedding at zero. Every
//! tensor draws from its own ChaCha stream keyed by the seed and its name, so the result does
//! not depend on construction order.

use crate::config::ModelConfig;
use crate::layers::swiglu_inner;
use crate::model::{initial_state_buffer, ModelKind};
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitRule {
    /// JAX-style truncated normal at [-2, 2] standard deviations, rescaled so that the actual
    /// standard deviation is `std`.
    TruncNormal {
        std: f64,
    },
    Constant(f64),
}

/// One tensor: its name, shape and how it starts.
pub type ParameterSpec = (String, Vec<usize>, InitRule);

/// LeCun initialisation: a truncated normal with std `1 / sqrt(fan_in)`.
fn lecun(fan_in: usize) -> InitRule {
    InitRule::TruncNormal {
        std: 1.0 / (fan_in as f64).sqrt(),
    }
}

/// Every tensor of the model under its official name (rooted at `model.inner.`), its shape
/// and how it starts: the frame's tensors, each level's SwiGLUs, then every attention.
pub fn parameter_specs(cfg: &ModelConfig, kind: ModelKind) -> Vec<ParameterSpec> {
    let mut specs = frame_specs(cfg, kind);
    let mut attention = Vec::new();
    for level in kind.levels(cfg) {
        for i in 0..level.layers {
            let block = format!("{}.layers.{i}", level.name);
            if level.sequence_mlp {
                specs.extend(swiglu_specs(
                    cfg,
                    format!("{block}.mlp_t"),
                    cfg.full_seq_len(),
                ));
            } else {
                attention.push(block.clone());
            }
            specs.extend(swiglu_specs(cfg, format!("{block}.mlp"), cfg.hidden_size));
        }
    }
    for block in attention {
        specs.extend(attention_specs(cfg, &block));
    }
    specs
        .into_iter()
        .map(|(n, s, r)| (format!("model.inner.{n}"), s, r))
        .collect()
}

/// What every model shares (`frame::ModelFrame`): embeddings, heads, initial states and
/// the puzzle table.
fn frame_specs(cfg: &ModelConfig, kind: ModelKind) -> Vec<ParameterSpec> {
    let d = cfg.hidden_size;
    let initial_states = kind.state_names().iter().map(|state| {
        (
            initial_state_buffer(state),
            vec![d],
            InitRule::TruncNormal { std: 1.0 },
        )
    });
    let mut specs = vec![
        (
            "embed_tokens.embedding_weight".to_string(),
            vec![cfg.vocab_size, d],
            lecun(d),
        ),
        (
            "lm_head.weight".to_string(),
            vec![cfg.vocab_size, d],
            lecun(d),
        ),
        (
            "q_head.weight".to_string(),
            vec![2, d],
            InitRule::Constant(0.0),
        ),
        ("q_head.bias".to_string(), vec![2], InitRule::Constant(-5.0)),
    ];
    specs.extend(initial_states);
    specs.push((
        "puzzle_emb.weights".to_string(),
        vec![cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim],
        InitRule::Constant(0.0),
    ));
    specs
}

/// A SwiGLU of `width` under `prefix`.
fn swiglu_specs(cfg: &ModelConfig, prefix: String, width: usize) -> [ParameterSpec; 2] {
    let inner = swiglu_inner(width, cfg.expansion);
    [
        (
            format!("{prefix}.gate_up_proj.weight"),
            vec![2 * inner, width],
            lecun(width),
        ),
        (
            format!("{prefix}.down_proj.weight"),
            vec![width, inner],
            lecun(inner),
        ),
    ]
}

/// The attention of the block `block`.
fn attention_specs(cfg: &ModelConfig, block: &str) -> [ParameterSpec; 2] {
    let d = cfg.hidden_size;
    [
        (
            format!("{block}.self_attn.qkv_proj.weight"),
            vec![3 * d, d],
            lecun(d),
        ),
        (
            format!("{block}.self_attn.o_proj.weight"),
            vec![d, d],
            lecun(d),
        ),
    ]
}

/// A standard normal truncated to [-2, 2], times the compensation that makes the truncated
/// distribution's standard deviation 1 (official: `comp_std = std / 0.8796`).
fn truncated_standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    const COMPENSATION: f64 = 1.1368472606089;
    loop {
        // Box-Muller; rejection keeps exactly the truncated normal.
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        if z.abs() <= 2.0 {
            return z * COMPENSATION;
        }
    }
}

/// FNV-1a (64-bit) of a tensor's name: a fixed function, unlike `std`'s `DefaultHasher`,
/// whose output the Rust release may change (and with it every initial weight).
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn stream_for(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(name_hash(name));
    rng
}

/// A fresh model's tensors, all as variables, ready for `VarBuilder::from_varmap`.
pub fn init_varmap(
    cfg: &ModelConfig,
    kind: ModelKind,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<VarMap> {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().expect("fresh varmap");
        for (name, shape, rule) in parameter_specs(cfg, kind) {
            let n: usize = shape.iter().product();
            let values: Vec<f64> = match rule {
                InitRule::Constant(c) => vec![c; n],
                InitRule::TruncNormal { std } => {
                    let mut rng = stream_for(seed, &name);
                    (0..n)
                        .map(|_| std * truncated_standard_normal(&mut rng))
                        .collect()
                }
            };
            // Cast on the host, then upload: a GPU never holds the f64 draws (5.4 GB for the
            // paper ARC puzzle table).
            let t = Tensor::from_vec(values, shape, &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?;
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    Ok(varmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_weights_are_pinned_across_rust_releases() {
        // FNV-1a's published test vectors, then the first draws of one tensor's stream: the
        // same on every toolchain (with DefaultHasher they were whatever the release chose).
        assert_eq!(name_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let mut rng = stream_for(0, "model.inner.lm_head.weight");
        let first: Vec<f64> = (0..3)
            .map(|_| truncated_standard_normal(&mut rng))
            .collect();
        let expected = [-2.0368779697454427, -1.4542656860871392, 1.2835445892921924];
        for (a, b) in first.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{first:?}");
        }
    }

    #[test]
    fn truncated_normal_has_the_requested_spread() {
        let mut rng = stream_for(0, "x");
        let xs: Vec<f64> = (0..200_000)
            .map(|_| truncated_standard_normal(&mut rng))
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!(
            mean.abs() < 0.01 && (std - 1.0).abs() < 0.01,
            "mean {mean}, std {std}"
        );
        assert!(xs.iter().all(|x| x.abs() <= 2.0 * 1.1368472606089 + 1e-12));
    }
}
