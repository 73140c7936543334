//! Equivalence of Sudoku puzzles under the augmentation group (transpose x band, row, stack
//! and column permutations x digit relabelling, 2 * 6^8 * 9! elements for 9x9; no transpose
//! where boxes are not square, as in 6x6), which Sudoku-Extreme's
//! split must respect: no test puzzle may be a transform of a training puzzle.
//!
//! `canonical_form` is exact: the lexicographically smallest board over the geometric
//! transforms, with digits relabelled in order of first appearance (which makes the digit part
//! of the group free). It is found by branch and bound over rows for each of the 2 * 1296
//! column arrangements. `invariant` is a cheap hash constant on each class, used to bucket
//! puzzles so that the exact form is only computed where invariants collide.

use super::{Board, Shape};
use std::hash::{Hash, Hasher};

/// Every permutation of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..n {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

/// Every column order the group allows: the stacks in any order, the columns inside each
/// stack in any order (9x9: 6 x 6^3 = 1296).
fn column_arrangements(shape: Shape) -> Vec<Vec<usize>> {
    let (stacks, width) = (shape.box_rows, shape.box_cols);
    let inner = permutations(width);
    let mut out = Vec::new();
    for order in permutations(stacks) {
        let mut partial: Vec<Vec<usize>> = vec![Vec::new()];
        for &stack in &order {
            partial = partial
                .iter()
                .flat_map(|cols| {
                    inner.iter().map(move |p| {
                        let mut c = cols.clone();
                        c.extend(p.iter().map(|k| stack * width + k));
                        c
                    })
                })
                .collect();
        }
        out.extend(partial);
    }
    out
}

/// A class invariant: clue-count profiles of bands and stacks (swapped freely where the
/// boxes are square, as transposition is then in the group), the multiset of box clue
/// counts and the multiset of digit frequencies.
pub fn invariant(b: &Board, shape: Shape) -> u64 {
    let side = shape.side();
    let profile = |groups: usize, size: usize, cell: &dyn Fn(usize, usize) -> u8| {
        let mut bands: Vec<Vec<u8>> = (0..groups)
            .map(|band| {
                let mut counts: Vec<u8> = (0..size)
                    .map(|k| (0..side).filter(|&j| cell(band * size + k, j) != 0).count() as u8)
                    .collect();
                counts.sort_unstable();
                counts
            })
            .collect();
        bands.sort_unstable();
        bands
    };
    let rows = profile(shape.box_cols, shape.box_rows, &|r, c| b[r * side + c]);
    let cols = profile(shape.box_rows, shape.box_cols, &|r, c| b[c * side + r]);
    let (lo, hi) = if shape.transposable() && cols < rows {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let mut boxes: Vec<u8> = (0..side)
        .map(|bx| (0..side).filter(|&k| b[shape.box_cell(bx, k)] != 0).count() as u8)
        .collect();
    boxes.sort_unstable();
    let mut digits = [0u8; 10];
    for &v in b {
        digits[v as usize] += 1;
    }
    digits[1..].sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (lo, hi, boxes, digits).hash(&mut h);
    h.finish()
}

/// The exact canonical representative of the puzzle's class.
pub fn canonical_form(b: &Board, shape: Shape) -> Board {
    let side = shape.side();
    let mut search = Canonicaliser {
        shape,
        rows: [[0u8; 9]; 9],
        best: [u8::MAX; 81],
        current: [0u8; 81],
    };
    let transposes: &[bool] = if shape.transposable() {
        &[false, true]
    } else {
        &[false]
    };
    let arrangements = column_arrangements(shape);
    for &transposed in transposes {
        let g = if transposed {
            super::augment::transpose(b, shape)
        } else {
            *b
        };
        for col_perm in &arrangements {
            for r in 0..side {
                for (j, &c) in col_perm.iter().enumerate() {
                    search.rows[r][j] = g[r * side + c];
                }
            }
            search.place_row(0, 0, [0; 3], [0u8; 10], 1);
        }
    }
    search.best
}

pub fn equivalent(a: &Board, b: &Board, shape: Shape) -> bool {
    invariant(a, shape) == invariant(b, shape)
        && canonical_form(a, shape) == canonical_form(b, shape)
}

struct Canonicaliser {
    shape: Shape,
    /// Rows of the board after the current column arrangement.
    rows: [[u8; 9]; 9],
    best: Board,
    current: Board,
}

impl Canonicaliser {
    /// Chooses the row at output position `k`. `bands_used` is a bitmask of source bands;
    /// `band_rows` are the source rows chosen so far in the current band slot.
    fn place_row(
        &mut self,
        k: usize,
        bands_used: u8,
        band_rows: [usize; 3],
        relabel: [u8; 10],
        next_label: u8,
    ) {
        let (side, height) = (self.shape.side(), self.shape.box_rows);
        if k == side {
            if self.current < self.best {
                self.best = self.current;
            }
            return;
        }
        let slot_start = k.is_multiple_of(height);
        for band in 0..self.shape.box_cols {
            if slot_start && bands_used & (1 << band) != 0 {
                continue;
            }
            if !slot_start && band_rows[0] / height != band {
                continue;
            }
            for r in band * height..band * height + height {
                if !slot_start && band_rows[..k % height].contains(&r) {
                    continue;
                }
                let mut map = relabel;
                let mut next = next_label;
                for j in 0..side {
                    let v = self.rows[r][j];
                    self.current[k * side + j] = if v == 0 {
                        0
                    } else {
                        if map[v as usize] == 0 {
                            map[v as usize] = next;
                            next += 1;
                        }
                        map[v as usize]
                    };
                }
                let end = (k + 1) * side;
                if self.current[..end] > self.best[..end] {
                    continue;
                }
                let mut rows = band_rows;
                rows[k % height] = r;
                self.place_row(k + 1, bands_used | (1 << band), rows, map, next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sudoku::augment::SudokuTransform;
    use crate::sudoku::solver::random_solution;
    use crate::sudoku::Shape;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_puzzle(rng: &mut ChaCha8Rng, shape: Shape) -> Board {
        let mut b = random_solution(rng, shape);
        for cell in b.iter_mut() {
            if rng.random::<f64>() < 0.7 {
                *cell = 0;
            }
        }
        b
    }

    #[test]
    fn transforms_share_the_canonical_form_and_invariant() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for side in [4, 6, 9] {
            let shape = Shape::from_side(side).unwrap();
            for _ in 0..20 {
                let p = random_puzzle(&mut rng, shape);
                let t = SudokuTransform::random(&mut rng, shape);
                let q = t.apply(&p);
                assert_eq!(invariant(&p, shape), invariant(&q, shape), "side {side}");
                assert_eq!(canonical_form(&p, shape), canonical_form(&q, shape));
                assert!(equivalent(&p, &q, shape));
            }
        }
    }

    #[test]
    fn the_groups_have_their_orders() {
        // Stack orders times column orders inside each stack: 3! * 3!^3 for 9x9, 2! * 2!^2
        // for 4x4, 2! * 3!^2 for 6x6 (two stacks of three columns).
        assert_eq!(column_arrangements(Shape::STANDARD).len(), 1296);
        assert_eq!(column_arrangements(Shape::from_side(4).unwrap()).len(), 8);
        assert_eq!(column_arrangements(Shape::from_side(6).unwrap()).len(), 72);
        let distinct: std::collections::HashSet<Vec<usize>> =
            column_arrangements(Shape::from_side(6).unwrap())
                .into_iter()
                .collect();
        assert_eq!(distinct.len(), 72);
    }

    #[test]
    fn different_puzzles_are_told_apart() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let shape = Shape::STANDARD;
        let p = random_puzzle(&mut rng, shape);
        // Moving one clue to a blank cell of the same row keeps all clue counts per row but
        // changes the class, as the exact form must notice.
        let mut q = p;
        let from = (0..81).find(|&c| p[c] != 0).unwrap();
        let to = (from / 9 * 9..from / 9 * 9 + 9)
            .find(|&c| p[c] == 0)
            .unwrap();
        q[to] = q[from];
        q[from] = 0;
        assert_ne!(canonical_form(&p, shape), canonical_form(&q, shape));
        assert!(!equivalent(&p, &random_puzzle(&mut rng, shape), shape));
    }
}
