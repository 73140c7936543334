//! Fixtures shared by the unit tests.

use datasets::format::{Dataset, LoadedDataset, PuzzleCount, Split};

/// A 4-token task with 3 single-example groups in each split, loaded as from disk.
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
        test: split,
        identifiers: vec!["<blank>".into()],
        extra_files: Vec::new(),
        total_puzzles: PuzzleCount::Groups,
    };
    let meta = data.metadata(&data.test);
    LoadedDataset {
        dir: "tiny".into(),
        train_metadata: meta.clone(),
        test_metadata: meta,
        data,
        manifest: None,
    }
}
