//! The fused CPU kernels agree with the candle compositions they replace, outputs and
//! gradients, in f32 at a realistic shape (the finite-difference checks in `gradcheck` cover
//! f64 at tiny shapes).

use candle_core::{Device, Result, Tensor, Var};
use models::attention::{attention_reference, Rotary};
use models::kernels;
use models::layers::{rms_norm, swiglu_gate_reference};

fn var(dims: &[usize], seed: u64) -> Var {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n as u64)
        .map(|i| {
            let x = (i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(seed.wrapping_mul(1442695040888963407))
                >> 33) as f32;
            x / (1u64 << 31) as f32 * 2.0 - 1.0
        })
        .collect();
    Var::from_tensor(&Tensor::from_vec(values, dims, &Device::Cpu).unwrap()).unwrap()
}

fn largest_relative(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Compares outputs and the gradients of every input of a projection to a scalar.
fn agree(
    name: &str,
    inputs: &[Var],
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    reference: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    let t: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let (f, r) = (fused(&t).unwrap(), reference(&t).unwrap());
    assert_eq!(f.dims(), r.dims(), "{name}");
    let out_err = largest_relative(&f, &r);
    assert!(out_err < 1e-5, "{name}: output differs by {out_err}");
    let probe = var(f.dims(), 99);
    let grads = |y: &Tensor| {
        (y * probe.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    };
    let (gf, gr) = (grads(&f), grads(&r));
    for (i, v) in inputs.iter().enumerate() {
        let err = largest_relative(
            gf.get(v.as_tensor()).unwrap(),
            gr.get(v.as_tensor()).unwrap(),
        );
        assert!(err < 1e-4, "{name}: gradient of input {i} differs by {err}");
    }
}

#[test]
fn fused_kernels_match_the_candle_compositions() {
    let (b, s, d, h) = (3, 29, 64, 4);
    // Head dimensions 16 and 64 take the rotation's constant-length paths, 8 the general one;
    // 29 positions fill one whole block of the softmax's columns and part of another, 5 part
    // of one.
    for (width, heads, s) in [(d, h, s), (128, 2, s), (d, 8, s), (d, h, 5)] {
        let hd = width / heads;
        let rotary = Rotary::new(hd, s + 3, 10000.0, &Device::Cpu).unwrap();
        for rope in [true, false] {
            let op = kernels::attention::AttentionCore {
                heads,
                head_dim: hd,
                rotary: rope.then(|| rotary.tables.clone()),
            };
            let table = rope.then_some(&rotary);
            agree(
                &format!("attention ({s} positions, head dim {hd}, rope {rope})"),
                &[var(&[b, s, 3 * width], 1)],
                |t| kernels::attention::attention(&t[0], op.clone()),
                |t| attention_reference(&t[0], heads, hd, table),
            );
        }
    }
    agree(
        "rms_norm(a + b)",
        &[var(&[b, s, d], 2), var(&[b, s, d], 3)],
        |t| kernels::rms_norm::rms_norm_residual(&t[0], &t[1], 1e-5),
        |t| rms_norm(&(&t[0] + &t[1])?, 1e-5),
    );
    agree(
        "swiglu gate",
        &[var(&[b, s, 512], 4)],
        |t| kernels::swiglu::swiglu_gate(&t[0]),
        |t| swiglu_gate_reference(&t[0], 256),
    );
    agree(
        "linear",
        &[var(&[b * s, d], 5), var(&[3 * d, d], 6)],
        |t| kernels::linear::linear(&t[0], &t[1]),
        |t| t[0].matmul(&t[1].t()?),
    );
    // Leading axes pass through the op as they are, with no reshape around it.
    agree(
        "linear over [B, S, in]",
        &[var(&[b, s, d], 7), var(&[3 * d, d], 8)],
        |t| kernels::linear::linear(&t[0], &t[1]),
        |t| {
            t[0].reshape((b * s, d))?
                .matmul(&t[1].t()?)?
                .reshape((b, s, 3 * d))
        },
    );
}
