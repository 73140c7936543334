//! The official `source,question,answer,rating` CSV, through the Maze-Hard and
//! Sudoku-Extreme importers (each row parsed and checked against its answer).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::scratch().join("train.csv");
    std::fs::write(&path, data).unwrap();
    let _ = datasets::csvio::read(&path);
    let _ = datasets::maze::build::read_csv(&path);
    let _ = datasets::sudoku::build::read_csv(&path, 0);
});
