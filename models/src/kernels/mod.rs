//! Fused CPU kernels with their backward passes, as candle custom ops: each replaces a chain
//! of small candle ops (and their temporaries) with one pass over memory, parallel over rows
//! or batch entries. `layers` and `attention` use them on the CPU and keep the plain candle
//! compositions as the reference (other devices, and the tests and benchmarks that compare
//! the two).
//!
//! Every kernel runs in f32 and f64 (the finite-difference checks run in f64).

pub mod attention;
mod gemm;
pub mod linear;
pub mod optim;
pub mod rms_norm;
pub mod sublayer;
pub mod swiglu;

use candle_core::{bail, CpuStorage, Layout, Result, WithDType};
use std::mem::MaybeUninit;

/// The float types the kernels run in.
pub trait Real:
    WithDType
    + num_traits::Float
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::MulAssign
    + std::ops::SubAssign
    + Send
    + Sync
{
    /// `e^x`, inlinable so loops of it vectorise.
    fn exp_fast(self) -> Self;
}

impl Real for f32 {
    /// Cephes' `expf` (polynomial on `[-ln 2 / 2, ln 2 / 2]` times `2^n`, within 2 ulp)
    /// without branches or calls; libm's `expf` is a call per element, which no loop
    /// vectorises.
    #[inline(always)]
    fn exp_fast(self) -> f32 {
        let x = self.clamp(-87.336_54, 88.376_26);
        let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
        let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
        let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
            * r
            + 1.666_666_5e-1)
            * r
            + 0.5;
        let e = p * r * r + r + 1.0;
        // 2^n from the exponent bits: n + 127 lies in [1, 255), so adding 2^23 leaves it as
        // the low mantissa bits (a float add and integer ops, where `as i32` would be a
        // saturating, NaN-checking conversion that keeps loops scalar).
        let biased = ((n + 127.0) + 8_388_608.0).to_bits() - 0x4B00_0000;
        e * f32::from_bits(biased << 23)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp_fast(self) -> f64 {
        self.exp()
    }
}

/// Lanes of the reductions (`dot`, and the attention softmax's sums down its columns): one
/// AVX2 vector of f32. Interleaved partial sums, because without reassociation (which Rust
/// never does for floats) a single running sum is a serial chain no loop can vectorise. The
/// order of the additions fixes a result's last bits, so every reduction keeps it.
pub(crate) const ROW_LANES: usize = 8;

/// `sum_i a[i] b[i]` in `ROW_LANES` interleaved partial sums.
#[inline(always)]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); ROW_LANES];
    let (ca, cb) = (a.chunks_exact(ROW_LANES), b.chunks_exact(ROW_LANES));
    let tail = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for ((a, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *a += x * y;
        }
    }
    acc.into_iter().fold(tail, |s, a| s + a)
}

/// A kernel's fresh output of `n` elements, handed to `fill` uninitialised: zero-filling it
/// first (`vec![0; n]`) is one more pass over memory, which cost as much as a fused kernel's
/// own pass at the cpu preset (`results/bench-profile.md`).
///
/// # Safety
/// `fill` must write every one of the `n` elements (it must not read them first).
pub(crate) unsafe fn fresh<T: Real>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` initialised the n elements (the caller's contract).
    unsafe { v.set_len(n) };
    v
}

/// The contiguous elements of a CPU tensor.
pub(crate) fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => bail!("fused kernels take contiguous tensors"),
    }
}

/// Runs `$body` with `T` bound to the storage's float type.
macro_rules! for_float {
    ($storage:expr, $t:ident => $body:expr) => {
        match $storage {
            candle_core::CpuStorage::F32(_) => {
                type $t = f32;
                $body
            }
            candle_core::CpuStorage::F64(_) => {
                type $t = f64;
                $body
            }
            _ => candle_core::bail!("fused kernels run in f32 or f64"),
        }
    };
}
pub(crate) use for_float;

/// `c = alpha * a @ b (+ c when accumulate)` for row-major `a` [m, k] and `b` [k, n] with
/// the given row strides, or their transposes (`a_t`: `a` is stored [k, m]; `b_t`: `b` is
/// stored [n, k]), single-threaded (callers parallelise over heads and batch entries).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Real>(
    (m, n, k): (usize, usize, usize),
    a: &[T],
    a_t: bool,
    a_rs: usize,
    b: &[T],
    b_t: bool,
    b_rs: usize,
    c: &mut [T],
    c_rs: usize,
    alpha: T,
    accumulate: bool,
) {
    let (a_row, a_col) = if a_t { (1, a_rs) } else { (a_rs, 1) };
    let (b_row, b_col) = if b_t { (1, b_rs) } else { (b_rs, 1) };
    assert!(
        m == 0 || n == 0 || (m - 1) * c_rs + n <= c.len(),
        "matmul: c too short"
    );
    // SAFETY: `c` holds the m rows of n (checked above), is initialised, and is borrowed
    // mutably, so nothing aliases it.
    unsafe {
        gemm::gemm(
            (m, n, k),
            a,
            (a_row, a_col),
            b,
            (b_row, b_col),
            c.as_mut_ptr(),
            c_rs,
            alpha,
            accumulate,
            1,
        )
    }
}

/// The instruction sets the hot loops are compiled for, picked at run time (the baseline
/// build targets x86-64-v2).
macro_rules! simd_targets {
    ($($item:item)*) => {
        $(
            #[multiversion::multiversion(targets(
                "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma",
                "x86_64+avx2+fma",
                "aarch64+neon"
            ))]
            $item
        )*
    };
}
pub(crate) use simd_targets;

/// The instruction set `simd_targets` dispatches to on this CPU (gemm's own dispatch makes the
/// same choice): a result's last bits depend on it, so every record names it.
pub fn simd_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl")
            && has!("avx2")
            && has!("fma")
        {
            return "AVX-512";
        }
        if has!("avx2") && has!("fma") {
            return "AVX2+FMA";
        }
        "x86-64-v2 (no AVX2)"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// Rows per parallel task, so that a task holds at least a few thousand elements.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (4096 / row_len.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::Real;

    #[test]
    fn fast_exp_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, libm) = (x.exp_fast(), x.exp());
            worst = worst.max(((ours - libm) / libm).abs());
            x += 0.0137;
        }
        assert!(worst < 4.0 * f32::EPSILON, "relative error {worst}");
        assert_eq!(0f32.exp_fast(), 1.0);
        assert!((-1e4f32).exp_fast() < 1e-37 && 1e4f32.exp_fast().is_finite());
    }
}
