//! Each fused CPU kernel against the plain candle composition it replaces, forward and
//! forward + backward, at the three shapes of the side-by-side benchmark: the `cpu` preset
//! (5x5 maze, width 64, 4 heads), and Sudoku at width 128 (2 heads) and 512 (8 heads), batch
//! 64 throughout. `cargo bench -p models --bench kernels`.

use candle_core::{Device, Result, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use models::attention::{attention_reference, Rotary};
use models::kernels;
use models::layers::{rms_norm, swiglu_gate_reference, swiglu_inner};

struct Shape {
    name: &'static str,
    batch: usize,
    seq: usize,
    width: usize,
    heads: usize,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "cpu-preset",
        batch: 64,
        seq: 29,
        width: 64,
        heads: 4,
    },
    Shape {
        name: "sudoku-d128",
        batch: 64,
        seq: 97,
        width: 128,
        heads: 2,
    },
    Shape {
        name: "sudoku-d512",
        batch: 64,
        seq: 97,
        width: 512,
        heads: 8,
    },
];

fn var(dims: &[usize]) -> Var {
    Var::from_tensor(&Tensor::randn(0f32, 1.0, dims, &Device::Cpu).unwrap()).unwrap()
}

/// Forward, and forward + backward of the sum of the output times a fixed random tensor.
fn bench_pair(
    c: &mut Criterion,
    group: &str,
    shape: &Shape,
    inputs: &[Var],
    fused: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    reference: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let probe = Tensor::randn_like(&fused(&tensors).unwrap(), 0.0, 1.0).unwrap();
    for (name, f) in [("fused", fused), ("candle", reference)] {
        g.bench_with_input(
            BenchmarkId::new(format!("{name} forward"), shape.name),
            &(),
            |b, _| b.iter(|| f(&tensors).unwrap()),
        );
        g.bench_with_input(
            BenchmarkId::new(format!("{name} forward+backward"), shape.name),
            &(),
            |b, _| {
                b.iter(|| {
                    (f(&tensors).unwrap() * &probe)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    for sh in &SHAPES {
        let (b, s, d, h) = (sh.batch, sh.seq, sh.width, sh.heads);
        let hd = d / h;
        let rotary = Rotary::new(hd, s, 10000.0, &Device::Cpu).unwrap();
        let op = kernels::attention::AttentionCore {
            heads: h,
            head_dim: hd,
            rotary: Some(rotary.tables.clone()),
        };
        bench_pair(
            c,
            "attention (RoPE, scores, softmax, values)",
            sh,
            &[var(&[b, s, 3 * d])],
            &|t| kernels::attention::attention(&t[0], op.clone()),
            &|t| attention_reference(&t[0], h, hd, Some(&rotary)),
        );
        bench_pair(
            c,
            "rms_norm(a + b)",
            sh,
            &[var(&[b, s, d]), var(&[b, s, d])],
            &|t| kernels::rms_norm::rms_norm_residual(&t[0], &t[1], 1e-5),
            &|t| rms_norm(&(&t[0] + &t[1])?, 1e-5),
        );
        let inner = swiglu_inner(d, 4.0);
        bench_pair(
            c,
            "swiglu gate",
            sh,
            &[var(&[b, s, 2 * inner])],
            &|t| kernels::swiglu::swiglu_gate(&t[0]),
            &|t| swiglu_gate_reference(&t[0], inner),
        );
        bench_pair(
            c,
            "linear (gate_up_proj)",
            sh,
            &[var(&[b * s, d]), var(&[2 * inner, d])],
            &|t| kernels::linear::linear(&t[0], &t[1]),
            &|t| t[0].matmul(&t[1].t()?),
        );
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
