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
    read_from(file, path)
}

/// Reads rows from any reader; `path` names the source in errors.
pub fn read_from(source: impl std::io::Read, path: &Path) -> Result<Vec<PuzzleRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::None)
        .flexible(true)
        .from_reader(NewlineIndex::new(source));
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
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| DataError::format(path, format!("malformed CSV: {e}")))?;
        if !more {
            break;
        }
        let byte = record.position().map_or(0, |p| p.byte());
        let line = reader.get_ref().line_of(byte);
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

/// A reader that notes where every `\n` is, so a record's byte offset gives its line in the
/// file: the csv crate's own line count is one short with `\r\n` line ends.
struct NewlineIndex<R> {
    inner: R,
    consumed: u64,
    newlines: Vec<u64>,
}

impl<R> NewlineIndex<R> {
    fn new(inner: R) -> Self {
        NewlineIndex {
            inner,
            consumed: 0,
            newlines: Vec::new(),
        }
    }

    /// 1-based line of the record the csv crate places at `offset`. After `\r\n` it places
    /// the next record at the `\n`, so a newline at the offset itself ends the line before.
    fn line_of(&self, offset: u64) -> u64 {
        1 + self.newlines.partition_point(|&n| n <= offset) as u64
    }
}

impl<R: std::io::Read> std::io::Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.consumed;
        self.newlines.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| start + i as u64),
        );
        self.consumed += n as u64;
        Ok(n)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_errors_carry_their_line_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.csv");
        std::fs::write(
            &path,
            "source,question,answer,rating\na,q1,a1,0\nb,q2,a2,1\n",
        )
        .unwrap();
        let rows = read(&path).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        std::fs::write(&path, "source,question,answer,rating\na,q1,a1,0\nb,q2,a2\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        // \r\n line ends (the csv crate counted one line short), an empty line, a quoted
        // field spanning two lines.
        for (text, line) in [
            (
                "source,question,answer,rating\r\na,q1,a1,0\r\nb,q2,a2\r\n",
                3,
            ),
            ("source,question,answer,rating\n\na,q1,a1,0\nb,q2,a2\n", 4),
            (
                "source,question,answer,rating\na,\"q\n1\",a1,0\nb,q2,a2\n",
                4,
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("line {line}:")), "{text:?}: {err}");
        }
    }
}
