//! The optimisers' updates in place on the CPU tensors themselves (`optim` holds their
//! arithmetic): nothing is copied out of or back into a parameter, a moment, an EMA shadow or
//! the puzzle-embedding table, of which sign-SGD touches only the rows of the batch.

use crate::optim::{ema_update, sparse_sign_sgd_step, AdamScalars};
use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

/// Elements per parallel task of the element-wise updates.
const UPDATE_CHUNK: usize = 4096;

fn f32_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => bail!("in-place optimiser updates take contiguous f32 tensors"),
    }
}

fn f32_ref<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    super::slice::<f32>(s, l)
}

/// On the moments `[m | v]` (one tensor of twice the parameter's size), given the gradient.
struct UpdateMoments(AdamScalars);

impl InplaceOp2 for UpdateMoments {
    fn name(&self) -> &'static str {
        "adam-atan2-moments"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let moments = f32_mut(s1, l1)?;
        let (m, v) = moments.split_at_mut(moments.len() / 2);
        self.0.update_moments(m, v, f32_ref(s2, l2)?);
        Ok(())
    }
}

/// On the parameter, given its updated moments `[m | v]`.
struct ApplyStep(AdamScalars);

impl InplaceOp2 for ApplyStep {
    fn name(&self) -> &'static str {
        "adam-atan2-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let moments = f32_ref(s2, l2)?;
        let (m, v) = moments.split_at(moments.len() / 2);
        let p = f32_mut(s1, l1)?;
        if p.len() != m.len() {
            bail!(
                "adam-atan2: {} parameters, moments for {}",
                p.len(),
                m.len()
            );
        }
        // Over the threads: each element's update is its own (the same bits at any count),
        // and libm's `atan2f` costs some 20 ns an element, a serial millisecond or more a step
        // at the cpu preset while the batch shards' threads wait.
        p.par_chunks_mut(UPDATE_CHUNK)
            .zip(m.par_chunks(UPDATE_CHUNK).zip(v.par_chunks(UPDATE_CHUNK)))
            .for_each(|(p, (m, v))| self.0.apply(p, m, v));
        Ok(())
    }
}

/// One AdamATan2 step of `param`, with its moments `[m | v]` and gradient, all in place.
pub fn adam_atan2(param: &Tensor, moments: &Tensor, grad: &Tensor, s: AdamScalars) -> Result<()> {
    moments.inplace_op2(&grad.contiguous()?, &UpdateMoments(s))?;
    param.inplace_op2(moments, &ApplyStep(s))
}

struct Ema(f64);

impl InplaceOp2 for Ema {
    fn name(&self) -> &'static str {
        "ema"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        ema_update(f32_mut(s1, l1)?, f32_ref(s2, l2)?, self.0);
        Ok(())
    }
}

/// `shadow = (1 - mu) param + mu shadow`, in place.
pub fn ema(shadow: &Tensor, param: &Tensor, mu: f64) -> Result<()> {
    shadow.inplace_op2(param, &Ema(mu))
}

struct SignSgd {
    lr: f64,
    weight_decay: f64,
}

impl InplaceOp3 for SignSgd {
    fn name(&self) -> &'static str {
        "sparse-sign-sgd"
    }

    fn cpu_fwd(
        &self,
        table: &mut CpuStorage,
        lt: &Layout,
        ids: &CpuStorage,
        li: &Layout,
        grads: &CpuStorage,
        lg: &Layout,
    ) -> Result<()> {
        let width = *lt.dims().last().expect("a 2-d table");
        let ids = super::slice::<u32>(ids, li)?;
        let rows = lt.dims()[0];
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= rows) {
            bail!("sign-SGD: puzzle identifier {bad} is beyond the table's {rows} rows");
        }
        let table = f32_mut(table, lt)?;
        sparse_sign_sgd_step(
            table,
            width,
            ids,
            f32_ref(grads, lg)?,
            self.lr,
            self.weight_decay,
        );
        Ok(())
    }
}

/// Sign-SGD on the rows `ids` of `table` from their local gradients `[ids, width]`.
pub fn sparse_sign_sgd(
    table: &Tensor,
    ids: &Tensor,
    grads: &Tensor,
    lr: f64,
    weight_decay: f64,
) -> Result<()> {
    table.inplace_op3(
        &ids.contiguous()?,
        &grads.contiguous()?,
        &SignSgd { lr, weight_decay },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{adam_atan2_step, AdamAtan2Config, Moments};
    use crate::params::Parameters;
    use candle_core::{Device, Var};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    fn adam_config() -> AdamAtan2Config {
        AdamAtan2Config {
            lr: 1e-2,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
        }
    }

    #[test]
    fn in_place_updates_equal_the_reference_arithmetic() {
        let cfg = adam_config();
        let dev = Device::Cpu;
        let var =
            Var::from_tensor(&Tensor::from_vec(values(12, 1), (3, 4), &dev).unwrap()).unwrap();
        let params = Parameters::new(vec![("w".into(), var.clone())], true).unwrap();
        let (mut p, mut state, mut shadow) = (values(12, 1), Moments::zeros(12), values(12, 1));
        for t in 1..=3u64 {
            let g = values(12, 7 + t as u32);
            let s = AdamScalars::new(&cfg, cfg.lr, t);
            params
                .step(
                    &[Tensor::from_vec(g.clone(), (3, 4), &dev).unwrap()],
                    s,
                    Some(0.9),
                    true,
                )
                .unwrap();
            adam_atan2_step(&cfg, cfg.lr, t, &mut p, &g, &mut state);
            ema_update(&mut shadow, &p, 0.9);
        }
        assert_eq!(
            var.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            p
        );
        let ema = params.ema_weights().unwrap().unwrap();
        assert_eq!(
            ema[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            shadow
        );

        // Sign-SGD on rows 2 and 0 (row 2 twice), the rest untouched.
        let table = Tensor::from_vec(values(20, 3), (5, 4), &dev).unwrap();
        let ids = Tensor::new(&[2u32, 0, 2], &dev).unwrap();
        let grads = values(12, 9);
        sparse_sign_sgd(
            &table,
            &ids,
            &Tensor::from_vec(grads.clone(), (3, 4), &dev).unwrap(),
            0.1,
            0.5,
        )
        .unwrap();
        let mut expected = values(20, 3);
        sparse_sign_sgd_step(&mut expected, 4, &[2, 0, 2], &grads, 0.1, 0.5);
        assert_eq!(
            table.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            expected
        );
        let beyond = Tensor::new(&[5u32], &dev).unwrap();
        assert!(sparse_sign_sgd(
            &table,
            &beyond,
            &Tensor::zeros((1, 4), candle_core::DType::F32, &dev).unwrap(),
            0.1,
            0.5
        )
        .is_err());
    }

    fn close(a: &[f32], b: &[f32], tolerance: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * (1.0 + y.abs()),
                "element {i}: {x} against {y}"
            );
        }
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn device_tensor_updates_equal_the_in_place_kernels() {
        let cfg = adam_config();
        let dev = Device::Cpu;
        let make = || {
            let var =
                Var::from_tensor(&Tensor::from_vec(values(60, 1), (6, 10), &dev).unwrap()).unwrap();
            let params = Parameters::new(vec![("w".into(), var.clone())], true).unwrap();
            (var, params)
        };
        let (kernel_var, kernel) = make();
        let (device_var, device) = make();
        for t in 1..=4u64 {
            // Zeros in the gradient: atan2(0, 0) on the first step.
            let mut g = values(60, 7 + t as u32);
            g[3] = 0.0;
            let g = Tensor::from_vec(g, (6, 10), &dev).unwrap();
            let s = AdamScalars::new(&cfg, cfg.lr, t);
            kernel
                .step(std::slice::from_ref(&g), s, Some(0.9), true)
                .unwrap();
            device.step(&[g], s, Some(0.9), false).unwrap();
        }
        close(
            &flat(device_var.as_tensor()),
            &flat(kernel_var.as_tensor()),
            1e-6,
        );
        let shadows = |p: &Parameters| flat(&p.ema_weights().unwrap().unwrap()[0].1);
        close(&shadows(&device), &shadows(&kernel), 1e-6);
        for (d, k) in device
            .state_tensors()
            .unwrap()
            .iter()
            .zip(kernel.state_tensors().unwrap())
        {
            close(&flat(&d.1), &flat(&k.1), 1e-6);
        }

        let table = || Tensor::from_vec(values(20, 3), (5, 4), &dev).unwrap();
        let (kernel_table, device_table) = (table(), table());
        let ids = Tensor::new(&[2u32, 0, 2, 4], &dev).unwrap();
        let grads = Tensor::from_vec(values(16, 9), (4, 4), &dev).unwrap();
        sparse_sign_sgd(&kernel_table, &ids, &grads, 0.1, 0.5).unwrap();
        crate::optim::device_sparse_sign_sgd(&device_table, &ids, &grads, 0.1, 0.5).unwrap();
        assert_eq!(flat(&device_table), flat(&kernel_table));
    }

    #[test]
    fn atan2_in_tensor_ops_matches_the_library_to_f32_rounding() {
        let dev = Device::Cpu;
        let mut ys = Vec::new();
        let mut xs = Vec::new();
        for i in -40i32..=40 {
            for j in 0..=40 {
                ys.push(i as f32 * 0.37 * (1.3f32).powi(i.abs() % 9));
                xs.push(j as f32 * 0.21 * (0.7f32).powi(j % 11));
            }
        }
        let got = crate::optim::atan2_nonnegative_x(
            &Tensor::new(ys.as_slice(), &dev).unwrap(),
            &Tensor::new(xs.as_slice(), &dev).unwrap(),
        )
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        for ((y, x), g) in ys.iter().zip(&xs).zip(&got) {
            assert!((g - y.atan2(*x)).abs() <= 4e-7, "atan2({y}, {x}) = {g}");
        }
    }
}
