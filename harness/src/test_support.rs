//! Fixtures shared by the unit tests.

use datasets::format::{Dataset, LoadedDataset, PuzzleCount, Split};

/// The committed reference comparison (the README's main job): 6 seeds x 2 models.
pub fn reference_records() -> Vec<crate::science::record::ResultRecord> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results/reference/maze-hard-cpu/records");
    crate::science::record::read_records(&dir).unwrap()
}

/// A 4-token task with 3 single-example groups in each split (val included), loaded as
/// from disk.
pub fn tiny_data() -> LoadedDataset {
    let mut split = Split::new(4);
    for v in 1..=3u8 {
        split.add_puzzle(0, [(&[v, v, v, v][..], &[v, 1, 2, 3][..])]);
        split.close_group();
    }
    let data = Dataset {
        vocab_size: 6,
        num_puzzle_identifiers: 1,
        train: split.clone(),
        val: Some(split.clone()),
        test: split,
        identifiers: vec!["<blank>".into()],
        extra_files: Vec::new(),
        total_puzzles: PuzzleCount::Groups,
    };
    let meta = data.metadata(&data.test);
    LoadedDataset {
        dir: "tiny".into(),
        train_metadata: meta.clone(),
        val_metadata: Some(meta.clone()),
        test_metadata: meta,
        data,
        manifest: None,
    }
}
