//! ARC-AGI-1 and ARC-AGI-2 (with ConceptARC as extra training tasks): tasks of input/output
//! grid pairs, colours 0-9, sides 1-30. Loaded from the public JSON directories, ConceptARC's
//! `corpus/`, or the Kaggle combined files that TRM ships.

pub mod augment;
pub mod build;
pub mod encode;

use crate::error::{DataError, Result};
use crate::grid::Grid;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub const MAX_SIDE: usize = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct ArcPair {
    pub input: Grid,
    pub output: Grid,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArcTask {
    pub id: String,
    /// Where the task came from: `training`, `evaluation`, `concept`, `training2`, ...
    pub set: String,
    /// Demonstration pairs.
    pub train: Vec<ArcPair>,
    /// Test pairs (with their outputs: the public files include them).
    pub test: Vec<ArcPair>,
}

/// Reads a grid (a list of equal-length rows of colours 0-9, sides 1-30); `place` names it in errors.
pub fn parse_grid(value: &Value, path: &Path, place: &str) -> Result<Grid> {
    let err = |what: String| DataError::record(path, place, what);
    let rows = value
        .as_array()
        .ok_or_else(|| err("a grid must be a list of rows".into()))?;
    if rows.is_empty() || rows.len() > MAX_SIDE {
        return Err(err(format!(
            "{} rows; a grid has 1 to {MAX_SIDE}",
            rows.len()
        )));
    }
    let mut cells = Vec::new();
    let mut width = None;
    for (r, row) in rows.iter().enumerate() {
        let row = row
            .as_array()
            .ok_or_else(|| err(format!("row {r} is not a list")))?;
        match width {
            None if row.is_empty() || row.len() > MAX_SIDE => {
                return Err(err(format!(
                    "row {r} has {} cells; a grid is 1 to {MAX_SIDE} wide",
                    row.len()
                )))
            }
            None => width = Some(row.len()),
            Some(w) if w != row.len() => {
                return Err(err(format!(
                    "ragged grid: row {r} has {} cells, row 0 has {w}",
                    row.len()
                )))
            }
            _ => {}
        }
        for (c, v) in row.iter().enumerate() {
            match v.as_u64() {
                Some(colour @ 0..=9) => cells.push(colour as u8),
                _ => return Err(err(format!("cell ({r}, {c}) is {v}, not a colour 0-9"))),
            }
        }
    }
    Ok(Grid::new(rows.len(), width.unwrap(), cells))
}

fn parse_pairs(
    value: Option<&Value>,
    path: &Path,
    task: &str,
    part: &str,
    need_output: bool,
) -> Result<Vec<(Grid, Option<Grid>)>> {
    let list = value.and_then(Value::as_array).ok_or_else(|| {
        DataError::record(
            path,
            format!("task {task}"),
            format!("missing or malformed \"{part}\" list"),
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(i, pair)| {
            let place = |which: &str| format!("task {task}, {part} pair {i}, {which}");
            let input = parse_grid(
                pair.get("input").unwrap_or(&Value::Null),
                path,
                &place("input"),
            )?;
            let output = match pair.get("output") {
                Some(v) => Some(parse_grid(v, path, &place("output"))?),
                None if need_output => {
                    return Err(DataError::record(path, place("output"), "missing"))
                }
                None => None,
            };
            Ok((input, output))
        })
        .collect()
}

fn complete(pairs: Vec<(Grid, Option<Grid>)>) -> Vec<ArcPair> {
    pairs
        .into_iter()
        .map(|(input, output)| ArcPair {
            input,
            output: output.expect("checked by parse_pairs"),
        })
        .collect()
}

/// One task file in the public format `{"train": [...], "test": [...]}`.
pub fn load_task_file(path: &Path, set: &str) -> Result<ArcTask> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| DataError::format(path, format!("invalid JSON: {e}")))?;
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let train = complete(parse_pairs(value.get("train"), path, &id, "train", true)?);
    let test = complete(parse_pairs(value.get("test"), path, &id, "test", true)?);
    if train.is_empty() || test.is_empty() {
        return Err(DataError::record(
            path,
            format!("task {id}"),
            "a task needs at least one train and one test pair",
        ));
    }
    Ok(ArcTask {
        id,
        set: set.to_string(),
        train,
        test,
    })
}

/// Every `*.json` below `dir` (recursively, for ConceptARC's concept folders), sorted by task
/// id so the order never depends on directory listing.
pub fn load_dir(dir: &Path, set: &str) -> Result<Vec<ArcTask>> {
    let mut files = crate::fsio::files_below(dir)?;
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    if files.is_empty() {
        return Err(DataError::format(dir, "no ARC task files (*.json) found"));
    }
    let mut tasks = files
        .iter()
        .map(|f| load_task_file(f, set))
        .collect::<Result<Vec<_>>>()?;
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(tasks)
}

/// The Kaggle combined format: `<prefix>_<subset>_challenges.json` (`{id: {train, test: [{input}]}}`)
/// plus `<prefix>_<subset>_solutions.json` (`{id: [output, ...]}`).
pub fn load_kaggle(dir: &Path, prefix: &str, subset: &str) -> Result<Vec<ArcTask>> {
    let challenges_path = dir.join(format!("{prefix}_{subset}_challenges.json"));
    let solutions_path = dir.join(format!("{prefix}_{subset}_solutions.json"));
    let read = |p: &Path| -> Result<BTreeMap<String, Value>> {
        let text = std::fs::read_to_string(p).map_err(|e| DataError::io(p, e))?;
        serde_json::from_str(&text).map_err(|e| DataError::format(p, format!("invalid JSON: {e}")))
    };
    let challenges = read(&challenges_path)?;
    let solutions = read(&solutions_path)?;
    let mut tasks = Vec::new();
    for (id, task) in &challenges {
        let train = complete(parse_pairs(
            task.get("train"),
            &challenges_path,
            id,
            "train",
            true,
        )?);
        let inputs = parse_pairs(task.get("test"), &challenges_path, id, "test", false)?;
        let outputs = solutions.get(id).and_then(Value::as_array).ok_or_else(|| {
            DataError::record(
                &solutions_path,
                format!("task {id}"),
                "no solutions for this task",
            )
        })?;
        if outputs.len() != inputs.len() {
            return Err(DataError::record(
                &solutions_path,
                format!("task {id}"),
                format!(
                    "{} solutions for {} test inputs",
                    outputs.len(),
                    inputs.len()
                ),
            ));
        }
        let test = inputs
            .into_iter()
            .zip(outputs)
            .enumerate()
            .map(|(i, ((input, _), out))| {
                Ok(ArcPair {
                    input,
                    output: parse_grid(out, &solutions_path, &format!("task {id}, solution {i}"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        tasks.push(ArcTask {
            id: id.clone(),
            set: subset.to_string(),
            train,
            test,
        });
    }
    Ok(tasks)
}
