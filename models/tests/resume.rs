//! A run stopped and resumed from a checkpoint continues bit for bit: weights, optimiser
//! moments, EMA, step count and the persistent ACT carry are all in the checkpoint.

use candle_core::{DType, Device, Tensor};
use models::act::Batch;
use models::config::ModelConfig;
use models::loss::LossType;
use models::model::ModelKind;
use models::optim::AdamAtan2Config;
use models::trainer::{OptimConfig, Trainer};
use rand::{Rng, SeedableRng};

fn config(kind: ModelKind) -> ModelConfig {
    let trm = kind == ModelKind::Trm;
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
    }
}

fn batch(seed: u64) -> Batch {
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

fn optim() -> OptimConfig {
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
    }
}

fn weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = t
        .state_tensors()
        .unwrap()
        .into_iter()
        .filter(|(_, x)| x.dtype() == DType::F32)
        .map(|(k, x)| (k, x.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resume_is_bit_for_bit() {
    for kind in [ModelKind::Trm, ModelKind::Hrm] {
        let cfg = config(kind);
        let device = Device::Cpu;
        let mut straight = Trainer::new(&cfg, kind, optim(), 7, &device).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for s in 0..5 {
            straight.train_step(&batch(s), 1.0, &mut rng).unwrap();
        }

        let mut first = Trainer::new(&cfg, kind, optim(), 7, &device).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for s in 0..3 {
            first.train_step(&batch(s), 1.0, &mut rng).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.safetensors");
        models::checkpoint::write(&path, &first.state_tensors().unwrap()).unwrap();
        let word_pos = rng.get_word_pos();
        drop(first);

        let mut resumed = Trainer::new(&cfg, kind, optim(), 99, &device).unwrap();
        resumed
            .restore(&models::checkpoint::load_state_dict(&path, &device).unwrap())
            .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        rng.set_word_pos(word_pos);
        for s in 3..5 {
            resumed.train_step(&batch(s), 1.0, &mut rng).unwrap();
        }
        assert_eq!(resumed.step, 5);
        let (a, b) = (weights(&straight), weights(&resumed));
        assert_eq!(a.len(), b.len());
        for ((na, va), (nb, vb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(
                va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{kind:?}: {na} differs after resume"
            );
        }
        // The run really moved: weights differ from a fresh start.
        let fresh = weights(&Trainer::new(&cfg, kind, optim(), 7, &device).unwrap());
        assert!(a.iter().zip(&fresh).any(|((_, x), (_, y))| x != y));
    }
}
