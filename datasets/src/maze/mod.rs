//! Maze-Hard: square grids over the charset `# SGo` (wall, open, start, goal, path), tokens
//! `1 + index` with 0 = pad (vocabulary 6, sequence length side^2). The label is the input
//! with the cells of one shortest path marked `o`; S and G keep their letters.

pub mod build;
pub mod generate;

use std::collections::VecDeque;

pub const CHARSET: &[u8; 5] = b"# SGo";
pub const VOCAB_SIZE: usize = 6;
pub const WALL: u8 = 1;
pub const OPEN: u8 = 2;
pub const START: u8 = 3;
pub const GOAL: u8 = 4;
pub const PATH: u8 = 5;
const UNREACHED: u32 = u32::MAX;

/// Neighbour order of the BFS whose first-found parents reproduce the official labels:
/// down, left, right, up.
const MOVES: [(isize, isize); 4] = [(1, 0), (0, -1), (0, 1), (-1, 0)];

pub fn token_of(ch: char) -> Option<u8> {
    CHARSET
        .iter()
        .position(|&c| c as char == ch)
        .map(|i| i as u8 + 1)
}

pub fn char_of(token: u8) -> char {
    match token {
        1..=5 => CHARSET[token as usize - 1] as char,
        _ => '?',
    }
}

/// Parses a maze string of side^2 characters from `# SG` (and `o` when `allow_path`).
pub fn parse(text: &str, allow_path: bool) -> Result<Vec<u8>, String> {
    let n = text.chars().count();
    let side = (n as f64).sqrt().round() as usize;
    if side * side != n || side == 0 {
        return Err(format!("{n} characters is not a square grid"));
    }
    text.chars()
        .enumerate()
        .map(|(i, ch)| match token_of(ch) {
            Some(PATH) if !allow_path => Err(format!(
                "path mark 'o' in a question at row {}, column {}",
                i / side + 1,
                i % side + 1
            )),
            Some(t) => Ok(t),
            None => Err(format!(
                "character {ch:?} at row {}, column {} is not one of \"# SGo\"",
                i / side + 1,
                i % side + 1
            )),
        })
        .collect()
}

pub fn side_of(tokens: &[u8]) -> usize {
    (tokens.len() as f64).sqrt().round() as usize
}

fn find_unique(tokens: &[u8], token: u8) -> Result<usize, String> {
    let mut at = tokens
        .iter()
        .enumerate()
        .filter(|(_, &t)| t == token)
        .map(|(i, _)| i);
    match (at.next(), at.next()) {
        (Some(i), None) => Ok(i),
        (None, _) => Err(format!("no '{}' in the maze", char_of(token))),
        _ => Err(format!("more than one '{}' in the maze", char_of(token))),
    }
}

/// Start and goal cells of a maze input.
pub fn endpoints(tokens: &[u8]) -> Result<(usize, usize), String> {
    Ok((find_unique(tokens, START)?, find_unique(tokens, GOAL)?))
}

fn passable(t: u8) -> bool {
    t != WALL && t != 0
}

/// Breadth-first search from `from` over passable cells (or only over cells for which
/// `allowed` holds); returns distances and first-found parents.
fn bfs(tokens: &[u8], from: usize, allowed: impl Fn(usize) -> bool) -> (Vec<u32>, Vec<u32>) {
    let side = side_of(tokens);
    let mut dist = vec![UNREACHED; tokens.len()];
    let mut parent = vec![UNREACHED; tokens.len()];
    let mut queue = VecDeque::with_capacity(tokens.len());
    dist[from] = 0;
    queue.push_back(from);
    while let Some(cell) = queue.pop_front() {
        let (r, c) = ((cell / side) as isize, (cell % side) as isize);
        for (dr, dc) in MOVES {
            let (nr, nc) = (r + dr, c + dc);
            if nr < 0 || nc < 0 || nr >= side as isize || nc >= side as isize {
                continue;
            }
            let next = nr as usize * side + nc as usize;
            if dist[next] == UNREACHED && passable(tokens[next]) && allowed(next) {
                dist[next] = dist[cell] + 1;
                parent[next] = cell as u32;
                queue.push_back(next);
            }
        }
    }
    (dist, parent)
}

/// Distances (in moves) from `from` to every cell; `None` where unreachable.
pub fn distances(tokens: &[u8], from: usize) -> Vec<Option<u32>> {
    bfs(tokens, from, |_| true)
        .0
        .into_iter()
        .map(|d| (d != UNREACHED).then_some(d))
        .collect()
}

/// The label of a maze input: one shortest path (BFS, down-left-right-up, first parent)
/// drawn with `o`, and its length in moves. `None` if the goal is unreachable.
pub fn solve(tokens: &[u8]) -> Result<Option<(Vec<u8>, u32)>, String> {
    let (start, goal) = endpoints(tokens)?;
    let (dist, parent) = bfs(tokens, start, |_| true);
    if dist[goal] == UNREACHED {
        return Ok(None);
    }
    let mut label = tokens.to_vec();
    let mut cell = parent[goal] as usize;
    while cell != start {
        label[cell] = PATH;
        cell = parent[cell] as usize;
    }
    Ok(Some((label, dist[goal])))
}

/// Whether `predicted` marks a valid shortest path for maze `input`: every cell other than
/// path marks is unchanged, path marks lie on open cells, and they form a path from S to G
/// of the shortest length (so all marks are used and none is superfluous).
pub fn is_valid_shortest_path(input: &[u8], predicted: &[u8]) -> bool {
    if input.len() != predicted.len() {
        return false;
    }
    let Ok((start, goal)) = endpoints(input) else {
        return false;
    };
    let mut marks = 0usize;
    for (&i, &p) in input.iter().zip(predicted) {
        if p == PATH {
            if i != OPEN {
                return false;
            }
            marks += 1;
        } else if p != i {
            return false;
        }
    }
    let shortest = bfs(input, start, |_| true).0[goal];
    if shortest == UNREACHED {
        return false;
    }
    let on_path = bfs(input, start, |c| predicted[c] == PATH || c == goal).0[goal];
    on_path == shortest && marks as u32 + 1 == shortest
}

/// Renders tokens as the maze's characters, one row per line.
pub fn render(tokens: &[u8]) -> String {
    let side = side_of(tokens);
    tokens
        .chunks(side)
        .map(|row| row.iter().map(|&t| char_of(t)).collect::<String>() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&str]) -> Vec<u8> {
        parse(&rows.concat(), true).unwrap()
    }

    #[test]
    fn bfs_label_uses_the_official_tie_break() {
        // Open 3x3 with S top-left and G bottom-right: down is tried first, so the first-found
        // parents run along the left column then the bottom row.
        let input = grid(&["S  ", "   ", "  G"]);
        let (label, len) = solve(&input).unwrap().unwrap();
        assert_eq!(len, 4);
        assert_eq!(render(&label), "S  \no  \nooG\n");
        assert!(is_valid_shortest_path(&input, &label));
    }

    #[test]
    fn checker_accepts_other_shortest_paths_and_rejects_bad_ones() {
        let input = grid(&["S  ", "   ", "  G"]);
        assert!(is_valid_shortest_path(
            &input,
            &grid(&["Soo", "  o", "  G"])
        ));
        assert!(is_valid_shortest_path(
            &input,
            &grid(&["So ", " oo", "  G"])
        ));
        // Too long (detour), broken, extra mark, changed wall, mark over S.
        assert!(!is_valid_shortest_path(
            &input,
            &grid(&["Soo", "ooo", "  G"])
        ));
        assert!(!is_valid_shortest_path(
            &input,
            &grid(&["So ", "   ", " oG"])
        ));
        assert!(!is_valid_shortest_path(
            &input,
            &grid(&["Soo", "  o", "o G"])
        ));
        assert!(!is_valid_shortest_path(
            &input,
            &grid(&["Soo", " #o", "  G"])
        ));
        let walled = grid(&["S# ", " # ", "  G"]);
        assert!(!is_valid_shortest_path(
            &walled,
            &grid(&["So ", " o ", "  G"])
        ));
        assert!(is_valid_shortest_path(
            &walled,
            &grid(&["S# ", "o# ", "ooG"])
        ));
    }

    #[test]
    fn unreachable_goal_and_bad_text() {
        assert_eq!(solve(&grid(&["S# ", "## ", "  G"])).unwrap(), None);
        assert!(parse("S  x", false).unwrap_err().contains("'x'"));
        assert!(parse("S  ", false).unwrap_err().contains("square"));
        assert!(parse("So G", false).unwrap_err().contains("path mark"));
        assert!(endpoints(&grid(&["S ", "SG"]))
            .unwrap_err()
            .contains("more than one"));
    }
}
