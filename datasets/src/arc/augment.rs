//! ARC augmentation as in the official builders: one dihedral transform and one permutation of
//! colours 1-9 (0, the background, fixed) applied to every grid of a task; versions whose grids
//! coincide with an earlier version's are dropped. Each version has an exact inverse, needed to
//! map predictions back before voting.

use super::ArcTask;
use crate::grid::{Grid, DIHEDRAL_INVERSE};
use rand::seq::SliceRandom;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Retries per wanted version before giving up (the official `ARCAugmentRetriesFactor`).
pub const RETRIES_FACTOR: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ArcAugmentation {
    pub dihedral: u8,
    /// `colours[c]` is the new colour of `c`; `colours[0] == 0`.
    pub colours: [u8; 10],
}

impl ArcAugmentation {
    pub fn identity() -> Self {
        ArcAugmentation {
            dihedral: 0,
            colours: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
    }

    pub fn random(rng: &mut impl Rng) -> Self {
        let mut colours = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        colours[1..].shuffle(rng);
        ArcAugmentation {
            dihedral: rng.random_range(0..8),
            colours,
        }
    }

    pub fn is_identity(&self) -> bool {
        *self == Self::identity()
    }

    /// Colours first, then the dihedral transform, as `dihedral_transform(mapping[grid], t)`.
    pub fn apply(&self, g: &Grid) -> Grid {
        g.map_values(|c| self.colours[c as usize])
            .dihedral(self.dihedral)
    }

    pub fn inverse(&self) -> Self {
        let mut colours = [0u8; 10];
        for (c, &m) in self.colours.iter().enumerate() {
            colours[m as usize] = c as u8;
        }
        ArcAugmentation {
            dihedral: DIHEDRAL_INVERSE[self.dihedral as usize],
            colours,
        }
    }

    /// Undoes `apply` (the inverse applies its dihedral first, then its colours).
    pub fn invert(&self, g: &Grid) -> Grid {
        let inv = self.inverse();
        g.dihedral(inv.dihedral)
            .map_values(|c| inv.colours[c as usize])
    }

    /// The version name: the bare task id for the original, else `<id>|||t<t>|||<colours>`
    /// (TRM's separator).
    pub fn name(&self, task_id: &str) -> String {
        if self.is_identity() {
            task_id.to_string()
        } else {
            let map: String = self.colours.iter().map(|c| (b'0' + c) as char).collect();
            format!("{task_id}|||t{}|||{map}", self.dihedral)
        }
    }

    /// Parses a version name back into the task id and augmentation: TRM's
    /// `<id>|||t<T>|||<map>`, HRM's `<id>_t<T>_<map>`, or a bare id (the original).
    pub fn parse_name(name: &str) -> Option<(String, Self)> {
        let parts: Vec<&str> = name.split("|||").collect();
        let (id, t, map) = match parts.as_slice() {
            [id, t, map] => (*id, *t, *map),
            [bare] => match bare.rsplitn(3, '_').collect::<Vec<_>>().as_slice() {
                [map, t, id]
                    if t.starts_with('t')
                        && map.len() == 10
                        && map.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    (*id, *t, *map)
                }
                _ => return Some((bare.to_string(), Self::identity())),
            },
            _ => return None,
        };
        let dihedral: u8 = t.strip_prefix('t')?.parse().ok().filter(|&t: &u8| t < 8)?;
        let digits: Vec<u8> = map.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        let mut sorted = digits.clone();
        sorted.sort_unstable();
        if digits.len() != 10 || digits[0] != 0 || sorted != (0..10).collect::<Vec<u8>>() {
            return None;
        }
        Some((
            id.to_string(),
            ArcAugmentation {
                dihedral,
                colours: digits.try_into().ok()?,
            },
        ))
    }
}

/// A fingerprint of a task version: the sorted hashes of its (input, output) pairs.
fn version_fingerprint(task: &ArcTask, aug: &ArcAugmentation) -> [u8; 32] {
    let mut pair_hashes: Vec<[u8; 32]> = task
        .train
        .iter()
        .chain(&task.test)
        .map(|p| {
            let mut h = Sha256::new();
            for g in [aug.apply(&p.input), aug.apply(&p.output)] {
                h.update([g.height as u8, g.width as u8]);
                h.update(&g.cells);
            }
            h.finalize().into()
        })
        .collect();
    pair_hashes.sort_unstable();
    let mut h = Sha256::new();
    for p in &pair_hashes {
        h.update(p);
    }
    h.finalize().into()
}

/// The original followed by up to `num_aug` distinct random versions, drawn with up to
/// `RETRIES_FACTOR * num_aug` tries (symmetric or few-colour tasks may end up with fewer).
pub fn task_versions(task: &ArcTask, num_aug: usize, rng: &mut impl Rng) -> Vec<ArcAugmentation> {
    let mut versions = vec![ArcAugmentation::identity()];
    let mut seen: HashSet<[u8; 32]> = HashSet::from([version_fingerprint(task, &versions[0])]);
    for _ in 0..RETRIES_FACTOR * num_aug {
        if versions.len() > num_aug {
            break;
        }
        let aug = ArcAugmentation::random(rng);
        if seen.insert(version_fingerprint(task, &aug)) {
            versions.push(aug);
        }
    }
    versions
}

/// A key shared by exactly the grid tuples that one augmentation maps onto each other: the
/// smallest encoding over the 8 dihedral transforms, with colours 1-9 relabelled in order of
/// first appearance (0 fixed). Hashed to 16 bytes to keep large audits small in memory.
pub fn canonical_key(grids: &[&Grid]) -> [u8; 16] {
    let mut best: Option<Vec<u8>> = None;
    for t in 0..8 {
        let mut relabel = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut next = 1u8;
        let mut bytes = Vec::new();
        for g in grids {
            let d = g.dihedral(t);
            bytes.extend([d.height as u8, d.width as u8]);
            for &c in &d.cells {
                if c != 0 && relabel[c as usize] == 0 {
                    relabel[c as usize] = next;
                    next += 1;
                }
                bytes.push(if c == 0 { 0 } else { relabel[c as usize] });
            }
        }
        if best.as_ref().is_none_or(|b| bytes < *b) {
            best = Some(bytes);
        }
    }
    let digest = Sha256::digest(best.expect("eight transforms"));
    digest[..16].try_into().expect("16 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn invert_undoes_apply(seed in any::<u64>(), h in 1usize..8, w in 1usize..8) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let g = Grid::new(h, w, (0..h * w).map(|_| rng.random_range(0..10)).collect());
            let aug = ArcAugmentation::random(&mut rng);
            prop_assert_eq!(aug.invert(&aug.apply(&g)), g.clone());
            prop_assert_eq!(aug.inverse().inverse(), aug);
            prop_assert_eq!(aug.apply(&g).cells.iter().filter(|&&c| c == 0).count(), g.cells.iter().filter(|&&c| c == 0).count());
            let (id, back) = ArcAugmentation::parse_name(&aug.name("abc123")).unwrap();
            prop_assert_eq!(id, "abc123");
            prop_assert_eq!(back, aug);
        }
    }

    #[test]
    fn hrm_names_parse_too() {
        let (id, aug) = ArcAugmentation::parse_name("007bbfb7_t3_0918273645").unwrap();
        assert_eq!(
            (id.as_str(), aug.dihedral, aug.colours),
            ("007bbfb7", 3, [0, 9, 1, 8, 2, 7, 3, 6, 4, 5])
        );
        // A ConceptARC id with underscores but no version suffix stays whole.
        assert_eq!(ArcAugmentation::parse_name("Count_3").unwrap().0, "Count_3");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(ArcAugmentation::parse_name("x|||t9|||0123456789").is_none());
        assert!(ArcAugmentation::parse_name("x|||t1|||1023456789").is_none());
        assert!(ArcAugmentation::parse_name("x|||t1|||0113456789").is_none());
    }
}
