//! The one CSV writer: rows as lines with RFC 4180 quoting, appended whole through
//! `datasets::fsio::append_rows` (training logs, result tables) or written whole.

use anyhow::Result;
use std::path::Path;

/// A field quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row, line end included.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Appends rows to the table at `path` (header first when new); returns its new length.
pub fn append(path: &Path, header: &str, rows: &[Vec<String>]) -> Result<u64> {
    let text: String = rows.iter().map(|r| csv_line(r)).collect();
    Ok(datasets::fsio::append_rows(path, header, &text)?)
}

/// Writes exactly these rows (header first), replacing the file atomically.
pub fn write(path: &Path, header: &str, rows: &[Vec<String>]) -> Result<()> {
    let mut text = format!("{header}\n");
    text.extend(rows.iter().map(|r| csv_line(r)));
    Ok(datasets::fsio::write_atomic(path, text.as_bytes())?)
}

/// `Some(v)` to six decimals, `None` as an empty field.
pub fn opt6(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_line_breaks_are_quoted() {
        assert_eq!(csv_field("cpu"), "cpu");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_line(&["a", "b\nc"]), "a,\"b\nc\"\n");
    }
}
