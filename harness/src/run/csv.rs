//! The one CSV writer: rows formatted by the `csv` crate (as `datasets` writes and reads),
//! appended whole through `datasets::fsio::append_rows` (training logs, result tables) or
//! written whole, atomically.

use anyhow::Result;
use std::path::Path;

/// The rows as CSV text (the `csv` crate's quoting: a field holding a comma, a quote or a
/// line break is quoted), each line ending in `\n`.
fn csv_lines(rows: &[Vec<String>]) -> Result<String> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for row in rows {
        writer.write_record(row)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing CSV rows: {}", e.error()))?;
    Ok(String::from_utf8(bytes)?)
}

/// Appends rows to the table at `path` (header first when new); returns its new length.
pub fn append(path: &Path, header: &str, rows: &[Vec<String>]) -> Result<u64> {
    Ok(datasets::fsio::append_rows(
        path,
        header,
        &csv_lines(rows)?,
    )?)
}

/// Writes exactly these rows (header first), replacing the file atomically.
pub fn write(path: &Path, header: &str, rows: &[Vec<String>]) -> Result<()> {
    let text = format!("{header}\n{}", csv_lines(rows)?);
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
        let row = |fields: &[&str]| vec![fields.iter().map(|f| f.to_string()).collect()];
        assert_eq!(csv_lines(&row(&["cpu", "", "7"])).unwrap(), "cpu,,7\n");
        assert_eq!(csv_lines(&row(&["a, b"])).unwrap(), "\"a, b\"\n");
        assert_eq!(
            csv_lines(&row(&["say \"hi\""])).unwrap(),
            "\"say \"\"hi\"\"\"\n"
        );
        assert_eq!(csv_lines(&row(&["a", "b\nc"])).unwrap(), "a,\"b\nc\"\n");
    }
}
