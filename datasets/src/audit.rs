//! `harness audit`: what each split of a dataset holds, what leaks from test into training
//! (and from val into training, and between val and test), and whether the data keeps the
//! split protocol its manifest declares. It reads dataset directories only (ours or the
//! official builders') and never needs a model.

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
    let splits = d
        .data
        .splits()
        .into_iter()
        .map(|(name, s)| SplitSummary {
            split: name.to_string(),
            groups: s.num_groups(),
            puzzles: s.num_puzzles(),
            examples: s.num_examples(),
            distinct_identifiers: s.puzzle_identifiers.iter().collect::<HashSet<_>>().len(),
        })
        .collect();
    let (train, test) = (&d.data.train, &d.data.test);
    let exact = ExactHits::find(train, test);
    // Val is held to test's rules: nothing of it in training, nothing shared with test.
    let val_exact = d
        .data
        .val
        .as_ref()
        .map(|val| (ExactHits::find(train, val), ExactHits::find(test, val)));
    let mut findings = Vec::new();
    if task.starts_with("arc") {
        findings.extend(arc_leaks(&d, dir, &protocol, &exact, val_exact.as_ref())?);
    } else {
        findings.extend(exact.findings("test", "train", &protocol));
        if let Some((in_train, in_test)) = &val_exact {
            findings.extend(in_train.findings("val", "train", &protocol));
            findings.extend(in_test.findings("val", "test", &protocol));
        }
    }
    if task.starts_with("sudoku") {
        let side = (d.train_metadata.seq_len as f64).sqrt().round() as usize;
        let shape = Shape::from_side(side)
            .map_err(|e| DataError::config(format!("{}: {e}", dir.display())))?;
        findings.push(sudoku_equivalences(
            train, test, "test", "train", &protocol, shape,
        ));
        if let Some(val) = &d.data.val {
            findings.push(sudoku_equivalences(
                train, val, "val", "train", &protocol, shape,
            ));
            findings.push(sudoku_equivalences(
                test, val, "val", "test", &protocol, shape,
            ));
        }
    } else if task == "maze-hard" {
        findings.push(maze_layouts(train, test, "test", "train", &protocol));
        if let Some(val) = &d.data.val {
            findings.push(maze_layouts(train, val, "val", "train", &protocol));
            findings.push(maze_layouts(test, val, "val", "test", &protocol));
        }
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

/// `train` as an adjective ("training"), other split names as they are.
fn split_word(split: &str) -> &str {
    if split == "train" {
        "training"
    } else {
        split
    }
}

fn hash_of(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Examples of a held-out split (test, val) whose input, or input with label, occurs verbatim
/// in a reference split (training; test for val).
struct ExactHits {
    inputs: HashSet<usize>,
    pairs: HashSet<usize>,
}

impl ExactHits {
    /// Hashes bucket the reference examples; a hit is confirmed byte for byte, so a hash
    /// collision can never be reported as a leak.
    fn find(reference: &Split, held_out: &Split) -> Self {
        let index = |with_label: bool| -> std::collections::HashMap<u64, Vec<usize>> {
            let mut m: std::collections::HashMap<u64, Vec<usize>> =
                std::collections::HashMap::new();
            let hashes: Vec<u64> = (0..reference.num_examples())
                .into_par_iter()
                .map(|e| {
                    if with_label {
                        hash_of(&[reference.input(e), reference.label(e)])
                    } else {
                        hash_of(&[reference.input(e)])
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
            inputs: (0..held_out.num_examples())
                .into_par_iter()
                .filter(|&e| {
                    inputs
                        .get(&hash_of(&[held_out.input(e)]))
                        .is_some_and(|c| c.iter().any(|&t| reference.input(t) == held_out.input(e)))
                })
                .collect(),
            pairs: (0..held_out.num_examples())
                .into_par_iter()
                .filter(|&e| {
                    pairs
                        .get(&hash_of(&[held_out.input(e), held_out.label(e)]))
                        .is_some_and(|c| {
                            c.iter().any(|&t| {
                                reference.input(t) == held_out.input(e)
                                    && reference.label(t) == held_out.label(e)
                            })
                        })
                })
                .collect(),
        }
    }

    /// Every protocol here holds test (and val) inputs and pairs out of training, and val's
    /// out of test. `held_out` names the split searched, `reference` the one searched in.
    fn findings(&self, held_out: &str, reference: &str, protocol: &str) -> Vec<Finding> {
        let enforced = protocol != "none";
        vec![
            Finding {
                check: format!("exact_{held_out}_inputs_in_{reference}"),
                description: format!(
                    "{held_out} inputs that occur verbatim as {} inputs",
                    split_word(reference)
                ),
                count: self.inputs.len(),
                violation: enforced && !self.inputs.is_empty(),
            },
            Finding {
                check: format!("exact_{held_out}_pairs_in_{reference}"),
                description: format!(
                    "{held_out} examples (input and label) that occur verbatim in {}",
                    split_word(reference)
                ),
                count: self.pairs.len(),
                violation: enforced && !self.pairs.is_empty(),
            },
        ]
    }
}

/// Held-out puzzles (test or val) equivalent to a puzzle of the reference split (training,
/// or test for val) under the Sudoku group. Invariants bucket the boards; exact canonical
/// forms are computed only where a held-out invariant meets a reference one.
fn sudoku_equivalences(
    reference: &Split,
    held_out: &Split,
    held_name: &str,
    reference_name: &str,
    protocol: &str,
    shape: Shape,
) -> Finding {
    let boards = |s: &Split| -> Vec<Board> {
        (0..s.num_examples())
            .map(|e| from_tokens(s.input(e)))
            .collect()
    };
    let (reference_boards, held_boards) = (boards(reference), boards(held_out));
    let reference_inv: Vec<u64> = reference_boards
        .par_iter()
        .map(|b| invariant(b, shape))
        .collect();
    let held_inv: Vec<u64> = held_boards
        .par_iter()
        .map(|b| invariant(b, shape))
        .collect();
    let reference_inv_set: HashSet<u64> = reference_inv.iter().copied().collect();
    let candidates: Vec<usize> = (0..held_boards.len())
        .filter(|&i| reference_inv_set.contains(&held_inv[i]))
        .collect();
    let wanted: HashSet<u64> = candidates.iter().map(|&i| held_inv[i]).collect();
    let unique_reference: HashSet<Board> = (0..reference_boards.len())
        .filter(|&i| wanted.contains(&reference_inv[i]))
        .map(|i| reference_boards[i])
        .collect();
    let reference_forms: HashSet<Board> = unique_reference
        .par_iter()
        .map(|b| canonical_form(b, shape))
        .collect();
    let hits = candidates
        .par_iter()
        .filter(|&&i| reference_forms.contains(&canonical_form(&held_boards[i], shape)))
        .count();
    Finding {
        check: format!("sudoku_{held_name}_equivalent_to_{reference_name}"),
        description: format!(
            "{held_name} puzzles that are a transform (digits, bands, rows, stacks, columns, transpose) of a {} puzzle; exact check on {} invariant collisions",
            split_word(reference_name),
            candidates.len()
        ),
        count: hits,
        violation: protocol == crate::sudoku::build::PROTOCOL && hits > 0,
    }
}

/// Held-out mazes (test or val) whose wall layout, up to rotation and reflection, is also a
/// layout of the reference split (training, or test for val).
fn maze_layouts(
    reference: &Split,
    held_out: &Split,
    held_name: &str,
    reference_name: &str,
    protocol: &str,
) -> Finding {
    let reference_keys: HashSet<Vec<u8>> = (0..reference.num_examples())
        .into_par_iter()
        .map(|e| wall_layout_key(reference.input(e)))
        .collect();
    let hits = (0..held_out.num_examples())
        .into_par_iter()
        .filter(|&e| reference_keys.contains(&wall_layout_key(held_out.input(e))))
        .count();
    Finding {
        check: format!("maze_{held_name}_layout_in_{reference_name}"),
        description: format!(
            "{held_name} mazes whose wall layout (up to the 8 symmetries) is a {} layout",
            split_word(reference_name)
        ),
        count: hits,
        violation: protocol == crate::maze::build::PROTOCOL && hits > 0,
    }
}

/// Which evaluation-task data is in training: demonstrations, identifiers (embeddings),
/// test inputs and test outputs, the last two up to the augmentation group. The same for
/// the val tasks when there is a val split, and val test pairs that are test pairs too.
fn arc_leaks(
    d: &LoadedDataset,
    dir: &Path,
    protocol: &str,
    exact: &ExactHits,
    val_exact: Option<&(ExactHits, ExactHits)>,
) -> Result<Vec<Finding>> {
    let index = ArcIndex::new(d, dir)?;
    let strict = protocol == "arc-inductive";
    let test = HeldOut::new(&index, &d.data.test);
    let mut undecodable = index
        .train_keys
        .iter()
        .chain(&test.keys)
        .filter(|k| k.is_none())
        .count();
    let mut findings = eval_task_exposure(&index, test.split, strict);
    findings.extend(test_leaks(&index, &test, exact));
    if let (Some(val), Some((val_in_train, val_in_test))) = (&d.data.val, val_exact) {
        let val = HeldOut::new(&index, val);
        undecodable += val.keys.iter().filter(|k| k.is_none()).count();
        findings.extend(val_task_exposure(&index, val.split, strict));
        findings.extend(val_leaks(&index, &val, &test, val_in_train, val_in_test));
    }
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

/// Canonical keys of an example's input and of its input with its output; `None` for a
/// canvas that does not decode.
type ExampleKey = Option<([u8; 16], [u8; 16])>;

fn example_keys(s: &Split) -> Vec<ExampleKey> {
    let grids =
        |e: usize| -> Option<(Grid, Grid)> { Some((decode(s.input(e))?, decode(s.label(e))?)) };
    (0..s.num_examples())
        .into_par_iter()
        .map(|e| grids(e).map(|(i, o)| (canonical_key(&[&i]), canonical_key(&[&i, &o]))))
        .collect()
}

/// The training side and the builder's `tasks.json`, which every ARC finding looks things
/// up in.
struct ArcIndex<'a> {
    train: &'a Split,
    names: &'a [String],
    tasks_json: Option<serde_json::Value>,
    train_puzzle_of_example: Vec<usize>,
    train_ids: HashSet<i32>,
    train_keys: Vec<ExampleKey>,
    train_inputs: HashSet<[u8; 16]>,
    train_pairs: HashSet<[u8; 16]>,
}

impl<'a> ArcIndex<'a> {
    fn new(d: &'a LoadedDataset, dir: &Path) -> Result<Self> {
        let train = &d.data.train;
        let tasks_path = dir.join("tasks.json");
        let tasks_json: Option<serde_json::Value> = if tasks_path.exists() {
            Some(read_json(&tasks_path)?)
        } else {
            None
        };
        let train_keys = example_keys(train);
        Ok(ArcIndex {
            train,
            names: &d.data.identifiers,
            tasks_json,
            train_puzzle_of_example: train.example_puzzles(),
            train_ids: train.puzzle_identifiers.iter().copied().collect(),
            train_inputs: train_keys.iter().flatten().map(|k| k.0).collect(),
            train_pairs: train_keys.iter().flatten().map(|k| k.1).collect(),
            train_keys,
        })
    }

    fn task_of_id(&self, id: i32) -> Option<String> {
        self.names
            .get(id as usize)
            .and_then(|n| ArcAugmentation::parse_name(n))
            .map(|(task, _)| task)
    }

    /// Evaluation (and val) tasks: from our tasks.json, else from the held-out puzzles'
    /// identifier names.
    fn held_out_tasks(&self, key: &str, split: &Split) -> HashSet<String> {
        match &self.tasks_json {
            Some(v) => v[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            None => split
                .puzzle_identifiers
                .iter()
                .filter_map(|&id| self.task_of_id(id))
                .collect(),
        }
    }

    /// Overlaps the builder found in the source tasks themselves, as `<task>#<test index>`.
    fn declared(&self, kind: &str) -> HashSet<String> {
        self.tasks_json
            .as_ref()
            .and_then(|v| v["source_overlaps"][kind].as_array().cloned())
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect()
    }

    /// `<task>#<index of the pair among the task's test pairs>` of each held-out example.
    fn references(&self, s: &Split) -> Vec<String> {
        let puzzle_of_example = s.example_puzzles();
        (0..s.num_examples())
            .map(|e| {
                let p = puzzle_of_example[e];
                let task = self.task_of_id(s.puzzle_identifiers[p]).unwrap_or_default();
                format!("{task}#{}", e - s.puzzle_indices[p] as usize)
            })
            .collect()
    }

    /// Training examples that belong to one of `tasks`.
    fn examples_of_tasks(&self, tasks: &HashSet<String>) -> usize {
        (0..self.train.num_examples())
            .filter(|&e| {
                self.task_of_id(self.train.puzzle_identifiers[self.train_puzzle_of_example[e]])
                    .is_some_and(|t| tasks.contains(&t))
            })
            .count()
    }

    /// Distinct puzzle identifiers of `s` that training uses too.
    fn shared_ids(&self, s: &Split) -> usize {
        let ids: HashSet<i32> = s.puzzle_identifiers.iter().copied().collect();
        ids.intersection(&self.train_ids).count()
    }

    /// Held-out examples whose input, or pair, is in training, up to the group or verbatim.
    fn hits_in_train(&self, keys: &[ExampleKey], exact: &ExactHits) -> (Vec<usize>, Vec<usize>) {
        let inputs: Vec<usize> = (0..keys.len())
            .filter(|&e| {
                keys[e].is_some_and(|k| self.train_inputs.contains(&k.0))
                    || exact.inputs.contains(&e)
            })
            .collect();
        let pairs: Vec<usize> = (0..keys.len())
            .filter(|&e| {
                keys[e].is_some_and(|k| self.train_pairs.contains(&k.1)) || exact.pairs.contains(&e)
            })
            .collect();
        (inputs, pairs)
    }
}

/// A held-out split (test or val) with its examples' keys and references.
struct HeldOut<'a> {
    split: &'a Split,
    keys: Vec<ExampleKey>,
    refs: Vec<String>,
}

impl<'a> HeldOut<'a> {
    fn new(index: &ArcIndex, split: &'a Split) -> Self {
        HeldOut {
            split,
            keys: example_keys(split),
            refs: index.references(split),
        }
    }

    /// How many of the `hits` are not overlaps the builder declared.
    fn undeclared(&self, hits: &[usize], declared: &HashSet<String>) -> usize {
        hits.iter()
            .filter(|&&e| !declared.contains(&self.refs[e]))
            .count()
    }
}

/// Demonstrations and identifiers of the evaluation tasks in training.
fn eval_task_exposure(index: &ArcIndex, test: &Split, strict: bool) -> Vec<Finding> {
    let eval_tasks = index.held_out_tasks("test_groups", test);
    let demo_examples = index.examples_of_tasks(&eval_tasks);
    let test_shared_ids = index.shared_ids(test);
    vec![
        Finding {
            check: "arc_eval_demonstrations_in_train".into(),
            description: format!(
                "training examples that are demonstrations of the {} evaluation tasks",
                eval_tasks.len()
            ),
            count: demo_examples,
            violation: strict && demo_examples > 0,
        },
        Finding {
            check: "arc_eval_identifiers_in_train".into(),
            description: "test puzzle identifiers (per-version embeddings) that are trained on"
                .into(),
            count: test_shared_ids,
            violation: strict && test_shared_ids > 0,
        },
    ]
}

/// Test inputs and test pairs in training, the declared source overlaps apart.
fn test_leaks(index: &ArcIndex, test: &HeldOut, exact: &ExactHits) -> Vec<Finding> {
    let (declared_inputs, declared_pairs) =
        (index.declared("test_inputs"), index.declared("test_pairs"));
    let (input_hits, pair_hits) = index.hits_in_train(&test.keys, exact);
    let (inputs_undeclared, pairs_undeclared) = (
        test.undeclared(&input_hits, &declared_inputs),
        test.undeclared(&pair_hits, &declared_pairs),
    );
    vec![
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
    ]
}

/// Demonstrations and identifiers of the val tasks in training.
fn val_task_exposure(index: &ArcIndex, val: &Split, strict: bool) -> Vec<Finding> {
    let val_tasks = index.held_out_tasks("val_groups", val);
    let demos = index.examples_of_tasks(&val_tasks);
    let ids = index.shared_ids(val);
    vec![
        Finding {
            check: "arc_val_demonstrations_in_train".into(),
            description: format!(
                "training examples that are demonstrations of the {} val tasks (by design under arc-transductive, as the evaluation tasks')",
                val_tasks.len()
            ),
            count: demos,
            violation: strict && demos > 0,
        },
        Finding {
            check: "arc_val_identifiers_in_train".into(),
            description: "val puzzle identifiers (per-version embeddings) that are trained on".into(),
            count: ids,
            violation: strict && ids > 0,
        },
    ]
}

/// Val inputs and val pairs in training, and val pairs in test, the declared source
/// overlaps apart.
fn val_leaks(
    index: &ArcIndex,
    val: &HeldOut,
    test: &HeldOut,
    val_in_train: &ExactHits,
    val_in_test: &ExactHits,
) -> Vec<Finding> {
    let (declared_inputs, declared_pairs, declared_in_test) = (
        index.declared("val_inputs"),
        index.declared("val_pairs"),
        index.declared("val_pairs_in_test"),
    );
    let (input_hits, pair_hits) = index.hits_in_train(&val.keys, val_in_train);
    let (inputs_undeclared, pairs_undeclared) = (
        val.undeclared(&input_hits, &declared_inputs),
        val.undeclared(&pair_hits, &declared_pairs),
    );
    let in_test = val_pairs_in_test(val, test, val_in_test);
    let in_test_undeclared = val.undeclared(&in_test, &declared_in_test);
    vec![
        Finding {
            check: "arc_val_source_overlaps".into(),
            description: format!(
                "val examples whose input ({} original val inputs), pair in training ({} original pairs) or pair in test ({} original pairs) the source tasks themselves repeat, declared by the builder",
                declared_inputs.len(),
                declared_pairs.len(),
                declared_in_test.len()
            ),
            count: (input_hits.len() - inputs_undeclared)
                .max(pair_hits.len() - pairs_undeclared)
                .max(in_test.len() - in_test_undeclared),
            violation: false,
        },
        Finding {
            check: "arc_val_inputs_in_train".into(),
            description: "val inputs that occur in training (verbatim or up to dihedral transform and colour permutation), beyond the declared source overlaps".into(),
            count: inputs_undeclared,
            violation: inputs_undeclared > 0,
        },
        Finding {
            check: "arc_val_outputs_in_train".into(),
            description: "val pairs whose output is trained on for the same input (verbatim or up to the augmentation group), beyond the declared source overlaps".into(),
            count: pairs_undeclared,
            violation: pairs_undeclared > 0,
        },
        Finding {
            check: "arc_val_pairs_in_test".into(),
            description: "val pairs that are also test pairs (verbatim or up to the augmentation group), beyond the declared source overlaps".into(),
            count: in_test_undeclared,
            violation: in_test_undeclared > 0,
        },
    ]
}

/// Val examples whose pair is a test pair, up to the group or verbatim.
fn val_pairs_in_test(val: &HeldOut, test: &HeldOut, val_in_test: &ExactHits) -> Vec<usize> {
    let test_pairs: HashSet<[u8; 16]> = test.keys.iter().flatten().map(|k| k.1).collect();
    (0..val.split.num_examples())
        .filter(|&e| {
            val.keys[e].is_some_and(|k| test_pairs.contains(&k.1)) || val_in_test.pairs.contains(&e)
        })
        .collect()
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
