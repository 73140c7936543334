//! Sudoku boards of three shapes: the standard 9x9 (Sudoku-Extreme: tokens `value + 1`, so 0
//! pad, 1 blank, 2..10 digits 1..9; vocabulary 11, sequence length 81) and the small 4x4 and
//! 6x6 grids of the CPU-sized `sudoku-small` task (boxes of 2x2 and 2x3; vocabulary side + 2,
//! sequence length side^2). One solver, augmentation group and equivalence-safe split serve all.

pub mod augment;
pub mod build;
pub mod canonical;
pub mod generate;
pub mod solver;

/// Row-major cells, 0 = blank, 1..=side digits. Sized for the largest shape; cells beyond
/// `shape.cells()` stay 0, so boards of every shape are `Copy`, hashable and comparable.
pub type Board = [u8; 81];

/// A grid whose boxes are `box_rows` x `box_cols`: `side = box_rows * box_cols` digits,
/// `box_cols` bands of `box_rows` rows and `box_rows` stacks of `box_cols` columns. Only the
/// three shapes of `from_side` exist (the solver keeps one table of units per shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    box_rows: usize,
    box_cols: usize,
}

impl Shape {
    pub const STANDARD: Shape = Shape {
        box_rows: 3,
        box_cols: 3,
    };

    /// The shape of a side-length: 4 (2x2 boxes), 6 (2x3) or 9 (3x3).
    pub fn from_side(side: usize) -> Result<Shape, String> {
        match side {
            4 => Ok(Shape {
                box_rows: 2,
                box_cols: 2,
            }),
            6 => Ok(Shape {
                box_rows: 2,
                box_cols: 3,
            }),
            9 => Ok(Shape::STANDARD),
            _ => Err(format!("a Sudoku side is 4, 6 or 9, not {side}")),
        }
    }

    pub const fn side(self) -> usize {
        self.box_rows * self.box_cols
    }

    pub const fn cells(self) -> usize {
        self.side() * self.side()
    }

    pub const fn vocab_size(self) -> usize {
        self.side() + 2
    }

    /// The box holding `cell`, numbered row-major.
    pub const fn box_of(self, cell: usize) -> usize {
        let (r, c) = (cell / self.side(), cell % self.side());
        (r / self.box_rows) * self.box_rows + c / self.box_cols
    }

    /// The `k`-th cell (row-major) of box `b`.
    pub const fn box_cell(self, b: usize, k: usize) -> usize {
        let r = (b / self.box_rows) * self.box_rows + k / self.box_cols;
        let c = (b % self.box_rows) * self.box_cols + k % self.box_cols;
        r * self.side() + c
    }

    /// Transposing keeps boxes boxes only when they are square.
    pub const fn transposable(self) -> bool {
        self.box_rows == self.box_cols
    }

    /// The full-digit bitmask.
    pub const fn all_digits(self) -> u16 {
        (1u16 << self.side()) - 1
    }
}

pub const SEQ_LEN: usize = 81;
pub const VOCAB_SIZE: usize = 11;

/// Parses `shape.cells()` characters: digits `1`..=side, `.` or `0` blank.
pub fn parse_board(text: &str, shape: Shape) -> Result<Board, String> {
    let chars: Vec<char> = text.chars().collect();
    let (n, side) = (shape.cells(), shape.side());
    if chars.len() != n {
        return Err(format!("expected {n} cells, found {}", chars.len()));
    }
    let mut b = [0u8; 81];
    for (i, ch) in chars.iter().enumerate() {
        b[i] = match ch.to_digit(10) {
            Some(d) if (d as usize) <= side => d as u8,
            _ if *ch == '.' => 0,
            _ => {
                return Err(format!(
                    "character {ch:?} at cell {} (row {}, column {}) is not 1-{side}, '.' or '0'",
                    i + 1,
                    i / side + 1,
                    i % side + 1
                ))
            }
        };
    }
    Ok(b)
}

pub fn board_to_string(b: &Board, shape: Shape) -> String {
    b[..shape.cells()]
        .iter()
        .map(|&v| if v == 0 { '.' } else { (b'0' + v) as char })
        .collect()
}

pub fn to_tokens(b: &Board, shape: Shape) -> Vec<u8> {
    b[..shape.cells()].iter().map(|v| v + 1).collect()
}

pub fn from_tokens(tokens: &[u8]) -> Board {
    let mut b = [0u8; 81];
    for (o, &t) in b.iter_mut().zip(tokens) {
        *o = t.saturating_sub(1);
    }
    b
}

/// Whether `solution` is a complete valid grid that agrees with every clue of `puzzle`.
pub fn solves(puzzle: &Board, solution: &Board, shape: Shape) -> bool {
    let consistent = puzzle.iter().zip(solution).all(|(&p, &s)| p == 0 || p == s);
    consistent && is_valid_complete(solution, shape)
}

pub fn is_valid_complete(b: &Board, shape: Shape) -> bool {
    let side = shape.side();
    (0..side).all(|i| {
        let (mut row, mut col, mut bx) = (0u16, 0u16, 0u16);
        for j in 0..side {
            for (mask, v) in [
                (&mut row, b[i * side + j]),
                (&mut col, b[j * side + i]),
                (&mut bx, b[shape.box_cell(i, j)]),
            ] {
                if v == 0 || v as usize > side {
                    return false;
                }
                *mask |= 1 << (v - 1);
            }
        }
        [row, col, bx].iter().all(|&m| m == shape.all_digits())
    })
}

pub fn render(b: &Board, shape: Shape) -> String {
    let side = shape.side();
    let mut s = String::new();
    for r in 0..side {
        if r > 0 && r % shape.box_rows == 0 {
            let dashes = vec!["-".repeat(2 * shape.box_cols - 1); shape.box_rows];
            s.push_str(&dashes.join("-+-"));
            s.push('\n');
        }
        for c in 0..side {
            if c > 0 && c % shape.box_cols == 0 {
                s.push_str("| ");
            }
            let v = b[r * side + c];
            s.push(if v == 0 { '.' } else { (b'0' + v) as char });
            s.push(' ');
        }
        s.pop();
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_geometry_of_every_shape() {
        for side in [4, 6, 9] {
            let shape = Shape::from_side(side).unwrap();
            for b in 0..side {
                for k in 0..side {
                    assert_eq!(shape.box_of(shape.box_cell(b, k)), b, "side {side}");
                }
            }
        }
        // 6x6: boxes of two rows and three columns; box 1 is the top right.
        let six = Shape::from_side(6).unwrap();
        assert_eq!(six.box_cell(1, 0), 3);
        assert_eq!(six.box_cell(1, 5), 6 + 5);
        assert_eq!(six.box_cell(2, 0), 12);
        assert!(Shape::from_side(5).is_err());
        assert_eq!(
            render(&[0; 81], six).lines().nth(2).unwrap(),
            "------+------"
        );
    }
}
