//! `harness data build` and `harness data inspect`.

use crate::run::build::{build_and_write, BuildArgs};
use anyhow::{bail, Result};
use clap::Subcommand;
use datasets::arc::encode::decode;
use datasets::format::{load_dataset, Split};
use datasets::sudoku::Shape;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Build a dataset directory in the official layout, with a manifest of hashes and seeds.
    ///
    /// Sources: sudoku-extreme: `generator` (default), `official` (a folder with the official
    /// train.csv/test.csv), `lists` (puzzle-list files, e.g. ../shared/data/sudoku/puzzles*);
    /// maze-hard: `generator` (default) or `official`; arc-agi-1/2: `public` (the repository's
    /// folder with training/ and evaluation/, plus --concept) or `kaggle` (TRM's
    /// kaggle/combined folder).
    Build(BuildArgs),
    /// Print a dataset's counts, token histogram and a few examples drawn as grids.
    Inspect {
        dir: PathBuf,
        /// Examples to draw from each split.
        #[arg(long, default_value_t = 2)]
        examples: usize,
        /// Write the difficulty histogram of both splits (Sudoku: solver guesses; maze:
        /// shortest-path moves) as SVG to this file.
        #[arg(long)]
        histogram: Option<PathBuf>,
    },
}

pub fn run(cmd: DataCommand) -> Result<u8> {
    match cmd {
        DataCommand::Build(args) => build(args),
        DataCommand::Inspect {
            dir,
            examples,
            histogram,
        } => {
            inspect(&dir, examples)?;
            if let Some(out) = histogram {
                difficulty_histogram(&dir, &out)?;
            }
            Ok(0)
        }
    }
}

fn build(args: BuildArgs) -> Result<u8> {
    if args.out.exists() && !args.force {
        bail!(
            "{} already exists (pass --force to replace it)",
            args.out.display()
        );
    }
    let started = std::time::Instant::now();
    let manifest = build_and_write(&args)?;
    println!(
        "built {} ({}) in {:.1} s -> {}",
        manifest.task,
        manifest.protocol,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    for name in ["train", "val", "test"] {
        let Some(c) = manifest.splits.get(name) else {
            continue;
        };
        println!(
            "  {name:<5} {} groups, {} puzzles, {} examples{}",
            c.groups,
            c.puzzles,
            c.examples,
            if name == "val" {
                " (carved from the training side)"
            } else {
                ""
            }
        );
    }
    if !manifest.splits.contains_key("val") {
        println!("  val   none (too few training puzzles to hold any out)");
    }
    println!("  dataset hash {}", manifest.dataset_hash);
    Ok(0)
}

/// The `[data]` section of a run config as `data build` arguments: each key is a flag of
/// the same name, lists repeat it, `true` sets a switch.
fn inspect(dir: &std::path::Path, examples: usize) -> Result<()> {
    let d = load_dataset(dir)?;
    match &d.manifest {
        Some(m) => println!(
            "{}: task {}, protocol {}, seed {}, builder v{}\n  source: {} ({})\n  dataset hash {}",
            dir.display(),
            m.task,
            m.protocol,
            m.seed,
            m.builder_version,
            m.source.kind,
            m.source.description,
            m.dataset_hash
        ),
        None => println!("{}: no manifest (official builder output?)", dir.display()),
    }
    let meta = &d.train_metadata;
    let task = datasets::audit::task_of(&d);
    println!(
        "  vocab {}, seq_len {}, puzzle identifiers {}",
        meta.vocab_size, meta.seq_len, meta.num_puzzle_identifiers
    );
    if d.val().is_none() {
        println!("  no val split");
    }
    for (name, split) in d.data.splits() {
        let m = d.metadata(name);
        println!(
            "\n[{name}] {} groups, {} puzzles, {} examples (mean {:.3} examples per puzzle)",
            split.num_groups(),
            split.num_puzzles(),
            split.num_examples(),
            m.mean_puzzle_examples
        );
        println!(
            "  input tokens  {}",
            histogram(&split.inputs, meta.vocab_size)
        );
        println!(
            "  label tokens  {}",
            histogram(&split.labels, meta.vocab_size)
        );
        let step = (split.num_examples() / examples.max(1)).max(1);
        for e in (0..split.num_examples()).step_by(step).take(examples) {
            println!("  example {e}:\n{}", draw(split, e, &task));
        }
    }
    Ok(())
}

/// Ratings of the un-augmented puzzles, from the `puzzles_{split}.csv` our builders write.
fn ratings(dir: &std::path::Path, split: &str) -> Result<Vec<f64>> {
    let path = dir.join(format!("puzzles_{split}.csv"));
    let rows = datasets::csvio::read(&path)?;
    rows.iter()
        .map(|r| r.rating_u32(&path).map(f64::from).map_err(Into::into))
        .collect()
}

fn difficulty_histogram(dir: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let d = load_dataset(dir)?;
    let task = d
        .manifest
        .as_ref()
        .map(|m| m.task.clone())
        .unwrap_or_default();
    let x_label = match task.as_str() {
        "sudoku-extreme" | "sudoku-small" => {
            "rating: guesses before the first solution (this harness's solver)"
        }
        "maze-hard" => "shortest path length (moves)",
        _ => bail!("{}: no difficulty ratings for task {task:?} (Sudoku and maze datasets built here have them)", dir.display()),
    };
    let (train, test) = (ratings(dir, "train")?, ratings(dir, "test")?);
    let val = if d.val().is_some() && dir.join("puzzles_val.csv").exists() {
        ratings(dir, "val")?
    } else {
        Vec::new()
    };
    let source = d
        .manifest
        .as_ref()
        .map(|m| m.source.kind.as_str())
        .unwrap_or("unknown source");
    let mut series = vec![
        plots::Series {
            name: "train",
            values: &train,
            colour: "#1f77b4",
        },
        plots::Series {
            name: "test",
            values: &test,
            colour: "#ff7f0e",
        },
    ];
    if !val.is_empty() {
        series.push(plots::Series {
            name: "val",
            values: &val,
            colour: "#2ca02c",
        });
    }
    let svg = plots::histogram_svg(
        &format!("{task} difficulty ({source})"),
        x_label,
        &series,
        30,
    )
    .map_err(anyhow::Error::msg)?;
    datasets::fsio::write_atomic(out, svg.as_bytes())?;
    println!("difficulty histogram -> {}", out.display());
    Ok(())
}

fn histogram(tokens: &[u8], vocab: usize) -> String {
    let mut counts = vec![0usize; vocab];
    for &t in tokens {
        counts[t as usize] += 1;
    }
    let total = tokens.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(t, &c)| format!("{t}:{:.1}%", 100.0 * c as f64 / total))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Input and label side by side, in the task's own notation.
fn draw(split: &Split, e: usize, task: &str) -> String {
    let render = |tokens: &[u8]| -> Vec<String> {
        let sudoku_side = (tokens.len() as f64).sqrt().round() as usize;
        match task {
            "sudoku-extreme" | "sudoku-small" => match Shape::from_side(sudoku_side) {
                Ok(shape) => {
                    datasets::sudoku::render(&datasets::sudoku::from_tokens(tokens), shape)
                        .lines()
                        .map(String::from)
                        .collect()
                }
                Err(e) => vec![e],
            },
            "maze-hard" => datasets::maze::render(tokens)
                .lines()
                .map(String::from)
                .collect(),
            _ => match decode(tokens) {
                Some(g) => g
                    .render(|c| (b'0' + c) as char)
                    .lines()
                    .map(String::from)
                    .collect(),
                None => vec!["(not a single grid)".into()],
            },
        }
    };
    let (a, b) = (render(split.input(e)), render(split.label(e)));
    let width = a.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (0..a.len().max(b.len()))
        .map(|i| {
            format!(
                "    {:<width$}   {}",
                a.get(i).map_or("", |s| s),
                b.get(i).map_or("", |s| s)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
