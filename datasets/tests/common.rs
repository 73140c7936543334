//! Helpers shared by the integration tests.
#![allow(dead_code)]

use datasets::arc::build::{ArcConfig, ArcProtocol, ArcSource, ArcVersion};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// The shared data folder, or `None` after saying why the calling test is skipped (a
/// failure instead under `HARNESS_REQUIRE_SHARED`).
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    datasets::shared::shared_dir("data", test)
}

/// Writes small ARC-format task folders: `training/` and `evaluation/`.
pub fn arc_fixture(root: &Path) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for (set, n) in [("training", 5), ("evaluation", 4)] {
        std::fs::create_dir_all(root.join(set)).unwrap();
        for t in 0..n {
            let mut pair = || {
                let (h, w) = (rng.random_range(2..6), rng.random_range(2..6));
                let input: Vec<Vec<u8>> = (0..h)
                    .map(|_| (0..w).map(|_| rng.random_range(0..10)).collect())
                    .collect();
                let output: Vec<Vec<u8>> = input.iter().rev().cloned().collect();
                serde_json::json!({ "input": input, "output": output })
            };
            let task = serde_json::json!({ "train": [pair(), pair()], "test": [pair()] });
            std::fs::write(
                root.join(set).join(format!("{set}{t:03}.json")),
                task.to_string(),
            )
            .unwrap();
        }
    }
}

/// An ARC-AGI-1 build of an `arc_fixture` folder: 3 augmentations, seed 9, translated.
pub fn arc_cfg(root: &Path, protocol: ArcProtocol, val_tasks: Option<usize>) -> ArcConfig {
    ArcConfig {
        version: ArcVersion::Arc1,
        source: ArcSource::PublicDirs {
            root: root.to_path_buf(),
            concept: None,
        },
        protocol,
        num_aug: 3,
        seed: 9,
        translate: true,
        max_train_tasks: None,
        max_eval_tasks: None,
        val_tasks,
    }
}
