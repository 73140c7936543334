//! One error type for every way task data can be wrong. Each variant names the file and
//! the place (row, task, field) so a user can fix the input without reading our code.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The I/O error is part of the message, not a `source`: reported both ways, chains
    /// printed with `{:#}` said it twice.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },
    #[error("{path}, {place}: {what}")]
    Record {
        path: PathBuf,
        place: String,
        what: String,
    },
    #[error("{0}")]
    Config(String),
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error: source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            what: what.into(),
        }
    }
    pub fn record(
        path: impl Into<PathBuf>,
        place: impl Into<String>,
        what: impl Into<String>,
    ) -> Self {
        DataError::Record {
            path: path.into(),
            place: place.into(),
            what: what.into(),
        }
    }
    pub fn config(what: impl Into<String>) -> Self {
        DataError::Config(what.into())
    }
}

pub type Result<T> = std::result::Result<T, DataError>;
