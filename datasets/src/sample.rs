//! Seeded sampling shared by the builders: every random choice flows from an explicit seed.

use crate::error::DataError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How many of `training` items (puzzles, mazes, tasks) a build carves out for its val split.
/// `requested` when given: `Some(0)` means no val split at all (training keeps every item,
/// as the official builders' would); `training` or more (nothing left to train on) is an
/// error naming `key`. `None`: 10% of them, at least 1, except that fewer than 2 items give 0
/// (no val split: one item cannot be split).
pub fn val_size(
    requested: Option<usize>,
    training: usize,
    key: &str,
    unit: &str,
) -> crate::error::Result<usize> {
    match requested {
        Some(0) => Ok(0),
        Some(n) if n >= training => Err(DataError::config(format!(
            "{key} = {n} leaves nothing to train on: it must be smaller than the {training} training {unit}s it is carved from (0: no val split)"
        ))),
        Some(n) => Ok(n),
        None if training < 2 => Ok(0),
        None => Ok((training / 10).max(1)),
    }
}

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

/// Removes a uniform random subset of `size` rows from `rows` and returns it; both keep
/// their original order. `size` at least `rows.len()` takes every row.
pub fn take_sample<T>(rows: &mut Vec<T>, size: usize, rng: &mut ChaCha8Rng) -> Vec<T> {
    let size = size.min(rows.len());
    let mut chosen = vec![false; rows.len()];
    for i in rand::seq::index::sample(rng, rows.len(), size) {
        chosen[i] = true;
    }
    let (mut taken, mut kept) = (
        Vec::with_capacity(size),
        Vec::with_capacity(rows.len() - size),
    );
    for (row, c) in std::mem::take(rows).into_iter().zip(chosen) {
        if c {
            taken.push(row);
        } else {
            kept.push(row);
        }
    }
    *rows = kept;
    taken
}

/// Independent stream `stream` of `seed`, so parallel work is reproducible whatever the
/// number of threads.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The exact position of a ChaCha stream, for checkpoints: a resumed run draws the same
/// numbers the uninterrupted run would have drawn.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    /// u128 as decimal text (JSON numbers stop at 2^53).
    pub word_pos: String,
}

impl RngState {
    pub fn of(rng: &ChaCha8Rng) -> Self {
        RngState {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    pub fn rebuild(&self) -> Result<ChaCha8Rng, String> {
        let pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| format!("word_pos {:?} is not a number", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }
}

#[cfg(test)]
mod rng_state_tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn val_sizes_default_to_a_tenth_take_zero_as_none_and_refuse_emptying_training() {
        assert_eq!(val_size(None, 4000, "val-size", "maze").unwrap(), 400);
        assert_eq!(val_size(None, 5, "val-size", "maze").unwrap(), 1);
        assert_eq!(val_size(None, 1, "val-size", "maze").unwrap(), 0);
        assert_eq!(val_size(Some(7), 8, "val-size", "maze").unwrap(), 7);
        // An explicit 0: no val split, whatever the training size (even one item, or none).
        for training in [0, 1, 8, 4000] {
            assert_eq!(val_size(Some(0), training, "val-size", "maze").unwrap(), 0);
        }
        let all = val_size(Some(8), 8, "val-tasks", "task")
            .unwrap_err()
            .to_string();
        assert!(
            all.contains("val-tasks = 8") && all.contains("8 training tasks"),
            "{all}"
        );
        let more = val_size(Some(9), 8, "val-size", "maze")
            .unwrap_err()
            .to_string();
        assert!(more.contains("val-size = 9"), "{more}");
    }

    #[test]
    fn a_taken_sample_leaves_the_rest_in_order() {
        let mut rows: Vec<u32> = (0..20).collect();
        let taken = take_sample(&mut rows, 5, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!((taken.len(), rows.len()), (5, 15));
        assert!(taken.windows(2).all(|w| w[0] < w[1]) && rows.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u32> = taken.iter().chain(&rows).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        let mut again: Vec<u32> = (0..20).collect();
        assert_eq!(
            take_sample(&mut again, 5, &mut ChaCha8Rng::seed_from_u64(3)),
            taken
        );
    }

    #[test]
    fn a_rebuilt_stream_continues_where_it_stopped() {
        let mut rng = stream_rng(7, 3);
        let _: Vec<u32> = (0..13).map(|_| rng.random()).collect();
        let mut copy = RngState::of(&rng).rebuild().unwrap();
        let a: Vec<u64> = (0..20).map(|_| rng.random()).collect();
        let b: Vec<u64> = (0..20).map(|_| copy.random()).collect();
        assert_eq!(a, b);
    }
}
