//! A run stopped and resumed from a checkpoint continues bit for bit: weights, optimiser
//! moments, EMA, step count and the persistent ACT carry are all in the checkpoint.

mod common;

use candle_core::{DType, Device};
use common::{batch, config, optim};
use models::model::ModelKind;
use models::trainer::Trainer;
use rand::SeedableRng;

fn weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = t
        .state_tensors(t.carry.as_ref())
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
    for kind in [
        ModelKind::Trm,
        ModelKind::Hrm,
        ModelKind::TrmSingleZ,
        ModelKind::TrmHier6,
        ModelKind::Transformer,
    ] {
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
        models::checkpoint::write(&path, &first.state_tensors(first.carry.as_ref()).unwrap())
            .unwrap();
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

#[test]
fn a_carry_of_other_states_is_refused_by_name() {
    let device = Device::Cpu;
    let mut trm =
        Trainer::new(&config(ModelKind::Trm), ModelKind::Trm, optim(), 7, &device).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    trm.train_step(&batch(0), 1.0, &mut rng).unwrap();
    let state: std::collections::HashMap<_, _> = trm
        .state_tensors(trm.carry.as_ref())
        .unwrap()
        .into_iter()
        .collect();
    let names = ModelKind::TrmHier6.state_names();
    let err = models::act::Carry::from_tensors(&state, names)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("z_L1") && err.contains("[\"H\", \"L\"]"),
        "{err}"
    );
}
