//! Sudoku-Extreme: 9x9 boards, tokens `value + 1` (0 pad, 1 blank, 2..10 digits 1..9),
//! vocabulary 11, sequence length 81.

pub mod augment;
pub mod build;
pub mod canonical;
pub mod generate;
pub mod solver;

/// Row-major cells, 0 = blank, 1..=9 digits.
pub type Board = [u8; 81];

pub const SEQ_LEN: usize = 81;
pub const VOCAB_SIZE: usize = 11;

/// Parses 81 characters: `1`-`9` digits, `.` or `0` blank.
pub fn parse_board(text: &str) -> Result<Board, String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() != 81 {
        return Err(format!("expected 81 cells, found {}", chars.len()));
    }
    let mut b = [0u8; 81];
    for (i, ch) in chars.iter().enumerate() {
        b[i] = match ch {
            '.' | '0' => 0,
            '1'..='9' => *ch as u8 - b'0',
            _ => {
                return Err(format!(
                    "character {ch:?} at cell {} (row {}, column {}) is not 1-9, '.' or '0'",
                    i + 1,
                    i / 9 + 1,
                    i % 9 + 1
                ))
            }
        };
    }
    Ok(b)
}

pub fn board_to_string(b: &Board) -> String {
    b.iter()
        .map(|&v| if v == 0 { '.' } else { (b'0' + v) as char })
        .collect()
}

pub fn to_tokens(b: &Board) -> [u8; 81] {
    b.map(|v| v + 1)
}

pub fn from_tokens(tokens: &[u8]) -> Board {
    let mut b = [0u8; 81];
    for (o, &t) in b.iter_mut().zip(tokens) {
        *o = t.saturating_sub(1);
    }
    b
}

/// Whether `solution` is a complete valid grid that agrees with every clue of `puzzle`.
pub fn solves(puzzle: &Board, solution: &Board) -> bool {
    let consistent = puzzle.iter().zip(solution).all(|(&p, &s)| p == 0 || p == s);
    consistent && is_valid_complete(solution)
}

pub fn is_valid_complete(b: &Board) -> bool {
    (0..9).all(|i| {
        let mut row = 0u16;
        let mut col = 0u16;
        let mut bx = 0u16;
        for j in 0..9 {
            let box_cell = ((i / 3) * 3 + j / 3) * 9 + (i % 3) * 3 + j % 3;
            for (mask, v) in [
                (&mut row, b[i * 9 + j]),
                (&mut col, b[j * 9 + i]),
                (&mut bx, b[box_cell]),
            ] {
                if v == 0 || v > 9 {
                    return false;
                }
                *mask |= 1 << (v - 1);
            }
        }
        row == 0x1FF && col == 0x1FF && bx == 0x1FF
    })
}

pub fn render(b: &Board) -> String {
    let mut s = String::new();
    for r in 0..9 {
        if r > 0 && r % 3 == 0 {
            s.push_str("------+-------+------\n");
        }
        for c in 0..9 {
            if c > 0 && c % 3 == 0 {
                s.push_str("| ");
            }
            let v = b[r * 9 + c];
            s.push(if v == 0 { '.' } else { (b'0' + v) as char });
            s.push(' ');
        }
        s.pop();
        s.push('\n');
    }
    s
}
