//! An exact Sudoku solver on candidate bitmasks: naked and hidden singles to a fixed point,
//! then depth-first search on the cell with fewest candidates. It counts solutions up to a
//! limit (so uniqueness is proven, not assumed) and the guesses made before the first
//! solution, which is our difficulty rating, in the spirit of tdoku's backtrack count that
//! rates Sudoku-Extreme. The counts differ from tdoku's (its propagation is stronger), so the
//! ratings are comparable within this harness only.

use super::{Board, Shape};
use std::sync::OnceLock;

/// The units (rows, columns, boxes) and each cell's peers of one shape.
struct Geometry {
    shape: Shape,
    units: Vec<Vec<u8>>,
    peers: Vec<Vec<u8>>,
}

impl Geometry {
    fn new(shape: Shape) -> Self {
        let side = shape.side();
        let units: Vec<Vec<u8>> = (0..side)
            .map(|i| (0..side).map(|j| (i * side + j) as u8).collect())
            .chain((0..side).map(|i| (0..side).map(|j| (j * side + i) as u8).collect()))
            .chain((0..side).map(|b| (0..side).map(|k| shape.box_cell(b, k) as u8).collect()))
            .collect();
        let peers = (0..shape.cells())
            .map(|c| {
                let same = |o: usize| {
                    o / side == c / side
                        || o % side == c % side
                        || shape.box_of(o) == shape.box_of(c)
                };
                (0..shape.cells())
                    .filter(|&o| o != c && same(o))
                    .map(|o| o as u8)
                    .collect()
            })
            .collect();
        Geometry {
            shape,
            units,
            peers,
        }
    }

    fn of(shape: Shape) -> &'static Geometry {
        static CACHE: [OnceLock<Geometry>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = match shape.side() {
            4 => 0,
            6 => 1,
            _ => 2,
        };
        // `Shape::from_side` makes the only shapes there are, one per side.
        CACHE[slot].get_or_init(|| Geometry::new(shape))
    }
}

#[derive(Clone, Copy)]
struct State {
    geometry: &'static Geometry,
    candidates: [u16; 81],
    values: [u8; 81],
}

impl State {
    fn empty(shape: Shape) -> Self {
        State {
            geometry: Geometry::of(shape),
            candidates: [shape.all_digits(); 81],
            values: [0; 81],
        }
    }

    fn cells(&self) -> usize {
        self.geometry.shape.cells()
    }

    /// Places digit `d` (1..=side) in `cell`; false on contradiction.
    fn assign(&mut self, cell: usize, d: u8) -> bool {
        let bit = 1u16 << (d - 1);
        if self.values[cell] != 0 || self.candidates[cell] & bit == 0 {
            return self.values[cell] == d;
        }
        self.values[cell] = d;
        self.candidates[cell] = bit;
        for &p in &self.geometry.peers[cell] {
            let p = p as usize;
            if self.candidates[p] & bit != 0 {
                if self.values[p] != 0 {
                    return false;
                }
                self.candidates[p] &= !bit;
                if self.candidates[p] == 0 {
                    return false;
                }
            }
        }
        true
    }

    /// Naked and hidden singles until nothing changes; false on contradiction.
    fn propagate(&mut self) -> bool {
        loop {
            let mut changed = false;
            for cell in 0..self.cells() {
                if self.values[cell] == 0 {
                    let m = self.candidates[cell];
                    if m == 0 {
                        return false;
                    }
                    if m.count_ones() == 1 {
                        if !self.assign(cell, m.trailing_zeros() as u8 + 1) {
                            return false;
                        }
                        changed = true;
                    }
                }
            }
            for unit in &self.geometry.units {
                let (mut once, mut twice, mut placed) = (0u16, 0u16, 0u16);
                for &c in unit {
                    let c = c as usize;
                    if self.values[c] != 0 {
                        placed |= 1 << (self.values[c] - 1);
                    } else {
                        twice |= once & self.candidates[c];
                        once |= self.candidates[c];
                    }
                }
                if (once | placed) != self.geometry.shape.all_digits() {
                    return false;
                }
                let mut hidden = once & !twice & !placed;
                while hidden != 0 {
                    let bit = hidden & hidden.wrapping_neg();
                    hidden &= hidden - 1;
                    let cell = unit
                        .iter()
                        .map(|&c| c as usize)
                        .find(|&c| self.values[c] == 0 && self.candidates[c] & bit != 0);
                    match cell {
                        Some(c) if self.assign(c, bit.trailing_zeros() as u8 + 1) => changed = true,
                        _ => return false,
                    }
                }
            }
            if !changed {
                return true;
            }
        }
    }
}

/// How many solutions a puzzle has, up to the search limit of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Solutions {
    None,
    Unique,
    Multiple,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub solutions: Solutions,
    /// The first solution found, if any.
    pub solution: Option<Board>,
    /// Guesses (branch choices that still had an alternative) before the first solution.
    pub guesses: u32,
}

/// Why a puzzle cannot be used as a dataset entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// 1-based row and column of the first clue that repeats a digit.
    ClueConflict {
        row: usize,
        column: usize,
    },
    NoSolution,
    MultipleSolutions,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::ClueConflict { row, column } => {
                write!(f, "contradictory clues (row {row}, column {column} repeats a digit in its row, column or box)")
            }
            Invalid::NoSolution => write!(f, "the puzzle has no solution"),
            Invalid::MultipleSolutions => write!(f, "the puzzle has more than one solution"),
        }
    }
}

/// Solves, counts solutions (0, 1 or more) and rates a puzzle.
pub fn analyse(puzzle: &Board, shape: Shape) -> Result<Analysis, Invalid> {
    let mut state = State::empty(shape);
    for (cell, &d) in puzzle.iter().enumerate() {
        if d != 0 && !state.assign(cell, d) {
            let side = shape.side();
            return Err(Invalid::ClueConflict {
                row: cell / side + 1,
                column: cell % side + 1,
            });
        }
    }
    let mut search = Search {
        found: 0,
        limit: 2,
        guesses: 0,
        first: None,
    };
    search.run(state);
    Ok(Analysis {
        solutions: match search.found {
            0 => Solutions::None,
            1 => Solutions::Unique,
            _ => Solutions::Multiple,
        },
        solution: search.first,
        guesses: search.guesses,
    })
}

/// The unique solution and its rating, or why there is none.
pub fn solve_unique(puzzle: &Board, shape: Shape) -> Result<(Board, u32), Invalid> {
    let a = analyse(puzzle, shape)?;
    match a.solutions {
        Solutions::Unique => Ok((a.solution.unwrap(), a.guesses)),
        Solutions::None => Err(Invalid::NoSolution),
        Solutions::Multiple => Err(Invalid::MultipleSolutions),
    }
}

/// Whether a puzzle has exactly one solution (cheaper than a full analysis for generators).
pub fn has_unique_solution(puzzle: &Board, shape: Shape) -> bool {
    matches!(
        analyse(puzzle, shape),
        Ok(Analysis {
            solutions: Solutions::Unique,
            ..
        })
    )
}

/// A uniformly random order of candidate digits at each branch turns the search into a
/// generator of random complete grids.
pub fn random_solution(rng: &mut impl rand::Rng, shape: Shape) -> Board {
    let mut state = State::empty(shape);
    fill_random(&mut state, rng).expect("an empty grid always has a solution")
}

fn fill_random(state: &mut State, rng: &mut impl rand::Rng) -> Option<Board> {
    use rand::seq::SliceRandom;
    if !state.propagate() {
        return None;
    }
    let Some(cell) = most_constrained(state) else {
        return Some(state.values);
    };
    let mut digits: Vec<u8> = (1..=state.geometry.shape.side() as u8)
        .filter(|d| state.candidates[cell] & (1 << (d - 1)) != 0)
        .collect();
    digits.shuffle(rng);
    for d in digits {
        let mut child = *state;
        if child.assign(cell, d) {
            if let Some(b) = fill_random(&mut child, rng) {
                return Some(b);
            }
        }
    }
    None
}

fn most_constrained(state: &State) -> Option<usize> {
    let mut best: Option<(u32, usize)> = None;
    for cell in 0..state.cells() {
        if state.values[cell] == 0 {
            let n = state.candidates[cell].count_ones();
            if best.is_none_or(|(m, _)| n < m) {
                best = Some((n, cell));
                if n == 2 {
                    break;
                }
            }
        }
    }
    best.map(|(_, c)| c)
}

struct Search {
    found: u32,
    limit: u32,
    guesses: u32,
    first: Option<Board>,
}

impl Search {
    fn run(&mut self, mut state: State) {
        if !state.propagate() {
            return;
        }
        let Some(cell) = most_constrained(&state) else {
            self.found += 1;
            if self.first.is_none() {
                self.first = Some(state.values);
            }
            return;
        };
        let mut mask = state.candidates[cell];
        while mask != 0 && self.found < self.limit {
            let bit = mask & mask.wrapping_neg();
            mask &= mask - 1;
            if mask != 0 && self.first.is_none() {
                self.guesses += 1;
            }
            let mut child = state;
            if child.assign(cell, bit.trailing_zeros() as u8 + 1) {
                self.run(child);
            }
        }
    }
}
