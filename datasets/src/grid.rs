//! Rectangular grids of small integers and the dihedral group acting on them, with the
//! official numbering (dataset/common.py): 0 identity, 1 rot90 (NumPy, counter-clockwise),
//! 2 rot180, 3 rot270, 4 flip left-right, 5 flip up-down, 6 transpose, 7 anti-transpose.

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grid {
    pub height: usize,
    pub width: usize,
    /// Row-major cells.
    pub cells: Vec<u8>,
}

pub const DIHEDRAL_COUNT: u8 = 8;
/// `DIHEDRAL_INVERSE[t]` undoes transform `t`.
pub const DIHEDRAL_INVERSE: [u8; 8] = [0, 3, 2, 1, 4, 5, 6, 7];

impl Grid {
    pub fn new(height: usize, width: usize, cells: Vec<u8>) -> Self {
        assert_eq!(
            height * width,
            cells.len(),
            "grid cells do not match its shape"
        );
        Grid {
            height,
            width,
            cells,
        }
    }

    pub fn filled(height: usize, width: usize, value: u8) -> Self {
        Grid {
            height,
            width,
            cells: vec![value; height * width],
        }
    }

    pub fn get(&self, r: usize, c: usize) -> u8 {
        self.cells[r * self.width + c]
    }

    pub fn set(&mut self, r: usize, c: usize, v: u8) {
        self.cells[r * self.width + c] = v;
    }

    /// Applies dihedral transform `t` (official numbering).
    pub fn dihedral(&self, t: u8) -> Grid {
        let (h, w) = (self.height, self.width);
        let swaps = matches!(t, 1 | 3 | 6 | 7);
        let (oh, ow) = if swaps { (w, h) } else { (h, w) };
        let mut cells = Vec::with_capacity(h * w);
        for i in 0..oh {
            for j in 0..ow {
                let (r, c) = match t {
                    0 => (i, j),
                    1 => (j, w - 1 - i),
                    2 => (h - 1 - i, w - 1 - j),
                    3 => (h - 1 - j, i),
                    4 => (i, w - 1 - j),
                    5 => (h - 1 - i, j),
                    6 => (j, i),
                    7 => (h - 1 - j, w - 1 - i),
                    _ => panic!("dihedral transform id {t} is not in 0..8"),
                };
                cells.push(self.get(r, c));
            }
        }
        Grid {
            height: oh,
            width: ow,
            cells,
        }
    }

    pub fn map_values(&self, f: impl Fn(u8) -> u8) -> Grid {
        Grid {
            height: self.height,
            width: self.width,
            cells: self.cells.iter().map(|&v| f(v)).collect(),
        }
    }

    /// Draws the grid with one character per cell.
    pub fn render(&self, glyph: impl Fn(u8) -> char) -> String {
        let mut s = String::with_capacity(self.height * (self.width + 1));
        for r in 0..self.height {
            s.extend(
                self.cells[r * self.width..(r + 1) * self.width]
                    .iter()
                    .map(|&v| glyph(v)),
            );
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_numpy_conventions() {
        let g = Grid::new(2, 3, vec![1, 2, 3, 4, 5, 6]);
        // np.rot90([[1,2,3],[4,5,6]]) == [[3,6],[2,5],[1,4]]
        assert_eq!(g.dihedral(1).cells, vec![3, 6, 2, 5, 1, 4]);
        assert_eq!(g.dihedral(3).cells, vec![4, 1, 5, 2, 6, 3]);
        assert_eq!(g.dihedral(4).cells, vec![3, 2, 1, 6, 5, 4]);
        assert_eq!(g.dihedral(5).cells, vec![4, 5, 6, 1, 2, 3]);
        assert_eq!(g.dihedral(6).cells, vec![1, 4, 2, 5, 3, 6]);
        // np.fliplr(np.rot90(g)) == [[6,3],[5,2],[4,1]]
        assert_eq!(g.dihedral(7).cells, vec![6, 3, 5, 2, 4, 1]);
    }

    proptest! {
        #[test]
        fn inverse_undoes_every_transform(h in 1usize..7, w in 1usize..7, seed in any::<u64>(), t in 0u8..8) {
            let cells: Vec<u8> = (0..h * w).map(|i| ((seed >> (i % 60)) as u8) ^ (i as u8)).collect();
            let g = Grid::new(h, w, cells);
            prop_assert_eq!(g.dihedral(t).dihedral(DIHEDRAL_INVERSE[t as usize]), g);
        }
    }
}
