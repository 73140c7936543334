//! The validity-preserving transforms of `build_sudoku_dataset.py: shuffle_sudoku`: transpose
//! (probability 1/2) first, then cell (i, j) takes the old cell (row_perm[i], col_perm[j]),
//! then the digits are relabelled. Every transform has an exact inverse.

use super::{Board, Shape};
use rand::seq::SliceRandom;
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SudokuTransform {
    pub shape: Shape,
    /// Only for square boxes (`Shape::transposable`).
    pub transpose: bool,
    /// The first `side` entries are used.
    pub row_perm: [u8; 9],
    pub col_perm: [u8; 9],
    /// `digit_map[d]` is the new digit for `d`; `digit_map[0] == 0` keeps blanks blank.
    pub digit_map: [u8; 10],
}

impl SudokuTransform {
    pub fn identity(shape: Shape) -> Self {
        let mut digit_map = [0u8; 10];
        for (d, m) in digit_map.iter_mut().enumerate() {
            *m = d as u8;
        }
        let id = [0, 1, 2, 3, 4, 5, 6, 7, 8];
        SudokuTransform {
            shape,
            transpose: false,
            row_perm: id,
            col_perm: id,
            digit_map,
        }
    }

    /// Draws a transform as the official code does: digit permutation, transpose flag (square
    /// boxes only), then band order with row order inside each band, then the same for stacks
    /// and columns. For 9x9 the draws are the same, in the same order, as before small shapes.
    pub fn random(rng: &mut impl Rng, shape: Shape) -> Self {
        let side = shape.side();
        let mut digits: Vec<u8> = (1..=side as u8).collect();
        digits.shuffle(rng);
        let mut digit_map = [0u8; 10];
        digit_map[1..=side].copy_from_slice(&digits);
        let transpose = shape.transposable() && rng.random::<f64>() < 0.5;
        // Rows come in `box_cols` bands of `box_rows`; columns in `box_rows` stacks of `box_cols`.
        let row_perm = banded_permutation(rng, shape.box_cols, shape.box_rows);
        let col_perm = banded_permutation(rng, shape.box_rows, shape.box_cols);
        SudokuTransform {
            shape,
            transpose,
            row_perm,
            col_perm,
            digit_map,
        }
    }

    pub fn apply(&self, b: &Board) -> Board {
        let side = self.shape.side();
        let src = if self.transpose {
            transpose(b, self.shape)
        } else {
            *b
        };
        let mut out = [0u8; 81];
        for i in 0..side {
            for j in 0..side {
                out[i * side + j] = self.digit_map
                    [src[self.row_perm[i] as usize * side + self.col_perm[j] as usize] as usize];
            }
        }
        out
    }

    /// The transform that undoes this one, expressed in the same transpose-first form.
    pub fn inverse(&self) -> Self {
        let side = self.shape.side();
        let row_inv = invert(&self.row_perm, side);
        let col_inv = invert(&self.col_perm, side);
        let mut digit_map = [0u8; 10];
        for d in 0..=side {
            digit_map[self.digit_map[d] as usize] = d as u8;
        }
        let (row_perm, col_perm) = if self.transpose {
            (col_inv, row_inv)
        } else {
            (row_inv, col_inv)
        };
        SudokuTransform {
            shape: self.shape,
            transpose: self.transpose,
            row_perm,
            col_perm,
            digit_map,
        }
    }
}

/// `groups` groups of `size` lines, the groups shuffled and the lines inside each.
fn banded_permutation(rng: &mut impl Rng, groups: usize, size: usize) -> [u8; 9] {
    let mut bands: Vec<u8> = (0..groups as u8).collect();
    bands.shuffle(rng);
    let mut out = [0u8; 9];
    for (slot, &band) in bands.iter().enumerate() {
        let mut rows: Vec<u8> = (0..size as u8).collect();
        rows.shuffle(rng);
        for (k, r) in rows.iter().enumerate() {
            out[slot * size + k] = band * size as u8 + r;
        }
    }
    // Unused entries keep the identity, so an unused tail compares equal across transforms.
    for (i, o) in out.iter_mut().enumerate().skip(groups * size) {
        *o = i as u8;
    }
    out
}

fn invert(p: &[u8; 9], side: usize) -> [u8; 9] {
    let mut inv = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    for (i, &v) in p[..side].iter().enumerate() {
        inv[v as usize] = i as u8;
    }
    inv
}

pub fn transpose(b: &Board, shape: Shape) -> Board {
    let side = shape.side();
    let mut out = [0u8; 81];
    for i in 0..side {
        for j in 0..side {
            out[i * side + j] = b[j * side + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sudoku::{is_valid_complete, solver::random_solution, Shape};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    proptest! {
        #[test]
        fn inverse_undoes_apply_and_validity_is_kept(seed in any::<u64>(), side in prop::sample::select(vec![4usize, 6, 9])) {
            let shape = Shape::from_side(side).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let solution = random_solution(&mut rng, shape);
            let mut puzzle = solution;
            for cell in puzzle.iter_mut() { if rng.random::<f64>() < 0.6 { *cell = 0; } }
            let t = SudokuTransform::random(&mut rng, shape);
            prop_assert_eq!(t.inverse().apply(&t.apply(&puzzle)), puzzle);
            prop_assert_eq!(t.apply(&t.inverse().apply(&puzzle)), puzzle);
            prop_assert!(is_valid_complete(&t.apply(&solution), shape));
            prop_assert_eq!(t.apply(&puzzle).iter().filter(|&&v| v == 0).count(), puzzle.iter().filter(|&&v| v == 0).count());
        }
    }
}
