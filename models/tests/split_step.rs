//! One optimiser step whatever the split of its global batch: k micro-batches (one graph in
//! memory at a time) and N data-parallel ranks (threads, each with its own copy of the model,
//! exchanging gradients through `ThreadGroup`) give the update of one rank with the whole
//! batch; so do k batch shards run at once on the CPU's workers, whose bits depend on k alone,
//! never on how many threads ran them; and the optimiser as device tensor ops gives the update
//! of the in-place CPU kernels.

mod common;

use candle_core::Device;
use common::{batch, config, optim};
use models::collective::{Collective, ThreadGroup};
use models::model::ModelKind;
use models::trainer::Trainer;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::sync::Arc;

type State = BTreeMap<String, Vec<f32>>;

/// Every tensor of the training state (weights, puzzle table, moments, EMA, carry) after
/// `steps` steps, as f32.
fn train(kind: ModelKind, steps: u64, setup: impl FnOnce(&mut Trainer)) -> State {
    let mut trainer = Trainer::new(&config(kind), kind, optim(), 5, &Device::Cpu).unwrap();
    // A halting head that says "halt", so slots halt unless exploration holds them (drawn
    // per slot of the global batch), and halted slots reload from the next batch.
    let bias = trainer.varmap.data().lock().unwrap()["model.inner.q_head.bias"].clone();
    bias.set(&candle_core::Tensor::new(&[5f32, -5.0], &Device::Cpu).unwrap())
        .unwrap();
    // The whole batch in one graph unless a test splits it (the CPU default shards it).
    trainer.batch_shards = 1;
    setup(&mut trainer);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for s in 0..steps {
        trainer.train_step(&batch(s), 1.0, &mut rng).unwrap();
    }
    trainer
        .state_tensors(trainer.carry.as_ref())
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            let values = t
                .to_dtype(candle_core::DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (name, values)
        })
        .collect()
}

/// `N` ranks as threads; each rank's state (its carry holds only its slots).
fn train_ranks(kind: ModelKind, steps: u64, ranks: usize, micro_batches: usize) -> Vec<State> {
    let group = ThreadGroup::new(vec![Device::Cpu; ranks]);
    std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .map(|rank| {
                s.spawn(move || {
                    train(kind, steps, |t| {
                        t.micro_batches = micro_batches;
                        t.group = Arc::new(rank) as Arc<dyn Collective>;
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Each tensor within `tolerance` of the reference's, relative to its largest entry.
fn assert_close(label: &str, ours: &State, reference: &State, tolerance: f32) {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{label}"
    );
    for (name, r) in reference {
        let o = &ours[name];
        let scale = r.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
        let worst = o.iter().zip(r).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= tolerance * scale,
            "{label}: {name} differs by {worst:e} (largest entry {scale:e})"
        );
    }
}

/// The carry's slots of the ranks in rank order, the rest from rank 0.
fn joined(ranks: &[State]) -> State {
    let mut joined = ranks[0].clone();
    for (name, values) in joined.iter_mut() {
        if name.starts_with("carry.") {
            *values = ranks.iter().flat_map(|r| r[name].clone()).collect();
        }
    }
    joined
}

/// One update to 1e-5 of each tensor's largest entry; three steps (the carry continuing in
/// its pieces, halted slots reloaded) to 1e-4: AdamATan2 turns a gradient's last-bit
/// rounding into a change of `atan2(m, sqrt(v))`, and the moments carry it on.
const CASES: [(u64, f32); 2] = [(1, 1e-5), (3, 1e-4)];

#[test]
fn micro_batches_give_the_whole_batch_update() {
    for kind in [ModelKind::Trm, ModelKind::Hrm] {
        for (steps, tolerance) in CASES {
            let whole = train(kind, steps, |_| {});
            for k in [2, 3, 4, 9] {
                let split = train(kind, steps, |t| t.micro_batches = k);
                let label = format!("{kind:?}, {steps} steps in {k} micro-batches");
                assert_close(&label, &split, &whole, tolerance);
            }
        }
    }
}

#[test]
fn batch_shards_give_the_whole_batch_update() {
    for kind in [ModelKind::Trm, ModelKind::Hrm] {
        for (steps, tolerance) in CASES {
            let whole = train(kind, steps, |_| {});
            for (shards, micro_batches) in [(2, 1), (3, 1), (4, 1), (2, 2)] {
                let split = train(kind, steps, |t| {
                    t.batch_shards = shards;
                    t.micro_batches = micro_batches;
                });
                let label = format!(
                    "{kind:?}, {steps} steps in {shards} shards of {micro_batches} micro-batches"
                );
                assert_close(&label, &split, &whole, tolerance);
            }
        }
    }
}

/// The shard count fixes the sums' order, so one pool thread or four give the same bits.
#[test]
fn a_shard_count_gives_the_same_bits_on_any_number_of_threads() {
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train(ModelKind::Trm, 3, |t| t.batch_shards = 3))
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(4), "3 shards on 1 and on 4 threads");
    assert_ne!(
        one,
        train(ModelKind::Trm, 3, |_| {}),
        "a shard count that changes no bit: the test could not fail"
    );
}

/// A rayon worker that waits inside a `no_grad` block (the recursion's rounds without a
/// graph) may steal another job, such as another rank's or another run's batch shard: the
/// shard must still record its graph. One pool thread in a `no_grad` block is that worker.
#[test]
fn a_shard_run_by_a_thread_inside_no_grad_still_records_its_gradients() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let shards = |t: &mut Trainer| t.batch_shards = 2;
    let plain = pool.install(|| train(ModelKind::Trm, 2, shards));
    let stolen = pool.install(|| models::layers::no_grad(|| train(ModelKind::Trm, 2, shards)));
    let differ: Vec<&String> = plain.keys().filter(|k| plain[*k] != stolen[*k]).collect();
    assert!(
        differ.is_empty(),
        "a thread's no_grad leaked into the shards it ran: {differ:?} differ"
    );
}

/// Evaluation rows are independent: shards give the whole batch's predictions and states to
/// within the last bits (a GEMM's rounding depends on its row count), and a shard count gives
/// the same bits on any number of threads.
#[test]
fn evaluation_shards_give_the_whole_batch_outputs() {
    for kind in [ModelKind::Trm, ModelKind::Hrm] {
        let mut trainer = Trainer::new(&config(kind), kind, optim(), 5, &Device::Cpu).unwrap();
        let model = trainer.inference_model(&config(kind), kind, false).unwrap();
        let batch = batch(0);
        let carry = models::act::initial_carry(model.as_ref(), &batch).unwrap();
        let mut evaluate = |shards: usize, threads: usize| {
            trainer.batch_shards = shards;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (next, step) = pool
                .install(|| trainer.eval_step(model.as_ref(), &carry, &batch))
                .unwrap();
            let z_h = next
                .inner
                .output()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (step.preds, [step.q_halt, step.q_continue, z_h], next.steps)
        };
        let whole = evaluate(1, 1);
        for shards in [2, 3] {
            let split = evaluate(shards, 1);
            let label = format!("{kind:?}, {shards} shards");
            assert_eq!(whole.0, split.0, "{label}: predictions");
            assert_eq!(whole.2, split.2, "{label}: steps");
            for (w, s) in whole.1.iter().zip(&split.1) {
                let scale = w.iter().fold(0f32, |m, x| m.max(x.abs()));
                let worst = w.iter().zip(s).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(worst <= 1e-5 * scale, "{label}: differs by {worst:e}");
            }
            assert!(
                split == evaluate(shards, 4),
                "{label}: 1 and 4 threads disagree"
            );
        }
    }
}

#[test]
fn ranks_give_the_one_rank_update() {
    for kind in [ModelKind::Trm, ModelKind::Hrm] {
        for (steps, tolerance) in CASES {
            let whole = train(kind, steps, |_| {});
            for (ranks, micro_batches) in [(2, 1), (4, 1), (2, 2), (3, 1)] {
                let states = train_ranks(kind, steps, ranks, micro_batches);
                let label = format!(
                    "{kind:?}, {steps} steps on {ranks} ranks of {micro_batches} micro-batches"
                );
                for state in &states[1..] {
                    for (name, values) in state.iter().filter(|(n, _)| !n.starts_with("carry.")) {
                        assert_eq!(
                            values, &states[0][name],
                            "{label}: ranks disagree on {name}"
                        );
                    }
                }
                assert_close(&label, &joined(&states), &whole, tolerance);
            }
        }
    }
}

#[test]
fn device_tensor_optimiser_gives_the_kernels_update() {
    for kind in [ModelKind::Trm, ModelKind::Hrm] {
        for (steps, tolerance) in CASES {
            let kernels = train(kind, steps, |_| {});
            let device_ops = train(kind, steps, |t| t.fused_updates = false);
            let label = format!("{kind:?}, {steps} steps of device ops");
            assert_close(&label, &device_ops, &kernels, tolerance);
        }
    }
}

/// The step downloads per-slot halting and metric values and a few scalars, never a
/// parameter or a row of the puzzle table: the bytes read do not grow with the model.
#[test]
fn a_training_step_downloads_no_parameter_and_no_puzzle_row() {
    let bytes_per_step = |hidden: usize, puzzles: usize, dtype: &str| {
        let mut cfg = config(ModelKind::Trm);
        cfg.forward_dtype = dtype.into();
        cfg.hidden_size = hidden;
        cfg.puzzle_emb_ndim = hidden;
        cfg.num_puzzle_identifiers = puzzles;
        let mut trainer = Trainer::new(&cfg, ModelKind::Trm, optim(), 5, &Device::Cpu).unwrap();
        trainer.fused_updates = false;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        trainer.train_step(&batch(0), 1.0, &mut rng).unwrap();
        let before = models::host::bytes_read();
        trainer.train_step(&batch(1), 1.0, &mut rng).unwrap();
        models::host::bytes_read() - before
    };
    // The CPU kernels' path (f32) and the GPU's (bf16: compositions, chunked attention).
    let small = bytes_per_step(16, 3, "float32");
    for dtype in ["float32", "bfloat16"] {
        let large = bytes_per_step(64, 3000, dtype);
        assert_eq!(small, large, "{dtype}: the downloads grow with the model");
    }
    let trm_parameters = 20; // tensors of the tiny TRM, each summed to one f32 for the NaN check
    let slots = 4;
    assert!(
        small <= (slots * 6 * 4 + trm_parameters * 4 + 16 * 8) as u64,
        "{small} bytes downloaded in one step"
    );
    assert!(small > 0, "the counter counts nothing");
}
