//! Sentences about a set of records computed over all of them, never read off the first:
//! a value shared by every run is said to be, and one that differs is listed per run.

use crate::science::record::ResultRecord;

/// `value` when every record gives the same one, said so; else each distinct value with the
/// runs that gave it. Computed over all the records, never read off the first.
pub fn across_runs(records: &[ResultRecord], value: impl Fn(&ResultRecord) -> String) -> String {
    let distinct = distinct_values(records, value);
    match distinct.as_slice() {
        [(v, _)] if records.len() > 1 => format!("{v} (the same for every run)"),
        _ => listed(&distinct),
    }
}

/// `value` when every record gives the same one; else each distinct value with the runs that
/// gave it (`v (model seed s, ...)`).
pub fn one_or_each(records: &[ResultRecord], value: impl Fn(&ResultRecord) -> String) -> String {
    listed(&distinct_values(records, value))
}

/// Each distinct value, in first-seen order, with the runs (`model seed s`) that gave it.
fn distinct_values(
    records: &[ResultRecord],
    value: impl Fn(&ResultRecord) -> String,
) -> Vec<(String, Vec<String>)> {
    let mut distinct: Vec<(String, Vec<String>)> = Vec::new();
    for r in records {
        let (v, run) = (value(r), format!("{} seed {}", r.model, r.seed));
        match distinct.iter_mut().find(|(d, _)| *d == v) {
            Some((_, runs)) => runs.push(run),
            None => distinct.push((v, vec![run])),
        }
    }
    distinct
}

fn listed(distinct: &[(String, Vec<String>)]) -> String {
    match distinct {
        [(v, _)] => v.clone(),
        _ => distinct
            .iter()
            .map(|(v, runs)| format!("{v} ({})", runs.join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
    }
}
