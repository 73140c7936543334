//! Finite-difference checks of the gradients, in f64, of each layer and of a whole supervision
//! step of each model on a tiny configuration; and of the one-step-gradient semantics.

use candle_core::{DType, Device, Result, Tensor, Var, D};
use candle_nn::VarBuilder;
use models::attention::{attend_with, Attention, AttentionBackend, Rotary};
use models::config::ModelConfig;
use models::frame::InnerCarry;
use models::init::init_varmap;
use models::layers::{rms_norm, Block, BlockShape, SwiGlu};
use models::loss::{bce_with_logits_sum, token_cross_entropy, LossType};
use models::model::{ModelKind, RecursiveModel};
use models::trm::Trm;
use rand::{Rng, SeedableRng};

const DEV: Device = Device::Cpu;

fn random(shape: &[usize], seed: u64, scale: f64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n)
            .map(|_| scale * (rng.random::<f64>() * 2.0 - 1.0))
            .collect::<Vec<f64>>(),
        shape,
        &DEV,
    )
    .unwrap()
}

/// Compares autograd with central differences on up to `per_var` entries of every variable.
fn check(name: &str, vars: &[Var], loss: impl Fn() -> Result<Tensor>) {
    let value = loss().unwrap();
    let grads = value.backward().unwrap();
    let h = 1e-6;
    let mut checked = 0;
    for (v_index, var) in vars.iter().enumerate() {
        let original = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let grad = grads
            .get(var.as_tensor())
            .map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap())
            .unwrap_or(vec![0.0; original.len()]);
        let picks: Vec<usize> = (0..4)
            .map(|k| (k * 7919 + v_index * 31) % original.len())
            .collect();
        for i in picks {
            let at = |delta: f64| {
                let mut p = original.clone();
                p[i] += delta;
                var.set(&Tensor::from_vec(p, var.as_tensor().shape(), &DEV).unwrap())
                    .unwrap();
                loss().unwrap().to_scalar::<f64>().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            var.set(&Tensor::from_vec(original.clone(), var.as_tensor().shape(), &DEV).unwrap())
                .unwrap();
            let err = (fd - grad[i]).abs();
            assert!(
                err <= 1e-6 + 1e-5 * fd.abs().max(grad[i].abs()),
                "{name}: variable {v_index} entry {i}: autograd {} vs finite difference {fd}",
                grad[i]
            );
            checked += 1;
        }
    }
    assert!(checked >= vars.len());
}

/// A fixed random projection to a scalar, so every output entry matters.
fn project(t: &Tensor, seed: u64) -> Result<Tensor> {
    (t * random(t.dims(), seed, 1.0))?.sum_all()
}

fn var(shape: &[usize], seed: u64, scale: f64) -> Var {
    Var::from_tensor(&random(shape, seed, scale)).unwrap()
}

#[test]
fn layers_match_finite_differences() {
    let x = var(&[2, 5, 8], 1, 1.0);
    check("rms_norm", std::slice::from_ref(&x), || {
        project(&rms_norm(x.as_tensor(), 1e-5)?, 2)
    });

    let rotary = Rotary::new(4, 5, 10000.0, &DEV).unwrap();
    let q = var(&[2, 5, 2, 4], 3, 1.0);
    check("rotary", std::slice::from_ref(&q), || {
        project(&rotary.apply(q.as_tensor())?, 4)
    });

    let weights = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&weights, DType::F64, &DEV);
    let attn = Attention::new(&vb.pp("attn"), 8, 2).unwrap();
    let mlp = SwiGlu::new(&vb.pp("mlp"), 8, 4.0).unwrap();
    let shape = BlockShape {
        hidden: 8,
        num_heads: 2,
        expansion: 4.0,
        eps: 1e-5,
        sequence_mlp: None,
    };
    let block = Block::new(&vb.pp("block"), shape).unwrap();
    let mixer_block = Block::new(
        &vb.pp("mixer"),
        BlockShape {
            sequence_mlp: Some(5),
            ..shape
        },
    )
    .unwrap();
    // Random (not default) weights, so no gradient is trivially zero.
    for (k, v) in weights.all_vars().iter().enumerate() {
        v.set(&random(v.as_tensor().dims(), 100 + k as u64, 0.5))
            .unwrap();
    }
    let mut all = weights.all_vars();
    all.push(x.clone());
    check("attention", &all, || {
        project(&attn.forward(x.as_tensor(), None)?, 5)
    });
    let rotary8 = Rotary::new(4, 5, 10000.0, &DEV).unwrap();
    check("attention with rope", &all, || {
        project(&attn.forward(x.as_tensor(), Some(&rotary8))?, 6)
    });
    // The attention CUDA and bf16 run: query chunks of 2 rows of 5, recomputing backward.
    let qkv = var(&[2, 5, 24], 13, 1.0);
    let chunked = AttentionBackend::Chunked { query_rows: 2 };
    check(
        "chunked attention with rope",
        std::slice::from_ref(&qkv),
        || {
            let out = attend_with(chunked, qkv.as_tensor(), 2, 4, Some(&rotary8))?;
            project(&out, 14)
        },
    );
    check("swiglu", &all, || project(&mlp.forward(x.as_tensor())?, 7));
    check("post-norm block", &all, || {
        project(&block.forward(x.as_tensor(), Some(&rotary8))?, 8)
    });
    check("sequence-mlp block", &all, || {
        project(&mixer_block.forward(x.as_tensor(), None)?, 9)
    });

    let logits = var(&[2, 5, 6], 10, 3.0);
    let labels = Tensor::new(&[[1i64, 5, -100, 0, 2], [3, -100, -100, 4, 4]], &DEV).unwrap();
    // Stablemax runs in f64 (as the official code); softmax runs in f32 by design, too coarse
    // for finite differences, and is checked against the official values instead.
    check(
        "stablemax cross-entropy",
        std::slice::from_ref(&logits),
        || {
            token_cross_entropy(logits.as_tensor(), &labels, LossType::StablemaxCrossEntropy)?
                .sum_all()
        },
    );
    let q = var(&[6], 11, 4.0);
    let target = random(&[6], 12, 0.5).affine(1.0, 0.5).unwrap();
    check("halting BCE", std::slice::from_ref(&q), || {
        bce_with_logits_sum(q.as_tensor(), &target)
    });
}

fn tiny(kind: ModelKind, mlp_t: bool, h_cycles: usize) -> ModelConfig {
    ModelConfig {
        batch_size: 2,
        seq_len: 6,
        puzzle_emb_ndim: 8,
        num_puzzle_identifiers: 3,
        vocab_size: 5,
        H_cycles: h_cycles,
        L_cycles: 2,
        H_layers: 1,
        L_layers: 1,
        hidden_size: 8,
        expansion: 2.0,
        num_heads: 2,
        pos_encodings: if mlp_t { "none".into() } else { "rope".into() },
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        halt_max_steps: 3,
        halt_exploration_prob: 0.0,
        forward_dtype: "float64".into(),
        mlp_t,
        puzzle_emb_len: if kind.is_trm() { Some(2) } else { None },
        no_ACT_continue: if kind.is_trm() { Some(true) } else { None },
        gradient: None,
    }
}

fn build(cfg: &ModelConfig, kind: ModelKind) -> (candle_nn::VarMap, Box<dyn RecursiveModel>) {
    let varmap = init_varmap(cfg, kind, 3, DType::F64, &DEV).unwrap();
    // Non-zero halting head so its gradient path is exercised.
    for (k, v) in varmap.all_vars().iter().enumerate() {
        if v.as_tensor().dims() == [2, 8] || v.as_tensor().dims() == [2] {
            v.set(&random(v.as_tensor().dims(), 50 + k as u64, 0.3))
                .unwrap();
        }
    }
    let model = models::trainer::build_model(
        &VarBuilder::from_varmap(&varmap, DType::F64, &DEV),
        cfg,
        kind,
        &DEV,
    )
    .unwrap();
    (varmap, model)
}

fn step_loss(model: &dyn RecursiveModel, carry: &InnerCarry, rows: &Tensor) -> Result<Tensor> {
    let inputs = Tensor::new(&[[1u32, 2, 3, 4, 0, 1], [4, 3, 2, 1, 1, 2]], &DEV)?;
    let x = model.frame().input_embeddings(&inputs, rows)?;
    let out = model.supervision_step(carry, &x)?;
    let (logits, q_halt, q_continue) = model.frame().heads(out.output())?;
    let mut loss = ((project(&logits, 20)? + project(&q_halt, 21)?)? + project(&q_continue, 22)?)?;
    for (i, state) in out.states.iter().enumerate().skip(1) {
        loss = (loss + project(state, 23 + i as u64)?)?;
    }
    Ok(loss)
}

/// Random states of `kind`'s carry, seeded from `seed`.
fn random_carry(kind: ModelKind, seq: usize, seed: u64) -> InnerCarry {
    let names = kind.state_names();
    let states = (0..names.len())
        .map(|i| random(&[2, seq, 8], seed + i as u64, 1.0))
        .collect();
    InnerCarry::new(names, states)
}

#[test]
fn whole_supervision_steps_match_finite_differences() {
    // With one round (TRM T = 1; HRM one H and one L cycle) every update has a graph, so the
    // finite differences of the whole step must equal autograd.
    // HRM with `gradient = last-cycle` and one H cycle: every L update has a graph too.
    for (kind, mlp_t, gradient) in [
        (ModelKind::Trm, false, None),
        (ModelKind::Trm, true, None),
        (ModelKind::Hrm, false, None),
        (ModelKind::Hrm, false, Some("last-cycle")),
        (ModelKind::TrmSingleZ, false, None),
        (ModelKind::TrmHier6, false, None),
        (ModelKind::Transformer, false, None),
    ] {
        let mut cfg = tiny(kind, mlp_t, 1);
        cfg.gradient = gradient.map(String::from);
        if kind == ModelKind::Hrm && gradient.is_none() {
            cfg.L_cycles = 1;
        }
        let (varmap, model) = build(&cfg, kind);
        let carry = random_carry(kind, cfg.full_seq_len(), 30);
        let rows = var(&[2, 8], 32, 0.5);
        let mut vars: Vec<Var> = varmap
            .all_vars()
            .into_iter()
            .filter(|v| v.as_tensor().rank() == 2)
            .collect();
        vars.push(rows.clone());
        check(
            &format!("{kind:?} mlp_t={mlp_t} gradient={gradient:?} supervision step"),
            &vars,
            || step_loss(model.as_ref(), &carry, rows.as_tensor()),
        );
    }
}

#[test]
fn only_the_last_round_trains() {
    // The gradient of a T = 2 step equals that of a T = 1 step started from the state the first
    // round produced: the first round is cut from the graph, as the official no_grad block.
    let (cfg2, cfg1) = (
        tiny(ModelKind::Trm, false, 2),
        tiny(ModelKind::Trm, false, 1),
    );
    let (varmap, two_rounds) = build(&cfg2, ModelKind::Trm);
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &DEV)
        .pp("model")
        .pp("inner");
    let one_round = Trm::new(&vb, &cfg1, &DEV).unwrap();
    let carry = random_carry(ModelKind::Trm, 8, 40);
    let rows = random(&[2, 8], 42, 0.5);
    let inputs = Tensor::new(&[[1u32, 2, 3, 4, 0, 1], [4, 3, 2, 1, 1, 2]], &DEV).unwrap();
    let x = two_rounds.frame().input_embeddings(&inputs, &rows).unwrap();
    let after_first = one_round.supervision_step(&carry, &x).unwrap();
    let after_first = after_first.detach();
    let g2 = step_loss(two_rounds.as_ref(), &carry, &rows)
        .unwrap()
        .backward()
        .unwrap();
    let g1 = step_loss(&one_round, &after_first, &rows)
        .unwrap()
        .backward()
        .unwrap();
    assert_same_gradients(&varmap, &g2, &g1);
}

/// Every variable's gradient in `a` within 1e-12 of `b`'s, and present in both or neither.
fn assert_same_gradients(
    varmap: &candle_nn::VarMap,
    a: &candle_core::backprop::GradStore,
    b: &candle_core::backprop::GradStore,
) {
    for v in varmap.all_vars() {
        match (a.get(v.as_tensor()), b.get(v.as_tensor())) {
            (Some(a), Some(b)) => {
                let diff = (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_keepdim(D::Minus1)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                assert!(diff < 1e-12, "gradients differ by {diff}");
            }
            (None, None) => {}
            _ => panic!("one run has a gradient the other lacks"),
        }
    }
}

/// TRM with `gradient = one-step` (an ablation): the gradient of an n = 2 step equals that of
/// an n = 1 step started after one latent update made without a graph; with n = 1 the
/// switch changes nothing.
#[test]
fn one_step_trm_trains_only_the_last_latent_and_answer_updates() {
    let mut one_step = tiny(ModelKind::Trm, false, 1);
    one_step.gradient = Some("one-step".into());
    let mut last_n1 = tiny(ModelKind::Trm, false, 1);
    last_n1.L_cycles = 1;
    let (varmap, model) = build(&one_step, ModelKind::Trm);
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &DEV)
        .pp("model")
        .pp("inner");
    let n1 = Trm::new(&vb, &last_n1, &DEV).unwrap();
    let carry = random_carry(ModelKind::Hrm, 8, 60);
    let (z_h, z_l) = carry.pair().unwrap();
    let rows = var(&[2, 8], 62, 0.5);
    let inputs = Tensor::new(&[[1u32, 2, 3, 4, 0, 1], [4, 3, 2, 1, 1, 2]], &DEV).unwrap();
    let x = model
        .frame()
        .input_embeddings(&inputs, rows.as_tensor())
        .unwrap();
    let injection = (&z_h + &x).unwrap();
    let rotary = model.frame().rotary.as_ref();
    let z1 = model.levels()[0]
        .forward(&z_l, &injection, rotary)
        .unwrap()
        .detach();
    let after_first = InnerCarry::new(carry.names, vec![z_h, z1]);
    let grads = |m: &dyn RecursiveModel, c: &InnerCarry| {
        step_loss(m, c, rows.as_tensor())
            .unwrap()
            .backward()
            .unwrap()
    };
    let g_one_step = grads(model.as_ref(), &carry);
    assert_same_gradients(&varmap, &g_one_step, &grads(&n1, &after_first));
    // The switch matters at n = 2: the whole last round gives other gradients.
    let (whole_vars, whole) = build(&tiny(ModelKind::Trm, false, 1), ModelKind::Trm);
    let g_whole = grads(whole.as_ref(), &carry);
    let down_proj = |g: &candle_core::backprop::GradStore, vm: &candle_nn::VarMap| {
        let vars = vm.data().lock().unwrap();
        let w = &vars["model.inner.L_level.layers.0.mlp.down_proj.weight"];
        let g = g.get(w.as_tensor()).expect("a gradient");
        g.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    };
    assert_ne!(
        down_proj(&g_one_step, &varmap),
        down_proj(&g_whole, &whole_vars)
    );
}
