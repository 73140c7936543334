//! Grid <-> 30x30 token canvas (`np_grid_to_seq_translational_augment`): colour c becomes
//! token c + 2, the grid sits at offset (r0, c0), an EOS row (token 1) lies directly below it
//! and an EOS column directly right of it where they fit; everything else is PAD (0).

use super::MAX_SIDE;
use crate::grid::Grid;

pub const SEQ_LEN: usize = MAX_SIDE * MAX_SIDE;
pub const VOCAB_SIZE: usize = 12;
pub const PAD: u8 = 0;
pub const EOS: u8 = 1;
pub const COLOUR_OFFSET: u8 = 2;

pub fn encode(g: &Grid, r0: usize, c0: usize) -> Vec<u8> {
    assert!(
        r0 + g.height <= MAX_SIDE && c0 + g.width <= MAX_SIDE,
        "grid does not fit the canvas at this offset"
    );
    let mut canvas = vec![PAD; SEQ_LEN];
    for r in 0..g.height {
        for c in 0..g.width {
            canvas[(r0 + r) * MAX_SIDE + c0 + c] = g.get(r, c) + COLOUR_OFFSET;
        }
    }
    if r0 + g.height < MAX_SIDE {
        for c in c0..c0 + g.width {
            canvas[(r0 + g.height) * MAX_SIDE + c] = EOS;
        }
    }
    if c0 + g.width < MAX_SIDE {
        for r in r0..r0 + g.height {
            canvas[r * MAX_SIDE + c0 + g.width] = EOS;
        }
    }
    canvas
}

/// The grid of a canvas written by `encode` at any offset: the bounding box of colour tokens.
pub fn decode(canvas: &[u8]) -> Option<Grid> {
    let colour = |i: usize| canvas[i] >= COLOUR_OFFSET && canvas[i] < COLOUR_OFFSET + 10;
    let cells: Vec<usize> = (0..canvas.len()).filter(|&i| colour(i)).collect();
    let (&first, &last) = (cells.first()?, cells.last()?);
    let (r0, r1) = (first / MAX_SIDE, last / MAX_SIDE);
    let c0 = cells.iter().map(|i| i % MAX_SIDE).min()?;
    let c1 = cells.iter().map(|i| i % MAX_SIDE).max()?;
    let mut g = Grid::filled(r1 - r0 + 1, c1 - c0 + 1, 0);
    for r in r0..=r1 {
        for c in c0..=c1 {
            let t = canvas[r * MAX_SIDE + c];
            if !colour(r * MAX_SIDE + c) {
                return None;
            }
            g.set(r - r0, c - c0, t - COLOUR_OFFSET);
        }
    }
    Some(g)
}

/// The official evaluator's `_crop` of a predicted canvas: the largest top-left rectangle of
/// colour tokens, growing row by row while each row's run of colours can only shrink.
pub fn crop_prediction(canvas: &[u8]) -> Option<Grid> {
    let is_colour = |t: u8| (COLOUR_OFFSET..COLOUR_OFFSET + 10).contains(&t);
    let mut best: Option<(usize, usize)> = None;
    let mut best_area = 0;
    let mut num_c = MAX_SIDE;
    for num_r in 1..=MAX_SIDE {
        if let Some(c) = (0..num_c).find(|&c| !is_colour(canvas[(num_r - 1) * MAX_SIDE + c])) {
            num_c = c;
        }
        if num_r * num_c > best_area {
            best_area = num_r * num_c;
            best = Some((num_r, num_c));
        }
    }
    let (h, w) = best?;
    Some(Grid::new(
        h,
        w,
        (0..h * w)
            .map(|i| canvas[(i / w) * MAX_SIDE + i % w] - COLOUR_OFFSET)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn eos_border_and_corner() {
        let g = Grid::new(2, 3, vec![0, 1, 2, 3, 4, 5]);
        let canvas = encode(&g, 0, 0);
        assert_eq!(&canvas[..4], &[2, 3, 4, EOS]);
        assert_eq!(
            &canvas[2 * MAX_SIDE..2 * MAX_SIDE + 4],
            &[EOS, EOS, EOS, PAD]
        );
        let full = Grid::filled(30, 30, 7);
        assert!(encode(&full, 0, 0).iter().all(|&t| t == 9));
    }

    proptest! {
        #[test]
        fn decode_and_crop_invert_encode(h in 1usize..=30, w in 1usize..=30, seed in any::<u64>(), dr in 0usize..30, dc in 0usize..30) {
            let g = Grid::new(h, w, (0..h * w).map(|i| ((seed >> (i % 61)) % 10) as u8).collect());
            let (r0, c0) = (dr % (31 - h), dc % (31 - w));
            prop_assert_eq!(decode(&encode(&g, r0, c0)), Some(g.clone()));
            prop_assert_eq!(crop_prediction(&encode(&g, 0, 0)), Some(g));
        }
    }
}
