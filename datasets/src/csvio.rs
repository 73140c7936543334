//! The `source,question,answer,rating` CSV layout shared by the official Sudoku-Extreme and
//! Maze-Hard files. Fields are kept byte for byte: maze rows begin and end with spaces.

use crate::error::{DataError, Result};
use std::path::Path;

pub const HEADER: [&str; 4] = ["source", "question", "answer", "rating"];

#[derive(Debug, Clone, PartialEq)]
pub struct PuzzleRow {
    /// 1-based line of the row in its file, for error messages.
    pub line: u64,
    pub source: String,
    pub question: String,
    pub answer: String,
    pub rating: String,
}

pub fn read(path: &Path) -> Result<Vec<PuzzleRow>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::None)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let header = reader
        .headers()
        .map_err(|e| DataError::format(path, format!("cannot read the header: {e}")))?
        .clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(DataError::record(
            path,
            "line 1",
            format!(
                "header {:?} is not source,question,answer,rating",
                header.iter().collect::<Vec<_>>()
            ),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| DataError::format(path, format!("malformed CSV: {e}")))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != 4 {
            return Err(DataError::record(
                path,
                format!("line {line}"),
                format!("expected 4 fields, found {}", record.len()),
            ));
        }
        rows.push(PuzzleRow {
            line,
            source: record[0].into(),
            question: record[1].into(),
            answer: record[2].into(),
            rating: record[3].into(),
        });
    }
    Ok(rows)
}

impl PuzzleRow {
    pub fn place(&self) -> String {
        format!("line {}", self.line)
    }
    pub fn rating_u32(&self, path: &Path) -> Result<u32> {
        self.rating.trim().parse().map_err(|_| {
            DataError::record(
                path,
                self.place(),
                format!("rating {:?} is not a whole number", self.rating),
            )
        })
    }
}

/// Serialises rows in the same layout, so a split can be re-imported or diffed.
pub fn write(rows: impl IntoIterator<Item = [String; 4]>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).expect("writing to memory");
    for r in rows {
        w.write_record(&r).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}
