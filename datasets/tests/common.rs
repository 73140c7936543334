//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data folder, or `None` after saying why the calling test is skipped (a
/// failure instead under `HARNESS_REQUIRE_SHARED`).
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    datasets::shared::shared_dir("data", test)
}
