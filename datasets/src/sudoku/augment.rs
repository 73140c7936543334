//! The validity-preserving transforms of `build_sudoku_dataset.py: shuffle_sudoku`: transpose
//! (probability 1/2) first, then cell (i, j) takes the old cell (row_perm[i], col_perm[j]),
//! then the digits are relabelled. Every transform has an exact inverse.

use super::Board;
use rand::seq::SliceRandom;
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SudokuTransform {
    pub transpose: bool,
    pub row_perm: [u8; 9],
    pub col_perm: [u8; 9],
    /// `digit_map[d]` is the new digit for `d`; `digit_map[0] == 0` keeps blanks blank.
    pub digit_map: [u8; 10],
}

impl SudokuTransform {
    pub fn identity() -> Self {
        let mut digit_map = [0u8; 10];
        for (d, m) in digit_map.iter_mut().enumerate() {
            *m = d as u8;
        }
        let id = [0, 1, 2, 3, 4, 5, 6, 7, 8];
        SudokuTransform {
            transpose: false,
            row_perm: id,
            col_perm: id,
            digit_map,
        }
    }

    /// Draws a transform as the official code does: digit permutation, transpose flag, then
    /// band order with row order inside each band, then the same for stacks and columns.
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut digits = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        digits.shuffle(rng);
        let mut digit_map = [0u8; 10];
        digit_map[1..].copy_from_slice(&digits);
        let transpose = rng.random::<f64>() < 0.5;
        let row_perm = banded_permutation(rng);
        let col_perm = banded_permutation(rng);
        SudokuTransform {
            transpose,
            row_perm,
            col_perm,
            digit_map,
        }
    }

    pub fn apply(&self, b: &Board) -> Board {
        let src = if self.transpose { transpose(b) } else { *b };
        let mut out = [0u8; 81];
        for i in 0..9 {
            for j in 0..9 {
                out[i * 9 + j] = self.digit_map
                    [src[self.row_perm[i] as usize * 9 + self.col_perm[j] as usize] as usize];
            }
        }
        out
    }

    /// The transform that undoes this one, expressed in the same transpose-first form.
    pub fn inverse(&self) -> Self {
        let row_inv = invert9(&self.row_perm);
        let col_inv = invert9(&self.col_perm);
        let mut digit_map = [0u8; 10];
        for d in 0..10 {
            digit_map[self.digit_map[d] as usize] = d as u8;
        }
        if self.transpose {
            SudokuTransform {
                transpose: true,
                row_perm: col_inv,
                col_perm: row_inv,
                digit_map,
            }
        } else {
            SudokuTransform {
                transpose: false,
                row_perm: row_inv,
                col_perm: col_inv,
                digit_map,
            }
        }
    }
}

fn banded_permutation(rng: &mut impl Rng) -> [u8; 9] {
    let mut bands = [0u8, 1, 2];
    bands.shuffle(rng);
    let mut out = [0u8; 9];
    for (slot, band) in bands.iter().enumerate() {
        let mut rows = [0u8, 1, 2];
        rows.shuffle(rng);
        for (k, r) in rows.iter().enumerate() {
            out[slot * 3 + k] = band * 3 + r;
        }
    }
    out
}

fn invert9(p: &[u8; 9]) -> [u8; 9] {
    let mut inv = [0u8; 9];
    for (i, &v) in p.iter().enumerate() {
        inv[v as usize] = i as u8;
    }
    inv
}

pub fn transpose(b: &Board) -> Board {
    let mut out = [0u8; 81];
    for i in 0..9 {
        for j in 0..9 {
            out[i * 9 + j] = b[j * 9 + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sudoku::{is_valid_complete, solver::random_solution};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    proptest! {
        #[test]
        fn inverse_undoes_apply_and_validity_is_kept(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let solution = random_solution(&mut rng);
            let mut puzzle = solution;
            for cell in puzzle.iter_mut() { if rng.random::<f64>() < 0.6 { *cell = 0; } }
            let t = SudokuTransform::random(&mut rng);
            prop_assert_eq!(t.inverse().apply(&t.apply(&puzzle)), puzzle);
            prop_assert_eq!(t.apply(&t.inverse().apply(&puzzle)), puzzle);
            prop_assert!(is_valid_complete(&t.apply(&solution)));
            prop_assert_eq!(t.apply(&puzzle).iter().filter(|&&v| v == 0).count(), puzzle.iter().filter(|&&v| v == 0).count());
        }
    }
}
