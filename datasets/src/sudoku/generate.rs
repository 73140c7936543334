//! Built-in generator of hard puzzles, so a fresh machine needs no files: a random complete
//! grid, clues removed in random order while the solution stays unique (a minimal puzzle),
//! kept only if its rating reaches `min_rating` guesses.

use super::solver::{analyse, has_unique_solution, random_solution, Solutions};
use super::{Board, Shape};
use crate::sample::stream_rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatedPuzzle {
    pub puzzle: Board,
    pub solution: Board,
    pub rating: u32,
    pub source: String,
}

/// One minimal puzzle with a unique solution.
pub fn minimal_puzzle(rng: &mut ChaCha8Rng, shape: Shape) -> (Board, Board) {
    let solution = random_solution(rng, shape);
    let mut puzzle = solution;
    let mut cells: Vec<usize> = (0..shape.cells()).collect();
    cells.shuffle(rng);
    for cell in cells {
        let keep = puzzle[cell];
        puzzle[cell] = 0;
        if !has_unique_solution(&puzzle, shape) {
            puzzle[cell] = keep;
        }
    }
    (puzzle, solution)
}

/// `count` puzzles rated at least `min_rating`, reproducible from `seed` whatever the number
/// of threads: puzzle `i` comes from its own ChaCha stream.
pub fn generate(
    count: usize,
    min_rating: u32,
    seed: u64,
    max_tries_per_puzzle: usize,
    shape: Shape,
) -> Result<Vec<RatedPuzzle>, String> {
    generate_streams(0, count, min_rating, seed, max_tries_per_puzzle, shape)
}

/// `count` puzzles from the streams `first..first + count` of `seed`: more puzzles after a
/// `generate(first, ..)` pool, none of them drawn from the same stream.
pub fn generate_streams(
    first: u64,
    count: usize,
    min_rating: u32,
    seed: u64,
    max_tries_per_puzzle: usize,
    shape: Shape,
) -> Result<Vec<RatedPuzzle>, String> {
    (first..first + count as u64)
        .into_par_iter()
        .map(|i| {
            let mut rng = stream_rng(seed, i);
            for _ in 0..max_tries_per_puzzle {
                let (puzzle, solution) = minimal_puzzle(&mut rng, shape);
                let a = analyse(&puzzle, shape).expect("a generated puzzle has consistent clues");
                debug_assert_eq!(a.solutions, Solutions::Unique);
                if a.guesses >= min_rating {
                    return Ok(RatedPuzzle { puzzle, solution, rating: a.guesses, source: "generator".to_string() });
                }
            }
            Err(format!(
                "no puzzle rated >= {min_rating} guesses after {max_tries_per_puzzle} tries; lower --min-rating"
            ))
        })
        .collect()
}
