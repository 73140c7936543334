//! Equivalence of Sudoku puzzles under the augmentation group (transpose x band, row, stack
//! and column permutations x digit relabelling, 2 * 6^8 * 9! elements), which Sudoku-Extreme's
//! split must respect: no test puzzle may be a transform of a training puzzle.
//!
//! `canonical_form` is exact: the lexicographically smallest board over the geometric
//! transforms, with digits relabelled in order of first appearance (which makes the digit part
//! of the group free). It is found by branch and bound over rows for each of the 2 * 1296
//! column arrangements. `invariant` is a cheap hash constant on each class, used to bucket
//! puzzles so that the exact form is only computed where invariants collide.

use super::Board;
use std::hash::{Hash, Hasher};

const PERMS3: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// A class invariant: clue-count profiles of bands and stacks (transpose-symmetric), the
/// multiset of box clue counts and the multiset of digit frequencies.
pub fn invariant(b: &Board) -> u64 {
    let side_profile = |cell: &dyn Fn(usize, usize) -> u8| {
        let mut bands: Vec<[u8; 3]> = (0..3)
            .map(|band| {
                let mut counts = [0u8; 3];
                for (k, c) in counts.iter_mut().enumerate() {
                    *c = (0..9).filter(|&j| cell(band * 3 + k, j) != 0).count() as u8;
                }
                counts.sort_unstable();
                counts
            })
            .collect();
        bands.sort_unstable();
        bands
    };
    let rows = side_profile(&|r, c| b[r * 9 + c]);
    let cols = side_profile(&|r, c| b[c * 9 + r]);
    let (lo, hi) = if rows <= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let mut boxes: Vec<u8> = (0..9)
        .map(|bx| {
            (0..9)
                .filter(|&k| b[((bx / 3) * 3 + k / 3) * 9 + (bx % 3) * 3 + k % 3] != 0)
                .count() as u8
        })
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
pub fn canonical_form(b: &Board) -> Board {
    let mut search = Canonicaliser {
        rows: [[0u8; 9]; 9],
        best: [u8::MAX; 81],
        current: [0u8; 81],
    };
    for transposed in [false, true] {
        let g = if transposed {
            super::augment::transpose(b)
        } else {
            *b
        };
        for stacks in PERMS3 {
            for c0 in PERMS3 {
                for c1 in PERMS3 {
                    for c2 in PERMS3 {
                        let inner = [c0, c1, c2];
                        let mut col_perm = [0usize; 9];
                        for (slot, &stack) in stacks.iter().enumerate() {
                            for k in 0..3 {
                                col_perm[slot * 3 + k] = stack * 3 + inner[slot][k];
                            }
                        }
                        for r in 0..9 {
                            for (j, &c) in col_perm.iter().enumerate() {
                                search.rows[r][j] = g[r * 9 + c];
                            }
                        }
                        search.place_row(0, 0, [0; 3], [0u8; 10], 1);
                    }
                }
            }
        }
    }
    search.best
}

pub fn equivalent(a: &Board, b: &Board) -> bool {
    invariant(a) == invariant(b) && canonical_form(a) == canonical_form(b)
}

struct Canonicaliser {
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
        if k == 9 {
            if self.current < self.best {
                self.best = self.current;
            }
            return;
        }
        let slot_start = k.is_multiple_of(3);
        for band in 0..3 {
            if slot_start && bands_used & (1 << band) != 0 {
                continue;
            }
            if !slot_start && band_rows[0] / 3 != band {
                continue;
            }
            for r in band * 3..band * 3 + 3 {
                if !slot_start && band_rows[..k % 3].contains(&r) {
                    continue;
                }
                let mut map = relabel;
                let mut next = next_label;
                for j in 0..9 {
                    let v = self.rows[r][j];
                    self.current[k * 9 + j] = if v == 0 {
                        0
                    } else {
                        if map[v as usize] == 0 {
                            map[v as usize] = next;
                            next += 1;
                        }
                        map[v as usize]
                    };
                }
                let end = (k + 1) * 9;
                if self.current[..end] > self.best[..end] {
                    continue;
                }
                let mut rows = band_rows;
                rows[k % 3] = r;
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
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_puzzle(rng: &mut ChaCha8Rng) -> Board {
        let mut b = random_solution(rng);
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
        for _ in 0..20 {
            let p = random_puzzle(&mut rng);
            let t = SudokuTransform::random(&mut rng);
            let q = t.apply(&p);
            assert_eq!(invariant(&p), invariant(&q));
            assert_eq!(canonical_form(&p), canonical_form(&q));
            assert!(equivalent(&p, &q));
        }
    }

    #[test]
    fn different_puzzles_are_told_apart() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let p = random_puzzle(&mut rng);
        // Moving one clue to a blank cell of the same row keeps all clue counts per row but
        // changes the class, as the exact form must notice.
        let mut q = p;
        let from = (0..81).find(|&c| p[c] != 0).unwrap();
        let to = (from / 9 * 9..from / 9 * 9 + 9)
            .find(|&c| p[c] == 0)
            .unwrap();
        q[to] = q[from];
        q[from] = 0;
        assert_ne!(canonical_form(&p), canonical_form(&q));
        assert!(!equivalent(&p, &random_puzzle(&mut rng)));
    }
}
