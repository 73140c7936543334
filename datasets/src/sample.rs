//! Seeded sampling shared by the builders: every random choice flows from an explicit seed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Keeps a uniform random subset of `size` rows (without replacement, original order kept);
/// the official Sudoku builder's draw, but seeded.
pub fn subsample<T>(rows: &mut Vec<T>, size: Option<usize>, rng: &mut ChaCha8Rng) {
    if let Some(n) = size {
        if n < rows.len() {
            let mut keep = rand::seq::index::sample(rng, rows.len(), n).into_vec();
            keep.sort_unstable();
            let mut taken: Vec<Option<T>> = std::mem::take(rows).into_iter().map(Some).collect();
            *rows = keep
                .into_iter()
                .map(|i| taken[i].take().expect("indices are distinct"))
                .collect();
        }
    }
}

/// Independent stream `stream` of `seed`, so parallel work is reproducible whatever the
/// number of threads.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
