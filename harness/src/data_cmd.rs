//! `harness data build` and `harness data inspect`.

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use datasets::arc::build::{ArcConfig, ArcProtocol, ArcSource, ArcVersion};
use datasets::arc::encode::decode;
use datasets::format::{load_dataset, write_dataset, Split};
use datasets::maze::build::{MazeConfig, MazeSource};
use datasets::maze::generate::MazeSpec;
use datasets::sudoku::build::{SudokuConfig, SudokuSource};
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskName {
    SudokuExtreme,
    /// 4x4 or 6x6 Sudoku (`--side`), generated: a Sudoku task a CPU can learn.
    SudokuSmall,
    MazeHard,
    #[value(name = "arc-agi-1")]
    ArcAgi1,
    #[value(name = "arc-agi-2")]
    ArcAgi2,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    Generator,
    Official,
    Lists,
    Public,
    Kaggle,
}

#[derive(clap::Args)]
pub struct BuildArgs {
    #[arg(long, value_enum)]
    task: TaskName,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    source: Option<SourceKind>,
    /// Input files or folders of the source (repeatable).
    #[arg(long = "from")]
    from: Vec<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training puzzles (Sudoku, maze) before augmentation; default: the official 1000.
    #[arg(long)]
    train_size: Option<usize>,
    /// Test puzzles; default 1000 for generators, all rows for official and list sources.
    #[arg(long)]
    test_size: Option<usize>,
    /// Maze, Sudoku: val puzzles (`val/`), carved from the training side, never from test.
    /// Generators make this many more beside --train-size; official and list sources take
    /// them from the training rows (Sudoku: whole equivalence classes). Default: 10% of
    /// the training puzzles, at least 1. 0: no validation split (no `val/`); training keeps
    /// every row, as the official builders make it.
    #[arg(long)]
    val_size: Option<usize>,
    /// ARC: training tasks whose test pairs are held out of training as the val split
    /// (`val/`, `val_puzzles.json`). Default: 10% of the training tasks, at least 1. 0: no
    /// validation split; every training task's test pairs train, as officially.
    #[arg(long)]
    val_tasks: Option<usize>,
    /// Augmented versions per training puzzle (Sudoku) or per task (ARC); official 1000.
    #[arg(long, default_value_t = 1000)]
    num_aug: usize,
    /// Sudoku: keep puzzles rated at least this many guesses (generator default 2).
    #[arg(long)]
    min_rating: Option<u32>,
    /// Sudoku lists: fraction of equivalence classes held out for test.
    #[arg(long, default_value_t = 0.1)]
    test_fraction: f64,
    /// Maze: grid side (default 30, Maze-Hard's; smaller for CPU runs). sudoku-small: 4 or 6
    /// (default 6).
    #[arg(long)]
    side: Option<usize>,
    /// Maze: keep mazes whose shortest path is longer than this many moves.
    #[arg(long, default_value_t = 110)]
    min_path: u32,
    /// Maze: add the 8 dihedral versions of each training maze (the official --aug).
    #[arg(long)]
    augment: bool,
    /// ARC: split protocol.
    #[arg(long, value_parser = ["transductive", "inductive"], default_value = "transductive")]
    protocol: String,
    /// ARC public source: ConceptARC's corpus folder, added to training as TRM and HRM do.
    #[arg(long)]
    concept: Option<PathBuf>,
    /// ARC kaggle source: leave out the ConceptARC tasks.
    #[arg(long)]
    no_concept: bool,
    /// ARC: keep every grid at the canvas corner (no translation augmentation).
    #[arg(long)]
    no_translate: bool,
    /// ARC: a seeded subset of training tasks.
    #[arg(long)]
    max_train_tasks: Option<usize>,
    /// ARC: a seeded subset of evaluation tasks.
    #[arg(long)]
    max_eval_tasks: Option<usize>,
    /// Replace the output directory if it exists.
    #[arg(long)]
    force: bool,
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

fn single_from(args: &BuildArgs, what: &str) -> Result<PathBuf> {
    match args.from.as_slice() {
        [p] => Ok(p.clone()),
        [] => bail!("--from is required: {what}"),
        _ => bail!("--from takes one path here: {what}"),
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
pub fn build_args_from_table(table: &toml::Table, out: &std::path::Path) -> Result<BuildArgs> {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BuildArgs,
    }
    let mut argv: Vec<String> = vec!["data".into()];
    for (key, value) in table {
        let flag = format!("--{key}");
        match value {
            toml::Value::Boolean(true) => argv.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    argv.push(flag.clone());
                    argv.push(scalar_text(key, item)?);
                }
            }
            other => {
                argv.push(flag);
                argv.push(scalar_text(key, other)?);
            }
        }
    }
    argv.push("--out".into());
    argv.push(out.display().to_string());
    argv.push("--force".into());
    use clap::Parser;
    Wrapper::try_parse_from(&argv)
        .map(|w| w.args)
        .map_err(|e| anyhow::anyhow!("data section: {}", e.to_string().trim()))
}

fn scalar_text(key: &str, value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => bail!("data.{key}: {other} is not a string or a number"),
    })
}

/// Builds the dataset `args` describe and writes it atomically to `args.out`; its manifest.
pub fn build_and_write(args: &BuildArgs) -> Result<datasets::manifest::Manifest> {
    let is_arc = matches!(args.task, TaskName::ArcAgi1 | TaskName::ArcAgi2);
    if is_arc && args.val_size.is_some() {
        bail!("--val-size is for maze and Sudoku; ARC holds out whole tasks' test pairs with --val-tasks");
    }
    if !is_arc && args.val_tasks.is_some() {
        bail!("--val-tasks is for ARC; maze and Sudoku take --val-size");
    }
    let spinner =
        crate::progress::Spinner::start(format!("building the dataset for {}", args.out.display()));
    let (dataset, manifest) = match args.task {
        TaskName::SudokuExtreme | TaskName::SudokuSmall => {
            let shape = match (args.task, args.side) {
                (TaskName::SudokuSmall, side) => {
                    let shape = Shape::from_side(side.unwrap_or(6)).map_err(anyhow::Error::msg)?;
                    if shape == Shape::STANDARD {
                        bail!("sudoku-small is 4x4 or 6x6; 9x9 is sudoku-extreme");
                    }
                    shape
                }
                (_, None | Some(9)) => Shape::STANDARD,
                (_, Some(side)) => {
                    bail!("sudoku-extreme is 9x9, not {side}x{side}; see sudoku-small")
                }
            };
            let source = match args.source.unwrap_or(SourceKind::Generator) {
                SourceKind::Generator => SudokuSource::Generator {
                    // Minimal small puzzles rarely need a guess: keep them all by default.
                    min_rating: args.min_rating.unwrap_or(if shape == Shape::STANDARD {
                        2
                    } else {
                        0
                    }),
                },
                SourceKind::Official => SudokuSource::OfficialCsv(single_from(
                    args,
                    "the folder holding train.csv and test.csv",
                )?),
                SourceKind::Lists if !args.from.is_empty() => {
                    SudokuSource::Lists(args.from.clone())
                }
                SourceKind::Lists => bail!("--from is required: one or more puzzle-list files"),
                _ => bail!("sudoku-extreme sources are generator, official and lists"),
            };
            let generated = matches!(source, SudokuSource::Generator { .. });
            let cfg = SudokuConfig {
                shape,
                source,
                seed: args.seed,
                train_size: Some(args.train_size.unwrap_or(1000)),
                test_size: args.test_size.or(generated.then_some(1000)),
                val_size: args.val_size,
                test_fraction: args.test_fraction,
                num_aug: args.num_aug,
                min_rating: if generated {
                    0
                } else {
                    args.min_rating.unwrap_or(0)
                },
            };
            datasets::sudoku::build::build(&cfg)?
        }
        TaskName::MazeHard => {
            let source = match args.source.unwrap_or(SourceKind::Generator) {
                SourceKind::Generator => MazeSource::Generator(MazeSpec {
                    side: args.side.unwrap_or(30),
                    min_path_moves: args.min_path,
                    ..MazeSpec::default()
                }),
                SourceKind::Official => MazeSource::OfficialCsv(single_from(
                    args,
                    "the folder holding train.csv and test.csv",
                )?),
                _ => bail!("maze-hard sources are generator and official"),
            };
            let generated = matches!(source, MazeSource::Generator(_));
            let cfg = MazeConfig {
                source,
                seed: args.seed,
                train_size: args.train_size.or(generated.then_some(1000)),
                test_size: args.test_size.or(generated.then_some(1000)),
                val_size: args.val_size,
                augment: args.augment,
            };
            datasets::maze::build::build(&cfg)?
        }
        TaskName::ArcAgi1 | TaskName::ArcAgi2 => {
            let version = if args.task == TaskName::ArcAgi1 {
                ArcVersion::Arc1
            } else {
                ArcVersion::Arc2
            };
            let source = match args.source.unwrap_or(SourceKind::Public) {
                SourceKind::Public => ArcSource::PublicDirs {
                    root: single_from(
                        args,
                        "the ARC repository's data folder, e.g. ../shared/data/arc-agi-1",
                    )?,
                    concept: args.concept.clone(),
                },
                SourceKind::Kaggle => ArcSource::Kaggle {
                    dir: single_from(
                        args,
                        "TRM's kaggle/combined folder, e.g. ../shared/data/trm-kaggle-combined",
                    )?,
                    concept: !args.no_concept,
                },
                _ => bail!("ARC sources are public and kaggle"),
            };
            let cfg = ArcConfig {
                version,
                source,
                protocol: ArcProtocol::parse(&args.protocol).expect("clap checked the value"),
                num_aug: args.num_aug,
                seed: args.seed,
                translate: !args.no_translate,
                max_train_tasks: args.max_train_tasks,
                max_eval_tasks: args.max_eval_tasks,
                val_tasks: args.val_tasks,
            };
            datasets::arc::build::build(&cfg)?
        }
    };
    spinner.set_message(format!("writing {}", args.out.display()));
    write_dataset(&args.out, &dataset, manifest, args.force)
        .with_context(|| format!("writing {}", args.out.display()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_val_keys_become_the_val_flags() {
        let table: toml::Table =
            toml::from_str("task = \"maze-hard\"\ntrain-size = 4000\nval-size = 500\n").unwrap();
        let args = build_args_from_table(&table, std::path::Path::new("out")).unwrap();
        assert_eq!((args.train_size, args.val_size), (Some(4000), Some(500)));
        let table: toml::Table = toml::from_str("task = \"arc-agi-1\"\nval-tasks = 4\n").unwrap();
        let args = build_args_from_table(&table, std::path::Path::new("out")).unwrap();
        assert_eq!((args.val_tasks, args.val_size), (Some(4), None));
    }
}
