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
    fn a_rebuilt_stream_continues_where_it_stopped() {
        let mut rng = stream_rng(7, 3);
        let _: Vec<u32> = (0..13).map(|_| rng.random()).collect();
        let mut copy = RngState::of(&rng).rebuild().unwrap();
        let a: Vec<u64> = (0..20).map(|_| rng.random()).collect();
        let b: Vec<u64> = (0..20).map(|_| copy.random()).collect();
        assert_eq!(a, b);
    }
}
