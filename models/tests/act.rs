//! ACT in training: with early halting (the official loop) a slot whose halting head says
//! stop restarts on a new example; with it off every slot runs all `halt_max_steps`.

mod common;

use candle_core::{Device, Tensor};
use common::{batch, config, optim};
use models::model::ModelKind;
use models::trainer::{OptimConfig, Trainer};
use rand::SeedableRng;

/// Steps of each slot after each of three training calls, the halting head saying "halt".
fn slot_steps(halt_early: bool) -> Vec<Vec<u32>> {
    let mut cfg = config(ModelKind::Trm);
    cfg.halt_exploration_prob = 0.0;
    let optim = OptimConfig {
        halt_early,
        ..optim()
    };
    let device = Device::Cpu;
    let mut trainer = Trainer::new(&cfg, ModelKind::Trm, optim, 3, &device).unwrap();
    // The halting head starts at weight 0, so q_halt is its bias: +5 halts (TRM: q_halt > 0).
    let bias = trainer
        .varmap
        .data()
        .lock()
        .unwrap()
        .get("model.inner.q_head.bias")
        .unwrap()
        .clone();
    bias.set(&Tensor::new(&[5f32, -5.0], &device).unwrap())
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    (0..3)
        .map(|s| {
            trainer.train_step(&batch(s), 0.0, &mut rng).unwrap();
            trainer.carry.as_ref().unwrap().steps.clone()
        })
        .collect()
}

#[test]
fn act_off_runs_every_slot_through_all_supervision_steps() {
    assert_eq!(slot_steps(true), vec![vec![1; 4]; 3]);
    assert_eq!(slot_steps(false), [vec![1; 4], vec![2; 4], vec![3; 4]]);
}
