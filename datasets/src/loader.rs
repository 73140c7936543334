//! Batches as the official `puzzle_dataset.py` draws them, seeded where the official code is
//! not. Training: each epoch is a random permutation of the groups; for each group one random
//! version (puzzle) is taken and its examples, in random order, fill the batch (the last puzzle
//! truncated to fit). Passes follow each other without a cut, so a batch may span two (the
//! official loader drops one partial batch per iteration of many passes; we drop none). Test:
//! examples in order, the last batch padded with PAD inputs, ignored labels and the blank
//! identifier.

use crate::format::{Metadata, Split};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub const IGNORE_LABEL: i64 = -100;

/// One batch in host memory, ready to become tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    pub batch_size: usize,
    pub seq_len: usize,
    /// `[batch_size * seq_len]`
    pub inputs: Vec<u32>,
    /// `[batch_size * seq_len]`, `IGNORE_LABEL` where the label is the ignore id or padding.
    pub labels: Vec<i64>,
    pub puzzle_identifiers: Vec<u32>,
    /// Rows holding real examples (the rest is padding).
    pub real_rows: usize,
    /// Split example index of each real row.
    pub example_indices: Vec<usize>,
}

fn collate(
    split: &Split,
    meta: &Metadata,
    rows: &[(usize, usize)],
    batch_size: usize,
) -> HostBatch {
    let s = split.seq_len;
    let ignore = meta.ignore_label_id;
    let mut b = HostBatch {
        batch_size,
        seq_len: s,
        inputs: vec![meta.pad_id as u32; batch_size * s],
        labels: vec![IGNORE_LABEL; batch_size * s],
        puzzle_identifiers: vec![meta.blank_identifier_id as u32; batch_size],
        real_rows: rows.len(),
        example_indices: rows.iter().map(|r| r.0).collect(),
    };
    for (row, &(example, puzzle)) in rows.iter().enumerate() {
        for (j, (&i, &l)) in split
            .input(example)
            .iter()
            .zip(split.label(example))
            .enumerate()
        {
            b.inputs[row * s + j] = i as u32;
            b.labels[row * s + j] = if Some(l as i64) == ignore {
                IGNORE_LABEL
            } else {
                l as i64
            };
        }
        b.puzzle_identifiers[row] = split.puzzle_identifiers[puzzle] as u32;
    }
    b
}

/// A sampler's position: its random stream, the current pass's group order and progress.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerState {
    pub rng: crate::sample::RngState,
    pub order: Vec<usize>,
    pub next_group: usize,
    pub epochs: u64,
}

/// The training stream: endless, one pass after another. Passes are concatenated, as the
/// official loader concatenates the passes of one iteration, so a batch may span two passes
/// and no pass is cut short: a split whose pass cannot fill one batch still yields batches.
pub struct TrainSampler<'a> {
    split: &'a Split,
    meta: &'a Metadata,
    batch_size: usize,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    next_group: usize,
    /// Completed passes over the groups.
    pub epochs: u64,
}

impl<'a> TrainSampler<'a> {
    pub fn new(
        split: &'a Split,
        meta: &'a Metadata,
        batch_size: usize,
        rng: ChaCha8Rng,
    ) -> Result<Self, String> {
        if split.num_examples() == 0 {
            return Err("the training split has no examples".into());
        }
        if let Some(g) = (0..split.num_groups()).find(|&g| {
            split
                .group_puzzles(g)
                .all(|p| split.puzzle_examples(p).is_empty())
        }) {
            return Err(format!("training group {g} has no examples"));
        }
        if batch_size == 0 {
            return Err("the batch size must be at least 1".into());
        }
        Ok(TrainSampler {
            split,
            meta,
            batch_size,
            rng,
            order: Vec::new(),
            next_group: 0,
            epochs: 0,
        })
    }

    /// Where the stream stands, for a checkpoint.
    pub fn state(&self) -> SamplerState {
        SamplerState {
            rng: crate::sample::RngState::of(&self.rng),
            order: self.order.clone(),
            next_group: self.next_group,
            epochs: self.epochs,
        }
    }

    /// Continues from a saved state of a sampler over the same split and batch size.
    pub fn restore(&mut self, state: &SamplerState) -> Result<(), String> {
        if state.order.iter().any(|&g| g >= self.split.num_groups())
            || state.next_group > state.order.len()
        {
            return Err("the sampler state belongs to another split".into());
        }
        self.rng = state.rng.rebuild()?;
        self.order = state.order.clone();
        self.next_group = state.next_group;
        self.epochs = state.epochs;
        Ok(())
    }

    /// The next group of the stream, starting a new pass (a fresh permutation) when one ends.
    fn next_group(&mut self) -> usize {
        if self.next_group >= self.order.len() {
            if !self.order.is_empty() {
                self.epochs += 1;
            }
            self.order = (0..self.split.num_groups()).collect();
            self.order.shuffle(&mut self.rng);
            self.next_group = 0;
        }
        self.next_group += 1;
        self.order[self.next_group - 1]
    }

    /// The next full batch: for each next group one random version, its examples in random
    /// order, the last version cut to fit (as the official `_sample_batch`).
    pub fn next_batch(&mut self) -> HostBatch {
        let mut rows: Vec<(usize, usize)> = Vec::with_capacity(self.batch_size);
        while rows.len() < self.batch_size {
            let group = self.next_group();
            let puzzle = self.rng.random_range(self.split.group_puzzles(group));
            let mut examples: Vec<usize> = self.split.puzzle_examples(puzzle).collect();
            examples.shuffle(&mut self.rng);
            examples.truncate(self.batch_size - rows.len());
            rows.extend(examples.into_iter().map(|e| (e, puzzle)));
        }
        collate(self.split, self.meta, &rows, self.batch_size)
    }
}

/// The test split in order, in batches of `batch_size`, the last one padded.
pub fn test_batches<'a>(
    split: &'a Split,
    meta: &'a Metadata,
    batch_size: usize,
) -> impl Iterator<Item = HostBatch> + 'a {
    let puzzle_of = split.example_puzzles();
    (0..split.num_examples())
        .step_by(batch_size.max(1))
        .map(move |start| {
            let end = (start + batch_size).min(split.num_examples());
            let rows: Vec<(usize, usize)> = (start..end).map(|e| (e, puzzle_of[e])).collect();
            collate(split, meta, &rows, batch_size)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn split() -> (Split, Metadata) {
        // 3 groups: group 0 has 2 versions of 2 examples, groups 1 and 2 one version of 3.
        let mut s = Split::new(2);
        let ex = |v: u8| ([v, v], [v, 0]);
        for (id, values) in [(1, vec![10, 11]), (2, vec![20, 21])] {
            let e: Vec<([u8; 2], [u8; 2])> = values.into_iter().map(ex).collect();
            s.add_puzzle(id, e.iter().map(|(i, l)| (&i[..], &l[..])));
        }
        s.close_group();
        for (id, base) in [(3, 30), (4, 40)] {
            let e: Vec<([u8; 2], [u8; 2])> = (0..3).map(|k| ex(base + k)).collect();
            s.add_puzzle(id, e.iter().map(|(i, l)| (&i[..], &l[..])));
            s.close_group();
        }
        let meta = Metadata {
            pad_id: 0,
            ignore_label_id: Some(0),
            blank_identifier_id: 0,
            vocab_size: 50,
            seq_len: 2,
            num_puzzle_identifiers: 5,
            total_groups: 3,
            mean_puzzle_examples: 2.5,
            total_puzzles: Some(4),
            sets: vec!["all".into()],
        };
        (s, meta)
    }

    #[test]
    fn labels_are_ignored_and_rows_match_their_puzzles() {
        let (s, meta) = split();
        let mut sampler = TrainSampler::new(&s, &meta, 4, ChaCha8Rng::seed_from_u64(0)).unwrap();
        for _ in 0..50 {
            let b = sampler.next_batch();
            assert_eq!(b.real_rows, 4);
            // Label 0 (the ignore id) becomes -100; inputs keep their tokens.
            assert!(b
                .labels
                .iter()
                .skip(1)
                .step_by(2)
                .all(|&l| l == IGNORE_LABEL));
            for (row, &e) in b.example_indices.iter().enumerate() {
                let puzzle = s.example_puzzles()[e];
                assert_eq!(
                    b.puzzle_identifiers[row],
                    s.puzzle_identifiers[puzzle] as u32
                );
                assert_eq!(b.inputs[row * 2], s.input(e)[0] as u32);
            }
        }
        assert!(sampler.epochs > 10);
    }

    #[test]
    fn test_batches_cover_every_example_once_with_padding() {
        let (s, meta) = split();
        let batches: Vec<HostBatch> = test_batches(&s, &meta, 4).collect();
        assert_eq!(batches.len(), 3);
        let seen: Vec<usize> = batches
            .iter()
            .flat_map(|b| b.example_indices.clone())
            .collect();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let last = &batches[2];
        assert_eq!(last.real_rows, 2);
        assert_eq!(&last.inputs[4..], &[0, 0, 0, 0]);
        assert!(last.labels[4..].iter().all(|&l| l == IGNORE_LABEL));
        assert_eq!(&last.puzzle_identifiers[2..], &[0, 0]);
    }

    #[test]
    fn a_restored_sampler_draws_the_same_batches() {
        let (s, meta) = split();
        let mut a = TrainSampler::new(&s, &meta, 4, ChaCha8Rng::seed_from_u64(3)).unwrap();
        for _ in 0..7 {
            a.next_batch();
        }
        let state = a.state();
        let mut b = TrainSampler::new(&s, &meta, 4, ChaCha8Rng::seed_from_u64(99)).unwrap();
        b.restore(&state).unwrap();
        for _ in 0..9 {
            assert_eq!(a.next_batch(), b.next_batch());
        }
        assert_eq!(a.epochs, b.epochs);
    }

    #[test]
    fn the_group_stream_is_a_concatenation_of_permutations() {
        let (s, meta) = split();
        let mut sampler = TrainSampler::new(&s, &meta, 5, ChaCha8Rng::seed_from_u64(1)).unwrap();
        let groups: Vec<usize> = (0..30).map(|_| sampler.next_group()).collect();
        for pass in groups.chunks(3) {
            let mut sorted = pass.to_vec();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2], "{groups:?}");
        }
        assert_eq!(sampler.epochs, 9);
    }

    #[test]
    fn a_batch_larger_than_a_pass_is_filled_from_several_passes() {
        // The official loader's behaviour; this used to loop forever.
        let (s, meta) = split();
        let mut sampler = TrainSampler::new(&s, &meta, 20, ChaCha8Rng::seed_from_u64(0)).unwrap();
        let b = sampler.next_batch();
        assert_eq!(b.real_rows, 20);
        assert!(sampler.epochs >= 2);
    }
}
