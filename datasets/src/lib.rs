//! Task data for the TRM/HRM harness: Sudoku-Extreme, Maze-Hard, ARC-AGI-1 and ARC-AGI-2,
//! imported from official sources or generated offline, written in the official on-disk
//! layout with a manifest of hashes and seeds, and audited for leaks between splits.

pub mod error;
pub mod format;
pub mod fsio;
pub mod grid;
pub mod manifest;
pub mod npy;
pub mod sudoku;

pub use error::{DataError, Result};
pub mod arc;
pub mod audit;
pub mod csvio;
pub mod loader;
pub mod maze;
pub mod sample;
pub mod score;
pub mod shared;
