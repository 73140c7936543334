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
        tokens.fill(OPEN);
        for &w in &order[..walls] {
            tokens[w] = WALL;
        }
        free.clear();
        free.extend((0..cells).filter(|&c| tokens[c] == OPEN));
        if free.len() < 2 || !field.prepare(&tokens, threshold) {
            continue;
        }
        for _ in 0..spec.endpoint_tries {
            let s = free[rng.random_range(0..free.len())];
            let g = free[rng.random_range(0..free.len())];
            if s == g || !field.may_exceed(s, g, threshold) {
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
/// works on a copy of the grid padded with a wall border, so neighbours need no bounds checks.
struct DistanceField {
    side: usize,
    /// Padded width: side + 2.
    width: usize,
    open: Vec<bool>,
    component: Vec<u32>,
    /// Components that are large and wide enough to contain a path over the threshold.
    can_host: Vec<bool>,
    landmark_a: Vec<u32>,
    landmark_b: Vec<u32>,
    scratch: Vec<u32>,
    queue: Vec<usize>,
    /// Padded cells ordered by distance from the grid's centre: a component's first search
    /// starts near its middle, so twice that cell's eccentricity is a tight diameter bound.
    centre_first: Vec<usize>,
}

const FAR: u32 = u32::MAX;

impl DistanceField {
    fn new(side: usize) -> Self {
        let width = side + 2;
        let n = width * width;
        DistanceField {
            side,
            width,
            open: vec![false; n],
            component: vec![FAR; n],
            can_host: Vec::new(),
            landmark_a: vec![FAR; n],
            landmark_b: vec![FAR; n],
            scratch: vec![FAR; n],
            queue: Vec::with_capacity(n),
            centre_first: Vec::new(),
        }
        .with_centre_order()
    }

    fn with_centre_order(mut self) -> Self {
        let mid = (self.side as f64 - 1.0) / 2.0;
        let mut cells: Vec<usize> = (0..self.side * self.side).collect();
        let key = |c: &usize| {
            let (r, col) = ((c / self.side) as f64 - mid, (c % self.side) as f64 - mid);
            ((r * r + col * col) * 16.0) as u64
        };
        cells.sort_by_key(key);
        self.centre_first = cells.into_iter().map(|c| self.padded(c)).collect();
        self
    }

    fn padded(&self, cell: usize) -> usize {
        (cell / self.side + 1) * self.width + cell % self.side + 1
    }

    /// BFS over open cells from `from` into `scratch`, which must hold `FAR` everywhere; the
    /// cells it reaches stay in `queue` so that just those are reset. Stops early at `stop`.
    /// Returns the farthest cell reached and its distance.
    fn bfs(&mut self, from: usize, stop: Option<usize>) -> (usize, u32) {
        let (open, dist, queue) = (&self.open, &mut self.scratch, &mut self.queue);
        let steps = [
            self.width,
            1,
            1usize.wrapping_neg(),
            self.width.wrapping_neg(),
        ];
        queue.clear();
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
                if open[next] && dist[next] == FAR {
                    dist[next] = next_dist;
                    queue.push(next);
                }
            }
        }
        let last = queue[head - 1];
        (last, dist[last])
    }

    /// Moves the last search's distances into `target` (or drops them) and resets `scratch`.
    fn take_distances(&mut self, mut target: Option<&mut Vec<u32>>) {
        for &c in &self.queue {
            let d = std::mem::replace(&mut self.scratch[c], FAR);
            if let Some(t) = target.as_deref_mut() {
                t[c] = d;
            }
        }
    }

    /// Labels components and computes landmark distances; false if no component can hold a
    /// path longer than `threshold` (its diameter is at most twice any cell's eccentricity).
    fn prepare(&mut self, tokens: &[u8], threshold: u32) -> bool {
        for (cell, &t) in tokens.iter().enumerate() {
            let p = self.padded(cell);
            self.open[p] = t != WALL;
        }
        self.component.fill(FAR);
        self.can_host.clear();
        let mut any = false;
        for i in 0..self.centre_first.len() {
            let start = self.centre_first[i];
            if !self.open[start] || self.component[start] != FAR {
                continue;
            }
            let id = self.can_host.len() as u32;
            let (far, ecc) = self.bfs(start, None);
            let size = self.queue.len();
            for &c in &self.queue {
                self.component[c] = id;
            }
            self.take_distances(None);
            let host = size as u32 > threshold + 1 && 2 * ecc > threshold;
            self.can_host.push(host);
            if host {
                any = true;
                // Landmarks: the far end of a double sweep and the cell farthest from it.
                let (far2, _) = self.bfs(far, None);
                let mut a = std::mem::take(&mut self.landmark_a);
                self.take_distances(Some(&mut a));
                self.landmark_a = a;
                self.bfs(far2, None);
                let mut b = std::mem::take(&mut self.landmark_b);
                self.take_distances(Some(&mut b));
                self.landmark_b = b;
            }
        }
        any
    }

    /// False only when d(s, g) <= threshold is certain: different or unfit component, the
    /// triangle-inequality upper bound, or an exact early-stopping search.
    fn may_exceed(&mut self, s: usize, g: usize, threshold: u32) -> bool {
        let (s, g) = (self.padded(s), self.padded(g));
        let comp = self.component[s];
        if comp != self.component[g] || !self.can_host[comp as usize] {
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
        let exceeds = self.scratch[g] > threshold;
        self.take_distances(None);
        exceeds
    }
}

/// `count` mazes whose wall layouts are pairwise distinct, even up to rotation and
/// reflection; maze `i` comes from its own random stream, so the result does not depend on
/// the number of threads.
pub fn generate(count: usize, spec: &MazeSpec, seed: u64) -> Result<Vec<GeneratedMaze>, String> {
    spec.validate()?;
    const MAX_LAYOUTS: u64 = 2_000_000;
    let mut out = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::new();
    let mut next_stream = 0u64;
    while out.len() < count {
        let want = count - out.len();
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
