//! `../shared` beside the checkout: task data, the official code's golden tensors and the
//! official repository, which tests and benchmarks may read but the project never holds.
//! Where it is missing a test skips, saying so, so a fresh clone still runs its tests;
//! under `HARNESS_REQUIRE_SHARED=1` (CI sets it) a missing folder fails the test instead, so
//! a green run cannot rest on skips.

use std::path::PathBuf;

pub const REQUIRE_VAR: &str = "HARNESS_REQUIRE_SHARED";

/// `../shared/<sub>`, or `None` (after a `SKIPPED` line) when it is not there.
///
/// # Panics
/// When the folder is missing and `HARNESS_REQUIRE_SHARED` is set to anything but `0`.
pub fn shared_dir(sub: &str, test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{test}: ../shared/{sub} is missing, and {REQUIRE_VAR} says it must be there"
    );
    eprintln!("SKIPPED {test}: ../shared/{sub} is not present beside this checkout");
    None
}
