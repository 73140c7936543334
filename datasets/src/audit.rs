//! `harness audit`: what each split of a dataset holds, what leaks from test into training,
//! and whether the data keeps the split protocol its manifest declares. It reads dataset
//! directories only (ours or the official builders') and never needs a model.

use crate::arc::augment::{canonical_key, ArcAugmentation};
use crate::arc::encode::decode;
use crate::error::{DataError, Result};
use crate::format::{load_dataset, read_json, LoadedDataset, Split};
use crate::grid::Grid;
use crate::maze::generate::wall_layout_key;
use crate::sudoku::canonical::{canonical_form, invariant};
use crate::sudoku::{from_tokens, Board, Shape};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct SplitSummary {
    pub split: String,
    pub groups: usize,
    pub puzzles: usize,
    pub examples: usize,
    pub distinct_identifiers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Short name, e.g. `test_inputs_in_train`.
    pub check: String,
    pub description: String,
    /// How many test examples (or identifiers, or training examples) it concerns.
    pub count: usize,
    /// Whether the declared protocol forbids it.
    pub violation: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub dir: String,
    pub task: String,
    pub protocol: String,
    /// Whether the protocol came from a manifest, or was assumed from the task's official one.
    pub protocol_declared: bool,
    pub source: String,
    pub dataset_hash: Option<String>,
    pub splits: Vec<SplitSummary>,
    /// Problems found comparing the files with the manifest (empty: all match).
    pub manifest_problems: Vec<String>,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn violations(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .manifest_problems
            .iter()
            .map(|p| format!("manifest: {p}"))
            .collect();
        v.extend(
            self.findings
                .iter()
                .filter(|f| f.violation)
                .map(|f| format!("{}: {} ({})", f.check, f.description, f.count)),
        );
        v
    }
}

/// The task a directory holds, from its manifest or, for official directories, its shape.
pub fn task_of(d: &LoadedDataset) -> String {
    if let Some(m) = &d.manifest {
        return m.task.clone();
    }
    match (d.train_metadata.vocab_size, d.train_metadata.seq_len) {
        (11, 81) => "sudoku-extreme".into(),
        (6, 16) | (8, 36) => "sudoku-small".into(),
        (6, _) => "maze-hard".into(),
        (12, 900) => "arc".into(),
        (v, s) => format!("unknown (vocab {v}, seq_len {s})"),
    }
}

fn default_protocol(task: &str) -> &'static str {
    match task {
        "sudoku-extreme" | "sudoku-small" => crate::sudoku::build::PROTOCOL,
        "maze-hard" => crate::maze::build::PROTOCOL,
        t if t.starts_with("arc") => "arc-transductive",
        _ => "none",
    }
}

pub fn audit_dir(dir: &Path) -> Result<AuditReport> {
    let d = load_dataset(dir)?;
    let task = task_of(&d);
    let (protocol, declared) = match &d.manifest {
        Some(m) => (m.protocol.clone(), true),
        None => (default_protocol(&task).to_string(), false),
    };
    let manifest_problems = match &d.manifest {
        Some(m) => m.verify(dir)?,
        None => vec![],
    };
    let splits = [("train", &d.data.train), ("test", &d.data.test)]
        .iter()
        .map(|(name, s)| SplitSummary {
            split: name.to_string(),
            groups: s.num_groups(),
            puzzles: s.num_puzzles(),
            examples: s.num_examples(),
            distinct_identifiers: s.puzzle_identifiers.iter().collect::<HashSet<_>>().len(),
        })
        .collect();
    let exact = ExactHits::find(&d.data.train, &d.data.test);
    let mut findings = Vec::new();
    if task.starts_with("arc") {
        findings.extend(arc_leaks(&d, dir, &protocol, &exact)?);
    } else {
        findings.extend(exact.findings(&protocol));
    }
    if task.starts_with("sudoku") {
        let side = (d.train_metadata.seq_len as f64).sqrt().round() as usize;
        let shape = Shape::from_side(side)
            .map_err(|e| DataError::config(format!("{}: {e}", dir.display())))?;
        findings.push(sudoku_equivalences(
            &d.data.train,
            &d.data.test,
            &protocol,
            shape,
        ));
    } else if task == "maze-hard" {
        findings.push(maze_layouts(&d.data.train, &d.data.test, &protocol));
    }
    Ok(AuditReport {
        dir: dir.display().to_string(),
        task,
        protocol,
        protocol_declared: declared,
        source: d
            .manifest
            .as_ref()
            .map(|m| format!("{}: {}", m.source.kind, m.source.description))
            .unwrap_or_else(|| "no manifest (official builder?)".into()),
        dataset_hash: d.manifest.as_ref().map(|m| m.dataset_hash.clone()),
        splits,
        manifest_problems,
        findings,
    })
}

fn hash_of(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Test examples whose input, or input with label, occurs verbatim in training.
struct ExactHits {
    inputs: HashSet<usize>,
    pairs: HashSet<usize>,
}

impl ExactHits {
    /// Hashes bucket the training examples; a hit is confirmed byte for byte, so a hash
    /// collision can never be reported as a leak.
    fn find(train: &Split, test: &Split) -> Self {
        let index = |with_label: bool| -> std::collections::HashMap<u64, Vec<usize>> {
            let mut m: std::collections::HashMap<u64, Vec<usize>> =
                std::collections::HashMap::new();
            let hashes: Vec<u64> = (0..train.num_examples())
                .into_par_iter()
                .map(|e| {
                    if with_label {
                        hash_of(&[train.input(e), train.label(e)])
                    } else {
                        hash_of(&[train.input(e)])
                    }
                })
                .collect();
            for (e, h) in hashes.into_iter().enumerate() {
                m.entry(h).or_default().push(e);
            }
            m
        };
        let (inputs, pairs) = (index(false), index(true));
        ExactHits {
            inputs: (0..test.num_examples())
                .into_par_iter()
                .filter(|&e| {
                    inputs
                        .get(&hash_of(&[test.input(e)]))
                        .is_some_and(|c| c.iter().any(|&t| train.input(t) == test.input(e)))
                })
                .collect(),
            pairs: (0..test.num_examples())
                .into_par_iter()
                .filter(|&e| {
                    pairs
                        .get(&hash_of(&[test.input(e), test.label(e)]))
                        .is_some_and(|c| {
                            c.iter().any(|&t| {
                                train.input(t) == test.input(e) && train.label(t) == test.label(e)
                            })
                        })
                })
                .collect(),
        }
    }

    /// Every protocol here holds test inputs and pairs out of training.
    fn findings(&self, protocol: &str) -> Vec<Finding> {
        let enforced = protocol != "none";
        vec![
            Finding {
                check: "exact_test_inputs_in_train".into(),
                description: "test inputs that occur verbatim as training inputs".into(),
                count: self.inputs.len(),
                violation: enforced && !self.inputs.is_empty(),
            },
            Finding {
                check: "exact_test_pairs_in_train".into(),
                description: "test examples (input and label) that occur verbatim in training"
                    .into(),
                count: self.pairs.len(),
                violation: enforced && !self.pairs.is_empty(),
            },
        ]
    }
}

/// Test puzzles equivalent to a training puzzle under the Sudoku group. Invariants bucket
/// the boards; exact canonical forms are computed only where a test invariant meets a
/// training one.
fn sudoku_equivalences(train: &Split, test: &Split, protocol: &str, shape: Shape) -> Finding {
    let boards = |s: &Split| -> Vec<Board> {
        (0..s.num_examples())
            .map(|e| from_tokens(s.input(e)))
            .collect()
    };
    let (train_boards, test_boards) = (boards(train), boards(test));
    let train_inv: Vec<u64> = train_boards
        .par_iter()
        .map(|b| invariant(b, shape))
        .collect();
    let test_inv: Vec<u64> = test_boards
        .par_iter()
        .map(|b| invariant(b, shape))
        .collect();
    let train_inv_set: HashSet<u64> = train_inv.iter().copied().collect();
    let candidates: Vec<usize> = (0..test_boards.len())
        .filter(|&i| train_inv_set.contains(&test_inv[i]))
        .collect();
    let wanted: HashSet<u64> = candidates.iter().map(|&i| test_inv[i]).collect();
    let unique_train: HashSet<Board> = (0..train_boards.len())
        .filter(|&i| wanted.contains(&train_inv[i]))
        .map(|i| train_boards[i])
        .collect();
    let train_forms: HashSet<Board> = unique_train
        .par_iter()
        .map(|b| canonical_form(b, shape))
        .collect();
    let hits = candidates
        .par_iter()
        .filter(|&&i| train_forms.contains(&canonical_form(&test_boards[i], shape)))
        .count();
    Finding {
        check: "sudoku_test_equivalent_to_train".into(),
        description: format!(
            "test puzzles that are a transform (digits, bands, rows, stacks, columns, transpose) of a training puzzle; exact check on {} invariant collisions",
            candidates.len()
        ),
        count: hits,
        violation: protocol == crate::sudoku::build::PROTOCOL && hits > 0,
    }
}

/// Test mazes whose wall layout, up to rotation and reflection, is also a training layout.
fn maze_layouts(train: &Split, test: &Split, protocol: &str) -> Finding {
    let train_keys: HashSet<Vec<u8>> = (0..train.num_examples())
        .into_par_iter()
        .map(|e| wall_layout_key(train.input(e)))
        .collect();
    let hits = (0..test.num_examples())
        .into_par_iter()
        .filter(|&e| train_keys.contains(&wall_layout_key(test.input(e))))
        .count();
    Finding {
        check: "maze_test_layout_in_train".into(),
        description: "test mazes whose wall layout (up to the 8 symmetries) is a training layout"
            .into(),
        count: hits,
        violation: protocol == crate::maze::build::PROTOCOL && hits > 0,
    }
}

/// Which evaluation-task data is in training: demonstrations, identifiers (embeddings),
/// test inputs and test outputs, the last two up to the augmentation group.
fn arc_leaks(
    d: &LoadedDataset,
    dir: &Path,
    protocol: &str,
    exact: &ExactHits,
) -> Result<Vec<Finding>> {
    let (train, test) = (&d.data.train, &d.data.test);
    let names = &d.data.identifiers;
    let task_of_id = |id: i32| -> Option<String> {
        names
            .get(id as usize)
            .and_then(|n| ArcAugmentation::parse_name(n))
            .map(|(task, _)| task)
    };
    // Evaluation tasks: from our tasks.json, else from the test puzzles' identifier names.
    let tasks_path = dir.join("tasks.json");
    let tasks_json: Option<serde_json::Value> = if tasks_path.exists() {
        Some(read_json(&tasks_path)?)
    } else {
        None
    };
    let eval_tasks: HashSet<String> = match &tasks_json {
        Some(v) => v["test_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        None => test
            .puzzle_identifiers
            .iter()
            .filter_map(|&id| task_of_id(id))
            .collect(),
    };
    // Overlaps the builder found in the source tasks themselves, as `<task>#<test index>`.
    let declared = |kind: &str| -> HashSet<String> {
        tasks_json
            .as_ref()
            .and_then(|v| v["source_overlaps"][kind].as_array().cloned())
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect()
    };
    let (declared_inputs, declared_pairs) = (declared("test_inputs"), declared("test_pairs"));
    let test_puzzle_of_example = test.example_puzzles();
    let test_ref = |e: usize| -> String {
        let p = test_puzzle_of_example[e];
        let task = task_of_id(test.puzzle_identifiers[p]).unwrap_or_default();
        format!("{task}#{}", e - test.puzzle_indices[p] as usize)
    };
    let train_puzzle_of_example = train.example_puzzles();
    let demo_examples = (0..train.num_examples())
        .filter(|&e| {
            task_of_id(train.puzzle_identifiers[train_puzzle_of_example[e]])
                .is_some_and(|t| eval_tasks.contains(&t))
        })
        .count();
    let train_ids: HashSet<i32> = train.puzzle_identifiers.iter().copied().collect();
    let test_ids: HashSet<i32> = test.puzzle_identifiers.iter().copied().collect();
    let shared_ids = test_ids.intersection(&train_ids).count();

    let grids = |s: &Split, e: usize| -> Option<(Grid, Grid)> {
        Some((decode(s.input(e))?, decode(s.label(e))?))
    };
    let keys = |s: &Split| -> Vec<Option<([u8; 16], [u8; 16])>> {
        (0..s.num_examples())
            .into_par_iter()
            .map(|e| grids(s, e).map(|(i, o)| (canonical_key(&[&i]), canonical_key(&[&i, &o]))))
            .collect()
    };
    let train_keys = keys(train);
    let train_inputs: HashSet<[u8; 16]> = train_keys.iter().flatten().map(|k| k.0).collect();
    let train_pairs: HashSet<[u8; 16]> = train_keys.iter().flatten().map(|k| k.1).collect();
    let test_keys = keys(test);
    let hits = |found: &dyn Fn(usize) -> bool| -> Vec<usize> {
        (0..test.num_examples()).filter(|&e| found(e)).collect()
    };
    let input_hits = hits(&|e| {
        test_keys[e].is_some_and(|k| train_inputs.contains(&k.0)) || exact.inputs.contains(&e)
    });
    let pair_hits = hits(&|e| {
        test_keys[e].is_some_and(|k| train_pairs.contains(&k.1)) || exact.pairs.contains(&e)
    });
    let undeclared = |hits: &[usize], declared: &HashSet<String>| {
        hits.iter()
            .filter(|&&e| !declared.contains(&test_ref(e)))
            .count()
    };
    let (inputs_undeclared, pairs_undeclared) = (
        undeclared(&input_hits, &declared_inputs),
        undeclared(&pair_hits, &declared_pairs),
    );
    let undecodable = train_keys
        .iter()
        .chain(&test_keys)
        .filter(|k| k.is_none())
        .count();

    let strict = protocol == "arc-inductive";
    let mut findings = vec![
        Finding {
            check: "arc_eval_demonstrations_in_train".into(),
            description: format!("training examples that are demonstrations of the {} evaluation tasks", eval_tasks.len()),
            count: demo_examples,
            violation: strict && demo_examples > 0,
        },
        Finding {
            check: "arc_eval_identifiers_in_train".into(),
            description: "test puzzle identifiers (per-version embeddings) that are trained on".into(),
            count: shared_ids,
            violation: strict && shared_ids > 0,
        },
        Finding {
            check: "arc_source_overlaps".into(),
            description: format!(
                "test examples whose input ({} original test inputs) or pair ({} original pairs) the source tasks themselves repeat in training data, declared by the builder",
                declared_inputs.len(),
                declared_pairs.len()
            ),
            count: (input_hits.len() - inputs_undeclared).max(pair_hits.len() - pairs_undeclared),
            violation: false,
        },
        Finding {
            check: "arc_test_inputs_in_train".into(),
            description: "test inputs that occur in training (verbatim or up to dihedral transform and colour permutation), beyond the declared source overlaps".into(),
            count: inputs_undeclared,
            violation: inputs_undeclared > 0,
        },
        Finding {
            check: "arc_test_outputs_in_train".into(),
            description: "test pairs whose output is trained on for the same input (verbatim or up to the augmentation group), beyond the declared source overlaps".into(),
            count: pairs_undeclared,
            violation: pairs_undeclared > 0,
        },
    ];
    if undecodable > 0 {
        findings.push(Finding {
            check: "arc_undecodable_examples".into(),
            description: "examples whose canvas is not one grid with its EOS border".into(),
            count: undecodable,
            violation: true,
        });
    }
    Ok(findings)
}

/// Renders reports as a plain-text table.
pub fn render_table(reports: &[AuditReport]) -> String {
    let mut s = String::new();
    for r in reports {
        s.push_str(&format!(
            "{}\n  task {}   protocol {} ({})\n  source: {}\n",
            r.dir,
            r.task,
            r.protocol,
            if r.protocol_declared {
                "declared in manifest"
            } else {
                "assumed: no manifest"
            },
            r.source
        ));
        if let Some(h) = &r.dataset_hash {
            s.push_str(&format!("  dataset hash {h}\n"));
        }
        s.push_str(&format!(
            "  {:<6} {:>9} {:>10} {:>10} {:>12}\n",
            "split", "groups", "puzzles", "examples", "identifiers"
        ));
        for sp in &r.splits {
            s.push_str(&format!(
                "  {:<6} {:>9} {:>10} {:>10} {:>12}\n",
                sp.split, sp.groups, sp.puzzles, sp.examples, sp.distinct_identifiers
            ));
        }
        s.push_str(&format!(
            "  manifest: {}\n",
            if r.dataset_hash.is_none() {
                "absent".to_string()
            } else if r.manifest_problems.is_empty() {
                "all files match".to_string()
            } else {
                format!("{} problem(s)", r.manifest_problems.len())
            }
        ));
        for p in &r.manifest_problems {
            s.push_str(&format!("    ! {p}\n"));
        }
        for f in &r.findings {
            let status = match (f.violation, f.count) {
                (true, _) => "FAIL",
                (false, 0) => " ok ",
                // Present but allowed by the protocol (e.g. transductive demonstrations).
                (false, _) => "note",
            };
            s.push_str(&format!(
                "  {status} {:<34} {:>8}  {}\n",
                f.check, f.count, f.description
            ));
        }
        s.push('\n');
    }
    s
}
