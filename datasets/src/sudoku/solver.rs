//! An exact Sudoku solver on candidate bitmasks: naked and hidden singles to a fixed point,
//! then depth-first search on the cell with fewest candidates. It counts solutions up to a
//! limit (so uniqueness is proven, not assumed) and the guesses made before the first
//! solution, which is our difficulty rating, in the spirit of tdoku's backtrack count that
//! rates Sudoku-Extreme. The counts differ from tdoku's (its propagation is stronger), so the
//! ratings are comparable within this harness only.

use super::Board;

const ALL: u16 = 0x1FF;

/// Cell indices of the 27 units: 9 rows, 9 columns, 9 boxes.
const fn units() -> [[u8; 9]; 27] {
    let mut u = [[0u8; 9]; 27];
    let mut i = 0;
    while i < 9 {
        let mut j = 0;
        while j < 9 {
            u[i][j] = (i * 9 + j) as u8;
            u[9 + i][j] = (j * 9 + i) as u8;
            u[18 + i][j] = (((i / 3) * 3 + j / 3) * 9 + (i % 3) * 3 + j % 3) as u8;
            j += 1;
        }
        i += 1;
    }
    u
}
const UNITS: [[u8; 9]; 27] = units();

/// The 20 cells sharing a row, column or box with each cell.
const fn peers() -> [[u8; 20]; 81] {
    let mut p = [[0u8; 20]; 81];
    let mut c = 0;
    while c < 81 {
        let (r, col, b) = (c / 9, c % 9, (c / 27) * 3 + (c % 9) / 3);
        let mut n = 0;
        let mut o = 0;
        while o < 81 {
            let (ro, co, bo) = (o / 9, o % 9, (o / 27) * 3 + (o % 9) / 3);
            if o != c && (ro == r || co == col || bo == b) {
                p[c][n] = o as u8;
                n += 1;
            }
            o += 1;
        }
        c += 1;
    }
    p
}
const PEERS: [[u8; 20]; 81] = peers();

#[derive(Clone, Copy)]
struct State {
    candidates: [u16; 81],
    values: [u8; 81],
}

impl State {
    /// Places digit `d` (1..=9) in `cell`; false on contradiction.
    fn assign(&mut self, cell: usize, d: u8) -> bool {
        let bit = 1u16 << (d - 1);
        if self.values[cell] != 0 || self.candidates[cell] & bit == 0 {
            return self.values[cell] == d;
        }
        self.values[cell] = d;
        self.candidates[cell] = bit;
        for &p in &PEERS[cell] {
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
            for cell in 0..81 {
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
            for unit in &UNITS {
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
                if (once | placed) != ALL {
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
    ClueConflict { cell: usize },
    NoSolution,
    MultipleSolutions,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::ClueConflict { cell } => {
                write!(f, "contradictory clues (row {}, column {} repeats a digit in its row, column or box)", cell / 9 + 1, cell % 9 + 1)
            }
            Invalid::NoSolution => write!(f, "the puzzle has no solution"),
            Invalid::MultipleSolutions => write!(f, "the puzzle has more than one solution"),
        }
    }
}

/// Solves, counts solutions (0, 1 or more) and rates a puzzle.
pub fn analyse(puzzle: &Board) -> Result<Analysis, Invalid> {
    let mut state = State {
        candidates: [ALL; 81],
        values: [0; 81],
    };
    for (cell, &d) in puzzle.iter().enumerate() {
        if d != 0 && !state.assign(cell, d) {
            return Err(Invalid::ClueConflict { cell });
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
pub fn solve_unique(puzzle: &Board) -> Result<(Board, u32), Invalid> {
    let a = analyse(puzzle)?;
    match a.solutions {
        Solutions::Unique => Ok((a.solution.unwrap(), a.guesses)),
        Solutions::None => Err(Invalid::NoSolution),
        Solutions::Multiple => Err(Invalid::MultipleSolutions),
    }
}

/// Whether a puzzle has exactly one solution (cheaper than a full analysis for generators).
pub fn has_unique_solution(puzzle: &Board) -> bool {
    matches!(
        analyse(puzzle),
        Ok(Analysis {
            solutions: Solutions::Unique,
            ..
        })
    )
}

/// A uniformly random order of candidate digits at each branch turns the search into a
/// generator of random complete grids.
pub fn random_solution(rng: &mut impl rand::Rng) -> Board {
    let mut state = State {
        candidates: [ALL; 81],
        values: [0; 81],
    };
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
    let mut digits: Vec<u8> = (1..=9)
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
    for cell in 0..81 {
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
