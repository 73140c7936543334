//! Data-builder throughput, measured once per workload (these are seconds-long jobs, not
//! micro-benchmarks): `cargo bench -p datasets --bench builders`.
//! - Sudoku solve + uniqueness proof + rating over the real lists in `../shared/data/sudoku`
//!   (skipped, with a message, when that folder is absent);
//! - the built-in hard-Sudoku generator;
//! - Maze-Hard 30x30 generation, 1000 + 1000 mazes.

use datasets::maze::generate::{generate as generate_mazes, MazeSpec};
use datasets::sudoku::build::read_list;
use datasets::sudoku::canonical::canonical_form;
use datasets::sudoku::generate::generate as generate_sudoku;
use datasets::sudoku::Shape;
use std::path::Path;
use std::time::Instant;

fn main() {
    let threads = rayon::current_num_threads();
    println!("threads: {threads}");
    // `cargo bench --bench builders -- maze` runs only the sections named so.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted =
        |section: &str| filter.is_empty() || filter.iter().any(|f| section.contains(f.as_str()));
    if wanted("sudoku") {
        sudoku(threads);
    }
    if wanted("maze") {
        mazes();
    }
}

fn sudoku(threads: usize) {
    let lists = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sudoku");
    for name in ["puzzles2_17_clue", "puzzles5_forum_hardest_1905_11+"] {
        let path = lists.join(name);
        if !path.exists() {
            println!(
                "sudoku solve+rate {name}: skipped ({} not found)",
                path.display()
            );
            continue;
        }
        let t = Instant::now();
        let rated = read_list(&path, Shape::STANDARD).expect("the shared lists are valid");
        let secs = t.elapsed().as_secs_f64();
        let mean = rated.iter().map(|r| r.rating as f64).sum::<f64>() / rated.len() as f64;
        let max = rated.iter().map(|r| r.rating).max().unwrap_or(0);
        println!(
            "sudoku solve+unique+rate {name}: {} puzzles in {secs:.2} s = {:.0} puzzles/s ({:.1} us/puzzle/thread); rating mean {mean:.2}, max {max}",
            rated.len(),
            rated.len() as f64 / secs,
            secs * 1e6 * threads as f64 / rated.len() as f64
        );
        let sample: Vec<_> = rated.iter().take(2000).map(|r| r.puzzle).collect();
        let t = Instant::now();
        let forms: Vec<_> = sample
            .iter()
            .map(|b| canonical_form(b, Shape::STANDARD))
            .collect();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "sudoku canonical form {name}: {:.0} us/puzzle (1 thread, {} puzzles)",
            secs * 1e6 / forms.len() as f64,
            forms.len()
        );
    }
    for min_rating in [0u32, 2, 5] {
        let t = Instant::now();
        let puzzles =
            generate_sudoku(200, min_rating, 1, 100_000, Shape::STANDARD).expect("generator");
        let secs = t.elapsed().as_secs_f64();
        let mean = puzzles.iter().map(|r| r.rating as f64).sum::<f64>() / puzzles.len() as f64;
        println!("sudoku generator min_rating {min_rating}: 200 puzzles in {secs:.2} s, rating mean {mean:.2}");
    }
}

fn mazes() {
    for (side, threshold, count) in [(30usize, 110u32, 2000usize), (12, 20, 2000)] {
        let spec = MazeSpec {
            side,
            min_path_moves: threshold,
            ..MazeSpec::default()
        };
        let t = Instant::now();
        let mazes = generate_mazes(count, &spec, 0).expect("maze generator");
        let secs = t.elapsed().as_secs_f64();
        let layouts: u64 = mazes.iter().map(|m| m.layouts_tried).sum();
        let mean = mazes.iter().map(|m| m.path_moves as f64).sum::<f64>() / mazes.len() as f64;
        println!(
            "maze {side}x{side} path > {threshold}: {count} mazes in {secs:.2} s ({layouts} wall layouts drawn, mean path {mean:.1} moves)"
        );
    }
}
