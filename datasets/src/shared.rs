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
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    find(&root, sub, test, required)
}

fn find(root: &std::path::Path, sub: &str, test: &str, required: bool) -> Option<PathBuf> {
    let dir = root.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !required,
        "{test}: ../shared/{sub} is missing, and {REQUIRE_VAR} says it must be there"
    );
    eprintln!("SKIPPED {test}: ../shared/{sub} is not present beside this checkout");
    None
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn a_missing_folder_skips_unless_it_is_required() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("data")).unwrap();
        assert_eq!(
            find(tmp.path(), "data", "a fixture, not a skip", true),
            Some(tmp.path().join("data"))
        );
        assert_eq!(
            find(tmp.path(), "golden", "a fixture, not a skip", false),
            None
        );
        let required =
            std::panic::catch_unwind(|| find(tmp.path(), "golden", "a fixture, not a skip", true));
        assert!(
            required.is_err(),
            "a required folder that is missing fails the test"
        );
    }
}
