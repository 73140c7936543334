//! Maze-Hard-like instances, following the recipe of Lehnert et al. (Searchformer) that the
//! HRM paper adopts: a number of walls drawn uniformly between 30% and 50% of the cells at
//! random positions, start and goal drawn among the free cells (up to 100 draws per wall
//! layout), kept when the shortest path is longer than the threshold (110 moves for 30x30).
//! These are random-wall grids, not corridor mazes.

use super::{solve, GOAL, OPEN, START, WALL};
use crate::grid::Grid;
use crate::sample::stream_rng;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MazeSpec {
    pub side: usize,
    pub min_wall_fraction: f64,
    pub max_wall_fraction: f64,
    /// Keep a maze only if its shortest path is longer than this many moves.
    pub min_path_moves: u32,
    /// Start/goal draws per wall layout before a new layout is drawn.
    pub endpoint_tries: usize,
}

impl Default for MazeSpec {
    /// Maze-Hard 30x30 as in the HRM paper.
    fn default() -> Self {
        MazeSpec {
            side: 30,
            min_wall_fraction: 0.3,
            max_wall_fraction: 0.5,
            min_path_moves: 110,
            endpoint_tries: 100,
        }
    }
}

impl MazeSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.side < 2 || self.side > 64 {
            return Err(format!("maze side {} must be between 2 and 64", self.side));
        }
        if !(0.0..1.0).contains(&self.min_wall_fraction)
            || !(self.min_wall_fraction..1.0).contains(&self.max_wall_fraction)
        {
            return Err(format!(
                "wall fractions [{}, {}] must satisfy 0 <= min <= max < 1",
                self.min_wall_fraction, self.max_wall_fraction
            ));
        }
        if self.min_path_moves as usize >= self.side * self.side {
            return Err(format!(
                "a path longer than {} moves cannot fit in a {}x{} grid",
                self.min_path_moves, self.side, self.side
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedMaze {
    pub input: Vec<u8>,
    pub label: Vec<u8>,
    pub path_moves: u32,
    /// Wall layouts drawn before this one was accepted (a measure of the filter's rarity).
    pub layouts_tried: u64,
}

/// Draws layouts until one yields a start/goal pair far enough apart.
///
/// This is the plain rejection process (same random draws, same acceptance rule); only the
/// test "is d(S, G) > threshold?" is made cheap. Per layout, two breadth-first searches from
/// landmarks bound every distance by the triangle inequality: layouts whose components are all
/// too small to hold such a path are skipped, most start/goal draws are decided by the bounds,
/// and only undecided ones need a search of their own.
pub fn generate_one(
    spec: &MazeSpec,
    rng: &mut impl Rng,
    max_layouts: u64,
) -> Option<GeneratedMaze> {
    generate_one_checked(spec, rng, max_layouts, true)
}

/// `use_bounds: false` decides every draw with a full search instead of the landmark bounds;
/// the tests check that both give the same mazes.
fn generate_one_checked(
    spec: &MazeSpec,
    rng: &mut impl Rng,
    max_layouts: u64,
    use_bounds: bool,
) -> Option<GeneratedMaze> {
    let cells = spec.side * spec.side;
    let lo = (cells as f64 * spec.min_wall_fraction).floor() as usize;
    let hi = (cells as f64 * spec.max_wall_fraction).floor() as usize;
    let threshold = spec.min_path_moves;
    let mut field = DistanceField::new(spec.side);
    let mut order: Vec<usize> = (0..cells).collect();
    let mut tokens = vec![OPEN; cells];
    let mut free = Vec::with_capacity(cells);
    for layouts in 1..=max_layouts {
        // A uniform random set of `walls` cells: the head of a partial Fisher-Yates shuffle.
        let walls = rng.random_range(lo..=hi);
        for i in 0..walls {
            let j = rng.random_range(i..cells);
            order.swap(i, j);
        }
        if !field.may_host(&order[..walls], threshold) {
            continue;
        }
        tokens.fill(OPEN);
        for &w in &order[..walls] {
            tokens[w] = WALL;
        }
        free.clear();
        free.extend((0..cells).filter(|&c| tokens[c] == OPEN));
        field.prepare(&tokens);
        for _ in 0..spec.endpoint_tries {
            let s = free[rng.random_range(0..free.len())];
            let g = free[rng.random_range(0..free.len())];
            if s == g || (use_bounds && !field.may_exceed(s, g, threshold)) {
                continue;
            }
            tokens[s] = START;
            tokens[g] = GOAL;
            if let Some((label, moves)) =
                solve(&tokens).expect("one start and one goal were placed")
            {
                if moves > threshold {
                    return Some(GeneratedMaze {
                        input: tokens,
                        label,
                        path_moves: moves,
                        layouts_tried: layouts,
                    });
                }
            }
            tokens[s] = OPEN;
            tokens[g] = OPEN;
        }
    }
    None
}

/// Per-layout landmark distances used to decide most distance tests without a search. It
/// works on a copy of the grid padded with a wall border, so neighbours need no bounds
/// checks, and marks visits with a per-search stamp, so nothing is reset between searches.
struct DistanceField {
    /// Padded width: side + 2.
    width: usize,
    /// Padded index, and row and column, of every grid cell.
    padded: Vec<usize>,
    row_col: Vec<(u8, u8)>,
    open: Vec<bool>,
    /// A cell's `dist` is valid when its `seen` equals the current search's stamp.
    seen: Vec<u32>,
    dist: Vec<u32>,
    stamp: u32,
    /// Component of each cell; valid when `component_stamp` equals the layout's stamp.
    component: Vec<u32>,
    component_stamp: Vec<u32>,
    layout: u32,
    /// Every component large and wide enough to hold a path over the threshold; only
    /// those are labelled.
    hosts: Vec<HostComponent>,
    landmark_a: Vec<u32>,
    landmark_b: Vec<u32>,
    queue: Vec<usize>,
    /// Cells (row, column) ordered by distance from the grid's centre: a component's first
    /// search starts near its middle, so twice that cell's eccentricity is a tight diameter bound.
    centre_first: Vec<(usize, usize)>,
}

impl DistanceField {
    fn new(side: usize) -> Self {
        let width = side + 2;
        let n = width * width;
        let padded: Vec<usize> = (0..side * side)
            .map(|c| (c / side + 1) * width + c % side + 1)
            .collect();
        let mid = (side as f64 - 1.0) / 2.0;
        let mut order: Vec<usize> = (0..side * side).collect();
        order.sort_by_key(|&c| {
            let (r, col) = ((c / side) as f64 - mid, (c % side) as f64 - mid);
            ((r * r + col * col) * 16.0) as u64
        });
        let centre_first = order.into_iter().map(|c| (c / side, c % side)).collect();
        DistanceField {
            width,
            padded,
            row_col: (0..side * side)
                .map(|c| ((c / side) as u8, (c % side) as u8))
                .collect(),
            open: vec![false; n],
            seen: vec![0; n],
            dist: vec![0; n],
            stamp: 0,
            component: vec![0; n],
            component_stamp: vec![0; n],
            layout: 0,
            hosts: Vec::new(),
            landmark_a: vec![0; n],
            landmark_b: vec![0; n],
            queue: Vec::with_capacity(n),
            centre_first,
        }
    }

    /// BFS over open cells from `from`; the cells it reaches stay in `queue` with their
    /// distances in `dist`. Stops early at `stop`. Returns the last cell dequeued and its
    /// distance (the farthest one when the search runs to the end).
    fn bfs(&mut self, from: usize, stop: Option<usize>) -> (usize, u32) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.fill(0);
            self.stamp = 1;
        }
        let (open, seen, dist, queue, stamp) = (
            &self.open,
            &mut self.seen,
            &mut self.dist,
            &mut self.queue,
            self.stamp,
        );
        let steps = [
            self.width,
            1,
            1usize.wrapping_neg(),
            self.width.wrapping_neg(),
        ];
        queue.clear();
        seen[from] = stamp;
        dist[from] = 0;
        queue.push(from);
        let mut head = 0;
        while head < queue.len() {
            let cell = queue[head];
            head += 1;
            if Some(cell) == stop {
                break;
            }
            let next_dist = dist[cell] + 1;
            for step in steps {
                let next = cell.wrapping_add(step);
                if open[next] && seen[next] != stamp {
                    seen[next] = stamp;
                    dist[next] = next_dist;
                    queue.push(next);
                }
            }
        }
        let last = queue[head - 1];
        (last, dist[last])
    }

    /// Whether some component may hold a path longer than `threshold`, decided on bit rows:
    /// a breadth-first search advances a whole row per word operation, which makes this
    /// test, the one every layout needs, several times cheaper than a cell-by-cell search.
    /// Remembers each such component (its cells and a farthest cell) for `prepare`.
    fn may_host(&mut self, walls: &[usize], threshold: u32) -> bool {
        let side = self.width - 2;
        let mut unvisited = [0u64; 64];
        unvisited[..side].fill((1u64 << side) - 1);
        for &w in walls {
            let (r, c) = self.row_col[w];
            unvisited[r as usize] &= !(1u64 << c);
        }
        let mut remaining: u32 = unvisited[..side].iter().map(|m| m.count_ones()).sum();
        self.hosts.clear();
        for i in 0..self.centre_first.len() {
            // Components of at most threshold + 1 cells cannot hold such a path.
            if remaining <= threshold + 1 {
                break;
            }
            let (r, c) = self.centre_first[i];
            if unvisited[r] & (1 << c) == 0 {
                continue;
            }
            // A lone open cell (common at high wall densities) needs no search.
            let row_bits = unvisited[r] & !(1 << c);
            let neighbours = (row_bits >> c.saturating_sub(1)) & if c == 0 { 0b10 } else { 0b101 }
                | (if r > 0 { unvisited[r - 1] >> c & 1 } else { 0 })
                | (if r + 1 < side {
                    unvisited[r + 1] >> c & 1
                } else {
                    0
                });
            if neighbours == 0 {
                unvisited[r] &= !(1 << c);
                remaining -= 1;
                continue;
            }
            let mut cells = [0u64; 64];
            let (ecc, far) = bit_bfs(side, &mut unvisited, (r, c), |_, row, bits| {
                cells[row] |= bits
            });
            // Counted once per component: without a hardware popcount this is not free.
            let size: u32 = cells[..side].iter().map(|m| m.count_ones()).sum();
            remaining -= size;
            if size > threshold + 1 && 2 * ecc > threshold {
                self.hosts.push(HostComponent { cells, far });
            }
        }
        !self.hosts.is_empty()
    }

    /// Labels the hosting components and computes landmark distances (after `may_host`).
    fn prepare(&mut self, tokens: &[u8]) {
        let side = self.width - 2;
        for (cell, &t) in tokens.iter().enumerate() {
            self.open[self.padded[cell]] = t != WALL;
        }
        self.layout = self.layout.wrapping_add(1);
        if self.layout == 0 {
            self.component_stamp.fill(0);
            self.layout = 1;
        }
        let width = self.width;
        for (i, host) in self.hosts.iter().enumerate() {
            for (row, &bits) in host.cells[..side].iter().enumerate() {
                for_each_bit(bits, |col| {
                    let p = (row + 1) * width + col + 1;
                    self.component[p] = i as u32;
                    self.component_stamp[p] = self.layout;
                });
            }
            // Landmarks: the far end of a double sweep and the cell farthest from it.
            let (a, b) = (&mut self.landmark_a, &mut self.landmark_b);
            let record = |target: &mut Vec<u32>, from: (usize, usize)| {
                target[(from.0 + 1) * width + from.1 + 1] = 0;
                let mut allowed = host.cells;
                allowed[from.0] &= !(1 << from.1);
                bit_bfs(side, &mut allowed, from, |level, row, bits| {
                    for_each_bit(bits, |col| target[(row + 1) * width + col + 1] = level);
                })
                .1
            };
            let far2 = record(a, host.far);
            record(b, far2);
        }
    }

    /// False only when d(s, g) <= threshold is certain: different or unfit component, the
    /// triangle-inequality upper bound, or an exact early-stopping search.
    fn may_exceed(&mut self, s: usize, g: usize, threshold: u32) -> bool {
        let (s, g) = (self.padded[s], self.padded[g]);
        let labelled = |c: usize| self.component_stamp[c] == self.layout;
        if !labelled(s) || !labelled(g) || self.component[s] != self.component[g] {
            return false;
        }
        let (a, b) = (&self.landmark_a, &self.landmark_b);
        if (a[s] + a[g]).min(b[s] + b[g]) <= threshold {
            return false;
        }
        if a[s].abs_diff(a[g]).max(b[s].abs_diff(b[g])) > threshold {
            return true;
        }
        self.bfs(s, Some(g));
        self.seen[g] == self.stamp && self.dist[g] > threshold
    }
}

/// `count` mazes whose wall layouts are pairwise distinct, even up to rotation and
/// reflection; maze `i` comes from its own random stream, so the result does not depend on
/// the number of threads.
///
/// Small grids hold few distinct layouts: the draws stop, with an error, after
/// `20 * count + 10_000` mazes (duplicates included), so asking for more layouts than exist
/// fails instead of drawing forever.
pub fn generate(count: usize, spec: &MazeSpec, seed: u64) -> Result<Vec<GeneratedMaze>, String> {
    spec.validate()?;
    const MAX_LAYOUTS: u64 = 2_000_000;
    let max_draws = 20 * count as u64 + 10_000;
    let mut out = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::new();
    let mut next_stream = 0u64;
    while out.len() < count {
        if next_stream >= max_draws {
            return Err(format!(
                "only {} distinct wall layouts (up to symmetry) of side {} with a path over {} moves turned up in {next_stream} mazes drawn, fewer than the {count} asked for: ask for fewer mazes, a larger side or a shorter minimum path",
                out.len(),
                spec.side,
                spec.min_path_moves
            ));
        }
        let want = (count - out.len()).min((max_draws - next_stream) as usize);
        let batch: Vec<Option<GeneratedMaze>> = (next_stream..next_stream + want as u64)
            .into_par_iter()
            .map(|i| generate_one(spec, &mut stream_rng(seed, i), MAX_LAYOUTS))
            .collect();
        next_stream += want as u64;
        for m in batch {
            let m = m.ok_or_else(|| format!("no maze with a path over {} moves in {MAX_LAYOUTS} layouts; lower the threshold", spec.min_path_moves))?;
            if seen.insert(wall_layout_key(&m.input)) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// The wall layout up to the 8 dihedral transforms: equal keys mean one layout is a rotation
/// or reflection of the other.
pub fn wall_layout_key(tokens: &[u8]) -> Vec<u8> {
    let side = super::side_of(tokens);
    let walls = Grid::new(
        side,
        side,
        tokens.iter().map(|&t| (t == WALL) as u8).collect(),
    );
    (0..8)
        .map(|t| walls.dihedral(t).cells)
        .min()
        .expect("eight transforms")
}

/// A component that may hold a long enough path: its cells as bit rows, and a cell of the
/// last level of the search that found it (the far end of the first sweep).
struct HostComponent {
    cells: [u64; 64],
    far: (usize, usize),
}

fn for_each_bit(mut bits: u64, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// Breadth-first search on bit rows from `start` through the cells set in `allowed`, which
/// it clears as it visits them (the start must already be cleared or is cleared here).
/// `on_level(level, row, bits)` receives every row's newly reached cells, the start at level
/// 0. Returns the eccentricity of the start and a cell of the last level.
fn bit_bfs(
    side: usize,
    allowed: &mut [u64; 64],
    start: (usize, usize),
    mut on_level: impl FnMut(u32, usize, u64),
) -> (u32, (usize, usize)) {
    let (r, c) = start;
    let mut buffers = [[0u64; 64]; 2];
    let mut cur = 0;
    buffers[cur][r] = 1 << c;
    allowed[r] &= !(1 << c);
    on_level(0, r, 1 << c);
    let mut ecc = 0u32;
    let (mut lo, mut hi) = (r, r);
    let mut last = start;
    loop {
        let (from, to) = (lo.saturating_sub(1), (hi + 1).min(side - 1));
        let [a, b] = &mut buffers;
        let (frontier, next) = if cur == 0 { (&*a, b) } else { (&*b, a) };
        let (mut new_lo, mut new_hi) = (side, 0);
        for row in from..=to {
            let f = frontier[row];
            let up = if row > 0 { frontier[row - 1] } else { 0 };
            let down = if row + 1 < side { frontier[row + 1] } else { 0 };
            // A row's allowed cells are read only here, so clearing them at once is safe.
            let n = (f | f << 1 | f >> 1 | up | down) & allowed[row];
            next[row] = n;
            if n != 0 {
                allowed[row] &= !n;
                new_lo = new_lo.min(row);
                new_hi = row;
                on_level(ecc + 1, row, n);
                last = (row, n.trailing_zeros() as usize);
            }
        }
        if new_lo == side {
            break;
        }
        ecc += 1;
        (lo, hi) = (new_lo, new_hi);
        cur ^= 1;
    }
    (ecc, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maze::distances;
    use crate::sample::stream_rng;

    #[test]
    fn asking_for_more_layouts_than_exist_fails_instead_of_looping() {
        // Side 4 at the cpu preset's sizes: this used to draw forever.
        let spec = MazeSpec {
            side: 4,
            min_path_moves: 4,
            ..MazeSpec::default()
        };
        let err = generate(4500, &spec, 0).unwrap_err();
        assert!(err.contains("distinct wall layouts"), "{err}");
        assert!(generate(20, &spec, 0).is_ok());
    }

    #[test]
    fn bounds_change_no_decision() {
        let spec = MazeSpec {
            side: 12,
            min_path_moves: 24,
            ..MazeSpec::default()
        };
        for stream in 0..30 {
            let fast = generate_one_checked(&spec, &mut stream_rng(1, stream), 100_000, true);
            let plain = generate_one_checked(&spec, &mut stream_rng(1, stream), 100_000, false);
            assert_eq!(fast, plain, "stream {stream}");
            assert!(fast.unwrap().path_moves > 24);
        }
    }

    #[test]
    fn layouts_skipped_as_unable_to_host_really_are() {
        let (side, threshold) = (9usize, 12u32);
        let mut field = DistanceField::new(side);
        let mut rng = stream_rng(3, 0);
        let (mut skipped, mut kept) = (0, 0);
        for _ in 0..400 {
            let walls = rng.random_range(20..45);
            let wall_cells: Vec<usize> =
                rand::seq::index::sample(&mut rng, side * side, walls).into_vec();
            let mut tokens = vec![OPEN; side * side];
            for &w in &wall_cells {
                tokens[w] = WALL;
            }
            let diameter = (0..side * side)
                .filter(|&c| tokens[c] == OPEN)
                .flat_map(|c| distances(&tokens, c).into_iter().flatten().max())
                .max()
                .unwrap_or(0);
            if field.may_host(&wall_cells, threshold) {
                kept += 1;
            } else {
                skipped += 1;
                assert!(
                    diameter <= threshold,
                    "a layout of diameter {diameter} was skipped"
                );
            }
        }
        assert!(skipped > 0 && kept > 0, "{skipped} skipped, {kept} kept");
    }
}
