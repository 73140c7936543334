//! Dataset builds from a description: the `harness data build` flags, which a preset's
//! `[data]` section also maps onto key for key, and the build itself, written atomically.

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use datasets::arc::build::{ArcConfig, ArcProtocol, ArcSource, ArcVersion};
use datasets::format::write_dataset;
use datasets::maze::build::{MazeConfig, MazeSource};
use datasets::maze::generate::MazeSpec;
use datasets::sudoku::build::{SudokuConfig, SudokuSource};
use datasets::sudoku::Shape;
use std::path::PathBuf;

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
    pub task: TaskName,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum)]
    pub source: Option<SourceKind>,
    /// Input files or folders of the source (repeatable).
    #[arg(long = "from")]
    pub from: Vec<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training puzzles (Sudoku, maze) before augmentation; default: the official 1000.
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Test puzzles; default 1000 for generators, all rows for official and list sources.
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Maze, Sudoku: val puzzles (`val/`), carved from the training side, never from test.
    /// Generators make this many more beside --train-size; official and list sources take
    /// them from the training rows (Sudoku: whole equivalence classes). Default: 10% of
    /// the training puzzles, at least 1. 0: no validation split (no `val/`); training keeps
    /// every row, as the official builders make it.
    #[arg(long)]
    pub val_size: Option<usize>,
    /// ARC: training tasks whose test pairs are held out of training as the val split
    /// (`val/`, `val_puzzles.json`). Default: 10% of the training tasks, at least 1. 0: no
    /// validation split; every training task's test pairs train, as officially.
    #[arg(long)]
    pub val_tasks: Option<usize>,
    /// Augmented versions per training puzzle (Sudoku) or per task (ARC); official 1000.
    #[arg(long, default_value_t = 1000)]
    pub num_aug: usize,
    /// Sudoku: keep puzzles rated at least this many guesses (generator default 2).
    #[arg(long)]
    pub min_rating: Option<u32>,
    /// Sudoku lists: fraction of equivalence classes held out for test.
    #[arg(long, default_value_t = 0.1)]
    pub test_fraction: f64,
    /// Maze: grid side (default 30, Maze-Hard's; smaller for CPU runs). sudoku-small: 4 or 6
    /// (default 6).
    #[arg(long)]
    pub side: Option<usize>,
    /// Maze: keep mazes whose shortest path is longer than this many moves.
    #[arg(long, default_value_t = 110)]
    pub min_path: u32,
    /// Maze: add the 8 dihedral versions of each training maze (the official --aug).
    #[arg(long)]
    pub augment: bool,
    /// ARC: split protocol.
    #[arg(long, value_parser = ["transductive", "inductive"], default_value = "transductive")]
    pub protocol: String,
    /// ARC public source: ConceptARC's corpus folder, added to training as TRM and HRM do.
    #[arg(long)]
    pub concept: Option<PathBuf>,
    /// ARC kaggle source: leave out the ConceptARC tasks.
    #[arg(long)]
    pub no_concept: bool,
    /// ARC: keep every grid at the canvas corner (no translation augmentation).
    #[arg(long)]
    pub no_translate: bool,
    /// ARC: a seeded subset of training tasks.
    #[arg(long)]
    pub max_train_tasks: Option<usize>,
    /// ARC: a seeded subset of evaluation tasks.
    #[arg(long)]
    pub max_eval_tasks: Option<usize>,
    /// Replace the output directory if it exists.
    #[arg(long)]
    pub force: bool,
}

fn single_from(args: &BuildArgs, what: &str) -> Result<PathBuf> {
    match args.from.as_slice() {
        [p] => Ok(p.clone()),
        [] => bail!("--from is required: {what}"),
        _ => bail!("--from takes one path here: {what}"),
    }
}

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
    let spinner = crate::run::progress::Spinner::start(format!(
        "building the dataset for {}",
        args.out.display()
    ));
    let (dataset, manifest) = match args.task {
        TaskName::SudokuExtreme | TaskName::SudokuSmall => build_sudoku(args)?,
        TaskName::MazeHard => build_maze(args)?,
        TaskName::ArcAgi1 | TaskName::ArcAgi2 => build_arc(args)?,
    };
    spinner.set_message(format!("writing {}", args.out.display()));
    write_dataset(&args.out, &dataset, manifest, args.force)
        .with_context(|| format!("writing {}", args.out.display()))
}

type Built = (datasets::format::Dataset, datasets::manifest::Manifest);

/// sudoku-extreme is 9x9; sudoku-small 4x4 or 6x6 (default 6).
fn sudoku_shape(args: &BuildArgs) -> Result<Shape> {
    Ok(match (args.task, args.side) {
        (TaskName::SudokuSmall, side) => {
            let shape = Shape::from_side(side.unwrap_or(6)).map_err(anyhow::Error::msg)?;
            if shape == Shape::STANDARD {
                bail!("sudoku-small is 4x4 or 6x6; 9x9 is sudoku-extreme");
            }
            shape
        }
        (_, None | Some(9)) => Shape::STANDARD,
        (_, Some(side)) => bail!("sudoku-extreme is 9x9, not {side}x{side}; see sudoku-small"),
    })
}

fn build_sudoku(args: &BuildArgs) -> Result<Built> {
    let shape = sudoku_shape(args)?;
    let source = match args.source.unwrap_or(SourceKind::Generator) {
        SourceKind::Generator => SudokuSource::Generator {
            // Minimal small puzzles rarely need a guess: keep them all by default.
            min_rating: args
                .min_rating
                .unwrap_or(if shape == Shape::STANDARD { 2 } else { 0 }),
        },
        SourceKind::Official => SudokuSource::OfficialCsv(single_from(
            args,
            "the folder holding train.csv and test.csv",
        )?),
        SourceKind::Lists if !args.from.is_empty() => SudokuSource::Lists(args.from.clone()),
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
    Ok(datasets::sudoku::build::build(&cfg)?)
}

fn build_maze(args: &BuildArgs) -> Result<Built> {
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
    Ok(datasets::maze::build::build(&cfg)?)
}

fn build_arc(args: &BuildArgs) -> Result<Built> {
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
    let Some(protocol) = ArcProtocol::parse(&args.protocol) else {
        bail!(
            "--protocol {} is not transductive or inductive",
            args.protocol
        );
    };
    let cfg = ArcConfig {
        version,
        source,
        protocol,
        num_aug: args.num_aug,
        seed: args.seed,
        translate: !args.no_translate,
        max_train_tasks: args.max_train_tasks,
        max_eval_tasks: args.max_eval_tasks,
        val_tasks: args.val_tasks,
    };
    Ok(datasets::arc::build::build(&cfg)?)
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
