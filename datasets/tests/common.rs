//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/data` beside the project, when this checkout has it.
pub fn shared_data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        None
    }
}

/// Returns the shared data folder, or prints why the calling test is skipped.
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    let p = shared_data();
    if p.is_none() {
        eprintln!("SKIPPED {test}: ../shared/data is not present in this checkout");
    }
    p
}
