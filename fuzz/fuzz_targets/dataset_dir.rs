//! A dataset directory in the official layout: `dataset.json`, the five `.npy` arrays of a
//! split (the same for train and test), `identifiers.json` and `manifest.json`, loaded,
//! checked against the manifest and audited. The input is the eight files in that order,
//! separated by `@@FILE@@`, so real directories make the seed corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

pub const NAMES: [&str; 8] = [
    "dataset.json",
    "all__inputs.npy",
    "all__labels.npy",
    "all__puzzle_indices.npy",
    "all__group_indices.npy",
    "all__puzzle_identifiers.npy",
    "identifiers.json",
    "manifest.json",
];

fn split(data: &[u8]) -> Vec<&[u8]> {
    let sep = b"@@FILE@@";
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(sep.len()).position(|w| w == sep) {
        parts.push(&rest[..at]);
        rest = &rest[at + sep.len()..];
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data);
    let file = |i: usize| parts.get(i).copied().unwrap_or(&[]);
    let dir = scratch::scratch().join("data");
    let _ = std::fs::remove_dir_all(&dir);
    for split in ["train", "test"] {
        let s = dir.join(split);
        std::fs::create_dir_all(&s).unwrap();
        for (i, name) in NAMES.iter().enumerate().take(6) {
            std::fs::write(s.join(name), file(i)).unwrap();
        }
    }
    std::fs::write(dir.join(NAMES[6]), file(6)).unwrap();
    std::fs::write(dir.join(NAMES[7]), file(7)).unwrap();
    if let Ok(loaded) = datasets::format::load_dataset(&dir) {
        if let Some(m) = &loaded.manifest {
            let _ = m.verify(&dir);
        }
        let _ = datasets::audit::audit_dir(&dir);
    }
});
