//! A sweep's finished cells: read from their run directories (or, for a collected folder
//! without them, such as a committed reference, from its `results.json`), grouped by model
//! and axis values, with each family's frontier. A cell without a readable record (pending,
//! running, failed, half-written) is skipped and named.

use crate::science::record::ResultRecord;
use crate::science::sweep::{state, Cell, CELLS, RECORD};
use anyhow::{Context, Result};
use std::path::Path;

/// The runs of one model at one point of the axes (and one variant): its seeds.
pub struct Group<'a> {
    pub model: &'a str,
    /// The model trained in place of `model` (an architecture-swap variant).
    pub replaced_by: Option<&'a str>,
    pub variant: Option<&'a str>,
    /// The variant's overrides.
    pub variant_set: &'a [String],
    /// The plan's reference variant.
    pub reference: bool,
    pub assignments: &'a [String],
    pub runs: Vec<&'a ResultRecord>,
}

impl Group<'_> {
    /// The variant's name, then the axes' values by their last key segment.
    pub fn label(&self) -> String {
        self.variant
            .map(String::from)
            .into_iter()
            .chain(self.assignments.iter().map(|a| {
                let (key, value) = a.split_once('=').unwrap_or((a, ""));
                let key = key.rsplit_once('.').map_or(key, |(_, k)| k);
                format!("{key}={value}")
            }))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Mean over seeds, and the range over seeds (the run's Wilson interval with one seed).
    pub fn summary(&self, metric: Metric) -> Option<(f64, f64, f64)> {
        let values: Vec<datasets::score::Proportion> =
            self.runs.iter().map(|r| metric(r)).collect::<Option<_>>()?;
        let mean = values.iter().map(|p| p.value).sum::<f64>() / values.len() as f64;
        if values.len() == 1 {
            return Some((mean, values[0].low, values[0].high));
        }
        let lo = values.iter().map(|p| p.value).fold(1.0, f64::min);
        let hi = values.iter().map(|p| p.value).fold(0.0, f64::max);
        Some((mean, lo, hi))
    }

    pub fn cost(&self, cost: Cost) -> f64 {
        self.runs.iter().map(|r| cost(r)).sum::<f64>() / self.runs.len() as f64
    }
}

pub type Metric = fn(&ResultRecord) -> Option<datasets::score::Proportion>;
pub type Cost = fn(&ResultRecord) -> f64;

/// Records with their cells, grouped by (model, variant, axis values) in the plan's order.
pub fn groups<'a>(cells: &'a [(Cell, ResultRecord)]) -> Vec<Group<'a>> {
    let mut out: Vec<Group> = Vec::new();
    for (cell, record) in cells {
        let variant = cell.variant.as_deref();
        match out.iter_mut().find(|g| {
            g.model == cell.model
                && g.variant == variant
                && g.assignments == cell.assignments.as_slice()
        }) {
            Some(g) => g.runs.push(record),
            None => out.push(Group {
                model: &cell.model,
                replaced_by: cell.replaced_by.as_deref(),
                variant,
                variant_set: &cell.variant_set,
                reference: cell.reference,
                assignments: &cell.assignments,
                runs: vec![record],
            }),
        }
    }
    out
}

/// The cells no cheaper cell of the same family beats: sorted by cost, each more accurate
/// than all before it.
pub fn frontier(mut points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut best = f64::NEG_INFINITY;
    points
        .into_iter()
        .filter(|&(_, y)| {
            let better = y > best;
            best = best.max(y);
            better
        })
        .collect()
}

/// The finished cells with their records, and for each other cell why it was skipped.
pub type Collected = (Vec<(Cell, ResultRecord)>, Vec<String>);

/// Reads every cell of the sweep in `dir`.
pub fn read_cells(dir: &Path) -> Result<Collected> {
    let list = dir.join(CELLS);
    let cells: Vec<Cell> = datasets::format::read_json(&list).with_context(|| {
        format!(
            "{} is not a sweep folder (no readable {CELLS})",
            dir.display()
        )
    })?;
    // A collected sweep without its run directories (a committed reference) still has its
    // records in results.json, each naming its cell's folder.
    let collected: Vec<ResultRecord> = match dir.join("results.json") {
        p if p.is_file() => datasets::format::read_json(&p)?,
        _ => Vec::new(),
    };
    let (mut done, mut skipped) = (Vec::new(), Vec::new());
    for cell in cells {
        let name = cell.describe();
        let path = dir.join(&cell.dir).join(RECORD);
        if !path.is_file() {
            match collected
                .iter()
                .find(|r| Path::new(&r.run_dir).ends_with(&cell.dir))
            {
                Some(r) if !dir.join(&cell.dir).exists() => done.push((cell, r.clone())),
                _ => skipped.push(format!("{name}: {}", state(dir, &cell)?)),
            }
            continue;
        }
        match datasets::format::read_json::<ResultRecord>(&path) {
            Ok(record) => done.push((cell, record)),
            Err(e) => skipped.push(format!("{name}: unreadable record ({e})")),
        }
    }
    Ok((done, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A float value's dot is not a key's: `train.ema_rate=0.999` used to read `999`.
    #[test]
    fn a_label_names_the_variant_and_each_axis_by_its_last_key_segment() {
        let assignments = [
            "arch.hidden_size=16".to_string(),
            "train.ema_rate=0.999".into(),
        ];
        let group = Group {
            model: "trm-att",
            replaced_by: None,
            variant: Some("no EMA"),
            variant_set: &[],
            reference: false,
            assignments: &assignments,
            runs: Vec::new(),
        };
        assert_eq!(group.label(), "no EMA hidden_size=16 ema_rate=0.999");
    }
    #[test]
    fn the_frontier_keeps_cells_no_cheaper_cell_beats() {
        let points = vec![(4.0, 0.5), (1.0, 0.2), (2.0, 0.1), (3.0, 0.4), (8.0, 0.45)];
        assert_eq!(frontier(points), [(1.0, 0.2), (3.0, 0.4), (4.0, 0.5)]);
    }
}
