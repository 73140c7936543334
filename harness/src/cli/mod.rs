//! The command line: one file per subcommand, each parsing its arguments, calling the layers
//! below and printing.

pub mod audit;
pub mod bench;
pub mod collect;
pub mod compare;
pub mod data;
pub mod eval;
pub mod parity;
pub mod plan;
pub mod plot;
pub mod report;
pub mod sweep;
pub mod train;
