//! What a reader sees: CSV rows, tables, charts and HTML pages, computed from records and
//! the science over them. Imports from `science` and `run`.

pub mod charts;
pub mod comparison;
pub mod csv;
pub mod html;
pub mod sweep;
pub mod table;
