//! The one matrix product of the fused kernels: `c = alpha * a @ b (+ c)`.
//!
//! On an AVX2+FMA CPU without AVX-512, f32 runs our own kernel (`avx2` below); everything
//! else (f64, AVX-512, ARM) runs the gemm crate. On the 2-core AMD EPYC, one thread, the
//! `gate_up_proj` forward took 1.37 / 19.3 / 288 ms with ours against 2.12 / 29.8 / 382 ms
//! with candle's matmul on the gemm crate at the cpu, width-128 and width-512 shapes
//! (`RAYON_NUM_THREADS=1 cargo bench -p models --bench kernels -- 'linear.*forward/'`):
//! the gemm crate's f32 microkernel spills registers and splits its loads there, and packs
//! the left operand even where `k` is 64 and its rows are in cache anyway. Ours is the
//! textbook blocked product (Goto and van de Geijn, "Anatomy of high-performance matrix
//! multiplication", 2008): the right operand packed in panels of 16 columns, a 6 x 16
//! block of `c` in twelve registers, the left operand broadcast straight from its rows.
//!
//! Products as small as attention's per head at the cpu preset run a third, simpler kernel
//! (`registers`), on every CPU with FMA.
//!
//! Each element of `c` is the same sequence of FMAs wherever its row falls in the split
//! across threads, so the bits never depend on the thread count; at the register kernel's
//! sizes (one pass over `k`) it is also the other kernels' sequence, so that path changes no
//! bits.

use super::Real;

/// `c [m, n] (row stride c_rs) = alpha * a @ b`, plus the old `c` when `accumulate`, for
/// `a` `[m, k]` and `b` `[k, n]` given by their (row, column) strides.
///
/// # Safety
/// `c` must address `m` rows of `n` writable elements, `c_rs` apart, that alias neither
/// `a` nor `b`; when `accumulate` they must be initialised. (`a` and `b` are checked.)
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<T: Real>(
    (m, n, k): (usize, usize, usize),
    a: &[T],
    (a_rs, a_cs): (usize, usize),
    b: &[T],
    (b_rs, b_cs): (usize, usize),
    c: *mut T,
    c_rs: usize,
    alpha: T,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::slice::from_raw_parts_mut(c.add(i * c_rs), n).fill(T::zero());
            }
        }
        return;
    }
    assert!(
        (m - 1) * a_rs + (k - 1) * a_cs < a.len(),
        "gemm: a too short"
    );
    assert!(
        (k - 1) * b_rs + (n - 1) * b_cs < b.len(),
        "gemm: b too short"
    );
    if threads == 1 && !accumulate && registers::fits((m, n, k)) {
        return registers::product((m, n, k), a, (a_rs, a_cs), b, (b_rs, b_cs), c, c_rs, alpha);
    }
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && avx2::applies() {
        let (a, b) = (
            std::slice::from_raw_parts(a.as_ptr() as *const f32, a.len()),
            std::slice::from_raw_parts(b.as_ptr() as *const f32, b.len()),
        );
        let alpha = alpha.to_f32().expect("an f32");
        let product = avx2::Product {
            a,
            a_strides: (a_rs, a_cs),
            b,
            b_strides: (b_rs, b_cs),
            k,
            n,
            alpha,
            accumulate,
        };
        return product.run(m, c as *mut f32, c_rs, threads);
    }
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        c_rs as isize,
        accumulate,
        a.as_ptr(),
        a_cs as isize,
        a_rs as isize,
        b.as_ptr(),
        b_cs as isize,
        b_rs as isize,
        T::one(),
        alpha,
        false,
        false,
        false,
        if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        },
    )
}

/// Products as small as attention's per head (at the cpu preset `[29, 16] x [16, 29]` and
/// `[29, 29] x [29, 16]`), where the gemm crate's per-call set-up (packing, the dispatch over
/// tiles) is a large part of the work: `c` in blocks of 6 x 16 held in registers, `a`
/// broadcast straight from its rows, `b` read in place where its rows are whole blocks of 16
/// and packed otherwise.
///
/// Every element of `c` is the sum the other kernels compute, in their order: FMAs over
/// `k` in turn from zero, then times `alpha`. So the bits are theirs (the tests below
/// compare them), and the path is taken only where FMA is an instruction, and only for
/// shapes the gemm crate would not send to its own small-size paths (a product of at
/// most 16 x 16, `k` <= 2, a single row or column), whose sums run in another order.
mod registers {
    use super::super::{simd_targets, Real};

    /// Columns of a block of `c`: one AVX-512 vector of f32.
    const COLS: usize = 16;
    /// Rows of a block of `c`: with `COLS`, twelve of AVX2's sixteen registers.
    const ROWS: usize = 6;

    pub(super) fn fits((m, n, k): (usize, usize, usize)) -> bool {
        // Measured faster than the gemm crate at the cpu preset's heads (29 positions, head
        // dimension 16) and slower at the Sudoku shapes' (97 positions, head dimension 64).
        let small = m <= 64 && n <= 64 && k <= 64;
        let general = m >= 2 && n >= 2 && k > 2 && m * n > 16 * 16;
        small && general && fma_is_an_instruction()
    }

    pub(super) fn fma_is_an_instruction() -> bool {
        matches!(super::super::simd_path(), "AVX-512" | "AVX2+FMA" | "NEON")
    }

    /// `c [m, n] (row stride c_rs) = alpha * a @ b`, single-threaded.
    ///
    /// # Safety
    /// As `gemm`'s, with the lengths of `a` and `b` checked by it.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn product<T: Real>(
        (m, n, k): (usize, usize, usize),
        a: &[T],
        a_strides: (usize, usize),
        b: &[T],
        (b_rs, b_cs): (usize, usize),
        c: *mut T,
        c_rs: usize,
        alpha: T,
    ) {
        if b_cs == 1 && n.is_multiple_of(COLS) {
            return blocks((m, n, k), a, a_strides, b.as_ptr(), b_rs, c, c_rs, alpha);
        }
        let width = n.div_ceil(COLS) * COLS;
        let mut packed = vec![T::zero(); k * width];
        // Down `b`'s columns, which are its rows in memory where it is a transpose.
        for j in 0..n {
            for p in 0..k {
                packed[p * width + j] = b[p * b_rs + j * b_cs];
            }
        }
        blocks(
            (m, n, k),
            a,
            a_strides,
            packed.as_ptr(),
            width,
            c,
            c_rs,
            alpha,
        )
    }

    simd_targets! {
        /// `product` with `b`'s rows `b_rs` apart, each readable to a whole block of
        /// columns past `n`.
        #[allow(clippy::too_many_arguments)]
        unsafe fn blocks<T: Real>(
            (m, n, k): (usize, usize, usize),
            a: &[T],
            (a_rs, a_cs): (usize, usize),
            b: *const T,
            b_rs: usize,
            c: *mut T,
            c_rs: usize,
            alpha: T,
        ) {
            for j0 in (0..n).step_by(COLS) {
                let cols = COLS.min(n - j0);
                for i0 in (0..m).step_by(ROWS) {
                    let rows = ROWS.min(m - i0);
                    // Rows past `m` repeat the last one; their sums are not stored.
                    let a_rows: [*const T; ROWS] =
                        std::array::from_fn(|r| a.as_ptr().add((i0 + r.min(rows - 1)) * a_rs));
                    let mut acc = [[T::zero(); COLS]; ROWS];
                    for p in 0..k {
                        let bp = &*(b.add(p * b_rs + j0) as *const [T; COLS]);
                        for (acc, row) in acc.iter_mut().zip(&a_rows) {
                            let x = *row.add(p * a_cs);
                            for (s, &y) in acc.iter_mut().zip(bp) {
                                *s = x.mul_add(y, *s);
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate().take(rows) {
                        let dst = c.add((i0 + r) * c_rs + j0);
                        if cols == COLS {
                            let dst = &mut *(dst as *mut [T; COLS]);
                            for (d, &s) in dst.iter_mut().zip(acc) {
                                *d = s * alpha;
                            }
                        } else {
                            for (l, &s) in acc.iter().enumerate().take(cols) {
                                *dst.add(l) = s * alpha;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use rayon::prelude::*;
    use std::arch::x86_64::*;

    /// Rows and columns of the block of `c` the microkernel holds in registers.
    const MR: usize = 6;
    const NR: usize = 16;
    /// The depth of one pass: a 16-column panel of `b` (16 KiB) stays in L1.
    const KC: usize = 256;
    /// Columns of `b` packed at once (1 MiB at KC).
    const NC: usize = 1024;
    /// Rows of `c` that pass one packed block of `b` together (72 KiB of `a` at KC, in L2).
    const MC: usize = 72;

    /// Where the kernel applies: AVX2 and FMA, and not AVX-512 (where the gemm crate has
    /// wider kernels and ours was never measured).
    pub fn applies() -> bool {
        static APPLIES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *APPLIES.get_or_init(|| super::super::simd_path() == "AVX2+FMA")
    }

    /// One 32-byte-aligned vector of eight lanes, so packed panels load aligned.
    #[repr(C, align(32))]
    #[derive(Clone, Copy)]
    struct Lanes([f32; 8]);

    thread_local! {
        /// This thread's packed `b` and last panel of `a`, reused by the next product.
        static SCRATCH: std::cell::Cell<(Vec<Lanes>, Vec<Lanes>)> = const {
            std::cell::Cell::new((Vec::new(), Vec::new()))
        };
    }

    fn grow(v: &mut Vec<Lanes>, len: usize) {
        if v.len() < len {
            v.resize(len, Lanes([0.0; 8]));
        }
    }

    pub struct Product<'a> {
        pub a: &'a [f32],
        pub a_strides: (usize, usize),
        pub b: &'a [f32],
        pub b_strides: (usize, usize),
        pub k: usize,
        pub n: usize,
        pub alpha: f32,
        pub accumulate: bool,
    }

    /// `c` moved into the worker threads; each writes rows no other touches.
    #[derive(Clone, Copy)]
    struct Out(*mut f32);
    unsafe impl Send for Out {}
    unsafe impl Sync for Out {}

    impl Out {
        /// A method, so closures capture the `Send` wrapper and not its raw field.
        fn ptr(self) -> *mut f32 {
            self.0
        }
    }

    impl Product<'_> {
        /// Rows `0..m` of `c`, split into `threads` bands of rows.
        pub unsafe fn run(&self, m: usize, c: *mut f32, c_rs: usize, threads: usize) {
            let bands = threads.min(m.div_ceil(MR)).max(1);
            if bands == 1 {
                return self.rows(0..m, c, c_rs);
            }
            let per_band = m.div_ceil(MR).div_ceil(bands) * MR;
            let out = Out(c);
            (0..bands).into_par_iter().for_each(|band| {
                let start = (band * per_band).min(m);
                self.rows(start..(start + per_band).min(m), out.ptr(), c_rs);
            });
        }

        #[target_feature(enable = "avx2,fma")]
        unsafe fn rows(&self, rows: std::ops::Range<usize>, c: *mut f32, c_rs: usize) {
            let (n, k) = (self.n, self.k);
            let nc_max = NC.min(n.div_ceil(NR) * NR);
            // Scratch kept per thread across calls: most products here are small (a head's
            // [26, 16] x [16, 26]), where two fresh zero-filled buffers a call showed in
            // the profile.
            let (mut b_packed, mut a_tail) = SCRATCH.with(|s| s.take());
            grow(&mut b_packed, KC.min(k) * nc_max / 8);
            grow(&mut a_tail, KC.min(k) * MR / 8 + 1);
            for jc in (0..n).step_by(NC) {
                let nc = NC.min(n - jc);
                for pc in (0..k).step_by(KC) {
                    let kc = KC.min(k - pc);
                    let bp = b_packed.as_mut_ptr() as *mut f32;
                    self.pack_b(pc, jc, kc, nc, bp);

                    for ic in rows.clone().step_by(MC) {
                        let block = ic..(ic + MC).min(rows.end);
                        self.block(block, (pc, kc), (jc, nc), bp, &mut a_tail, (c, c_rs));
                    }
                }
            }
            SCRATCH.with(|s| s.set((b_packed, a_tail)));
        }

        /// Rows `rows` (at most MC) of `c` from one packed block of `b`: each 16-column
        /// panel of `b` stays in L1 while the rows' 6-row panels pass it.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn block(
            &self,
            rows: std::ops::Range<usize>,
            (pc, kc): (usize, usize),
            (jc, nc): (usize, usize),
            bp: *const f32,
            a_tail: &mut [Lanes],
            (c, c_rs): (*mut f32, usize),
        ) {
            let (a_rs, a_cs) = self.a_strides;
            // A last panel of fewer than MR rows is copied, zero rows below it, so the
            // kernel never reads past `a`.
            let full_end = rows.start + (rows.len() / MR) * MR;
            if full_end < rows.end {
                let tail = a_tail.as_mut_ptr() as *mut f32;
                self.pack_a_tail(full_end, rows.end - full_end, pc, kc, tail);
            }
            for jr in (0..nc).step_by(NR) {
                for i in rows.clone().step_by(MR) {
                    let (panel, strides) = if i < full_end {
                        (self.a.as_ptr().add(i * a_rs + pc * a_cs), (a_rs, a_cs))
                    } else {
                        (a_tail.as_ptr() as *const f32, (1, MR))
                    };
                    let tile = Tile {
                        c: c.add(i * c_rs + jc + jr),
                        c_rs,
                        rows: MR.min(rows.end - i),
                        cols: NR.min(nc - jr),
                        alpha: self.alpha,
                        add: self.accumulate || pc > 0,
                    };
                    kernel(kc, panel, strides, bp.add(jr * kc), &tile);
                }
            }
        }

        /// Columns `jc..jc + nc` of rows `pc..pc + kc` of `b`, as panels of NR columns,
        /// each `[kc][NR]`, zero past `nc`.
        #[inline(always)]
        unsafe fn pack_b(&self, pc: usize, jc: usize, kc: usize, nc: usize, out: *mut f32) {
            let (rs, cs) = self.b_strides;
            for jr in (0..nc).step_by(NR) {
                let cols = NR.min(nc - jr);
                let panel = out.add(jr * kc);
                for p in 0..kc {
                    let dst = panel.add(p * NR);
                    let src = self.b.as_ptr().add((pc + p) * rs + (jc + jr) * cs);
                    if cs == 1 && cols == NR {
                        std::ptr::copy_nonoverlapping(src, dst, NR);
                    } else {
                        for j in 0..NR {
                            *dst.add(j) = if j < cols { *src.add(j * cs) } else { 0.0 };
                        }
                    }
                }
            }
        }

        /// Rows `i..i + mr` (mr < MR) of columns `pc..pc + kc` of `a` as `[kc][MR]`.
        #[inline(always)]
        unsafe fn pack_a_tail(&self, i: usize, mr: usize, pc: usize, kc: usize, out: *mut f32) {
            let (rs, cs) = self.a_strides;
            let src = self.a.as_ptr().add(i * rs + pc * cs);
            for p in 0..kc {
                for r in 0..MR {
                    *out.add(p * MR + r) = if r < mr {
                        *src.add(r * rs + p * cs)
                    } else {
                        0.0
                    };
                }
            }
        }
    }

    /// The block of `c` one kernel call writes.
    struct Tile {
        c: *mut f32,
        c_rs: usize,
        rows: usize,
        cols: usize,
        alpha: f32,
        /// Add to what `c` holds (a later pass over `k`, or the caller's accumulate).
        add: bool,
    }

    /// `tile (+)= alpha * a_panel @ b_panel`: `kc` rank-1 updates of a 6 x 16 block.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn kernel(
        kc: usize,
        a: *const f32,
        (a_rs, a_cs): (usize, usize),
        b: *const f32,
        t: &Tile,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for p in 0..kc {
            let b0 = _mm256_load_ps(b.add(p * NR));
            let b1 = _mm256_load_ps(b.add(p * NR + 8));
            let ap = a.add(p * a_cs);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r * a_rs));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
        let alpha = _mm256_set1_ps(t.alpha);
        // Columns past `t.cols` are masked off: a load or store under a zero mask lane
        // touches no memory.
        let lanes = |h: usize| t.cols.saturating_sub(8 * h).min(8) as i32;
        let masks = [column_mask(lanes(0)), column_mask(lanes(1))];
        for (r, row) in acc.iter().enumerate().take(t.rows) {
            let dst = t.c.add(r * t.c_rs);
            for (h, &v) in row.iter().enumerate() {
                let (d, mask) = (dst.add(8 * h), masks[h]);
                let v = _mm256_mul_ps(alpha, v);
                if lanes(h) == 8 {
                    let v = if t.add {
                        _mm256_add_ps(_mm256_loadu_ps(d), v)
                    } else {
                        v
                    };
                    _mm256_storeu_ps(d, v);
                } else if lanes(h) > 0 {
                    let v = if t.add {
                        _mm256_add_ps(_mm256_maskload_ps(d, mask), v)
                    } else {
                        v
                    };
                    _mm256_maskstore_ps(d, mask, v);
                }
            }
        }
    }

    /// The first `lanes` of eight lanes set (the sign bit is what the masked moves read).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn column_mask(lanes: i32) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(lanes),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::gemm;

    /// Row and column strides of `a` ([m, k]) and `b` ([k, n]), each stored as is or transposed.
    fn strides(
        (m, n, k): (usize, usize, usize),
        a_t: bool,
        b_t: bool,
    ) -> ((usize, usize), (usize, usize)) {
        let sa = if a_t { (1, m) } else { (k, 1) };
        let sb = if b_t { (1, k) } else { (n, 1) };
        (sa, sb)
    }

    fn filled(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// Every shape class the kernel treats apart (edges in m and n, several blocks of rows,
    /// passes over k and column blocks, transposed operands, a strided `c`, alpha, accumulate) against
    /// an f64 product; and the same bits on 1, 2 and 3 threads.
    #[test]
    fn the_product_matches_f64_and_ignores_the_thread_count() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 5),
            (13, 33, 300),
            (151, 37, 270),
            (50, 1030, 9),
            (6, 16, 64),
        ] {
            for &(a_t, b_t) in &[(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (filled(m * k, 1), filled(k * n, 2));
                let (sa, sb) = strides((m, n, k), a_t, b_t);
                let c_rs = n + 3;
                let old = filled(m * c_rs, 3);
                let run = |threads: usize, accumulate: bool| {
                    pool.install(|| {
                        let mut c = old.clone();
                        let c_ptr = c.as_mut_ptr();
                        unsafe {
                            gemm(
                                (m, n, k),
                                &a,
                                sa,
                                &b,
                                sb,
                                c_ptr,
                                c_rs,
                                0.5,
                                accumulate,
                                threads,
                            )
                        };
                        c
                    })
                };
                for accumulate in [false, true] {
                    let c = run(1, accumulate);
                    for i in 0..m {
                        for j in 0..c_rs {
                            let got = c[i * c_rs + j] as f64;
                            let want = if j >= n {
                                old[i * c_rs + j] as f64
                            } else {
                                let dot: f64 = (0..k)
                                    .map(|p| {
                                        a[i * sa.0 + p * sa.1] as f64
                                            * b[p * sb.0 + j * sb.1] as f64
                                    })
                                    .sum();
                                0.5 * dot
                                    + if accumulate {
                                        old[i * c_rs + j] as f64
                                    } else {
                                        0.0
                                    }
                            };
                            assert!(
                                (got - want).abs() < 1e-5 * (k as f64).sqrt() + 1e-6,
                                "{m}x{n}x{k} {a_t} {b_t} ({i}, {j}): {got} vs {want}"
                            );
                        }
                    }
                    for threads in [2, 3] {
                        let other = run(threads, accumulate);
                        assert!(c
                            .iter()
                            .zip(&other)
                            .all(|(x, y)| x.to_bits() == y.to_bits()));
                    }
                }
            }
        }
    }

    /// The gemm crate's product, which the register kernel's bits must equal.
    fn crate_product(
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        (a_rs, a_cs): (usize, usize),
        b: &[f32],
        (b_rs, b_cs): (usize, usize),
        alpha: f32,
    ) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                1.0,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        };
        c
    }

    /// The register kernel gives the bits of the kernels it stands in for, at attention's
    /// shapes at the cpu preset and at the edges of its blocks, on every operand layout.
    #[test]
    fn small_products_have_the_bits_of_the_other_kernels() {
        let shapes = [
            (29, 29, 16),
            (29, 16, 29),
            (17, 33, 5),
            (64, 64, 64),
            (7, 40, 3),
        ];
        for (m, n, k) in shapes {
            assert!(
                super::registers::fits((m, n, k)) || !super::registers::fma_is_an_instruction()
            );
            for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (filled(m * k, 4), filled(k * n, 5));
                let (sa, sb) = strides((m, n, k), a_t, b_t);
                let mut ours = vec![0f32; m * n];
                unsafe {
                    gemm(
                        (m, n, k),
                        &a,
                        sa,
                        &b,
                        sb,
                        ours.as_mut_ptr(),
                        n,
                        0.25,
                        false,
                        1,
                    )
                };
                let theirs = crate_product((m, n, k), &a, sa, &b, sb, 0.25);
                let same = ours
                    .iter()
                    .zip(&theirs)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{m}x{n}x{k} a_t {a_t} b_t {b_t}");
                #[cfg(target_arch = "x86_64")]
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    let product = super::avx2::Product {
                        a: &a,
                        a_strides: sa,
                        b: &b,
                        b_strides: sb,
                        k,
                        n,
                        alpha: 0.25,
                        accumulate: false,
                    };
                    let mut c = vec![0f32; m * n];
                    unsafe { product.run(m, c.as_mut_ptr(), n, 1) };
                    let same = c.iter().zip(&ours).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "avx2 kernel, {m}x{n}x{k} a_t {a_t} b_t {b_t}");
                }
            }
        }
    }
}
