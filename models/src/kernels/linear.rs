//! `y = x w^T` for `x` `[.., in]` and `w` `[out, in]` (PyTorch's layout) as one GEMM over
//! every leading position, whose output is never zero-filled first, and a backward that
//! produces `dw` `[out, in]` directly (`g^T x`) instead of a transposed gradient that is then
//! copied into place. The leading axes stay on the op rather than in reshapes around it: in
//! candle's backward every graph node costs a zero-filled gradient and an add.

use super::{for_float, fresh, slice, Real};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

pub struct Linear;

/// `c [m, n] = a @ b` with the given (row, column) strides of `a` and `b`, over all
/// threads, into a fresh buffer that the product fills entirely.
fn gemm_new<T: Real>(
    dims: (usize, usize, usize),
    a: &[T],
    a_strides: (usize, usize),
    b: &[T],
    b_strides: (usize, usize),
) -> Vec<T> {
    let (m, n, _) = dims;
    let threads = rayon::current_num_threads();
    // SAFETY: without `accumulate` the product writes every one of the m * n elements of
    // `c` before anything reads them (the k = 0 case included); `c` aliases neither operand.
    unsafe {
        fresh(m * n, |c| {
            let c = c.as_mut_ptr() as *mut T;
            super::gemm::gemm(
                dims,
                a,
                a_strides,
                b,
                b_strides,
                c,
                n,
                T::one(),
                false,
                threads,
            )
        })
    }
}

/// `x w^T` for `x` `[rows, fan_in]` and `w` `[fan_out, fan_in]`: `[rows, fan_out]`.
pub(super) fn product<T: Real>(
    x: &[T],
    w: &[T],
    rows: usize,
    fan_in: usize,
    fan_out: usize,
) -> Vec<T> {
    // w^T as the right operand: element (k, j) of w^T is w[j, k].
    gemm_new((rows, fan_out, fan_in), x, (fan_in, 1), w, (1, fan_in))
}

/// (the positions, the last axis) of a `[.., width]` operand.
pub(super) fn rows_and_width(l: &Layout, what: &str) -> Result<(usize, usize)> {
    match l.dims().split_last() {
        Some((&width, lead)) => Ok((lead.iter().product(), width)),
        None => candle_core::bail!("linear: {what} must have at least one axis"),
    }
}

pub(super) fn weight_dims(l: &Layout) -> Result<(usize, usize)> {
    match l.dims() {
        &[out, fan_in] => Ok((out, fan_in)),
        d => candle_core::bail!("linear: w must be 2-d, got {d:?}"),
    }
}

/// `l`'s shape with its last axis `width`.
pub(super) fn with_width(l: &Layout, width: usize) -> Shape {
    let mut dims = l.dims().to_vec();
    *dims.last_mut().expect("checked by rows_and_width") = width;
    Shape::from(dims)
}

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((rows, fan_in), (fan_out, w_in)) = (rows_and_width(l1, "x")?, weight_dims(l2)?);
        if fan_in != w_in {
            candle_core::bail!("linear: x has {fan_in} features, w takes {w_in}");
        }
        for_float!(s1, T => {
            let (x, w) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?);
            let y = product(x, w, rows, fan_in, fan_out);
            Ok((candle_core::WithDType::to_cpu_storage_owned(y), with_width(l1, fan_out)))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = grad.apply_op2_no_bwd(w, &InputGrad)?;
        let dw = grad.apply_op2_no_bwd(x, &WeightGrad)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `dx [.., in] = g [.., out] @ w [out, in]`.
pub(super) struct InputGrad;

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "linear-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((rows, fan_out), (_, fan_in)) = (rows_and_width(l1, "g")?, weight_dims(l2)?);
        for_float!(s1, T => {
            let (g, w) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?);
            let dx = gemm_new((rows, fan_in, fan_out), g, (fan_out, 1), w, (fan_in, 1));
            Ok((candle_core::WithDType::to_cpu_storage_owned(dx), with_width(l1, fan_in)))
        })
    }
}

/// `dw [out, in] = g^T [out, N] @ x [N, in]`, the positions `N` flattened.
pub(super) struct WeightGrad;

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "linear-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((rows, fan_out), (_, fan_in)) = (rows_and_width(l1, "g")?, rows_and_width(l2, "x")?);
        for_float!(s1, T => {
            let (g, x) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?);
            let dw = gemm_new((fan_out, fan_in, rows), g, (1, fan_out), x, (fan_in, 1));
            Ok((candle_core::WithDType::to_cpu_storage_owned(dw), Shape::from((fan_out, fan_in))))
        })
    }
}

/// `x @ w^T` for `x` `[.., in]`, `w` `[out, in]` (CPU tensors): `[.., out]`.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}
