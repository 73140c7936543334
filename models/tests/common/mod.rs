//! What the integration tests of the training step share: a tiny model of either kind,
//! seeded random batches, and an optimiser configuration.

use candle_core::{Device, Tensor};
use models::act::Batch;
use models::config::ModelConfig;
use models::loss::LossType;
use models::model::ModelKind;
use models::optim::AdamAtan2Config;
use models::trainer::OptimConfig;
use rand::{Rng, SeedableRng};

pub fn config(kind: ModelKind) -> ModelConfig {
    let trm = kind.is_trm();
    ModelConfig {
        batch_size: 4,
        seq_len: 9,
        puzzle_emb_ndim: 16,
        num_puzzle_identifiers: 3,
        vocab_size: 6,
        H_cycles: 2,
        L_cycles: 2,
        H_layers: 1,
        L_layers: 1,
        hidden_size: 16,
        expansion: 2.0,
        num_heads: 2,
        pos_encodings: "rope".into(),
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        halt_max_steps: 3,
        halt_exploration_prob: 0.5,
        forward_dtype: "float32".into(),
        mlp_t: false,
        puzzle_emb_len: trm.then_some(2),
        no_ACT_continue: trm.then_some(true),
        gradient: None,
    }
}

pub fn batch(seed: u64) -> Batch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d = Device::Cpu;
    Batch {
        inputs: Tensor::from_vec(
            (0..36)
                .map(|_| rng.random_range(1u32..6))
                .collect::<Vec<_>>(),
            (4, 9),
            &d,
        )
        .unwrap(),
        labels: Tensor::from_vec(
            (0..36)
                .map(|_| rng.random_range(1i64..6))
                .collect::<Vec<_>>(),
            (4, 9),
            &d,
        )
        .unwrap(),
        puzzle_identifiers: Tensor::from_vec(
            (0..4)
                .map(|_| rng.random_range(0u32..3))
                .collect::<Vec<_>>(),
            4,
            &d,
        )
        .unwrap(),
    }
}

pub fn optim() -> OptimConfig {
    OptimConfig {
        adam: AdamAtan2Config {
            lr: 1e-2,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
        },
        puzzle_emb_lr: 1e-2,
        puzzle_emb_weight_decay: 0.1,
        loss: LossType::StablemaxCrossEntropy,
        ema: Some(0.9),
        halt_early: true,
    }
}
