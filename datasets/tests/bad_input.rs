//! Bad input gets an error naming the file and the place, never a panic or a silent skip.

use datasets::arc::load_task_file;
use datasets::maze::build::{MazeConfig, MazeSource};
use datasets::sudoku::build::{read_list, SudokuConfig, SudokuSource};
use datasets::sudoku::Shape;
use std::path::Path;

fn err_of<T: std::fmt::Debug>(r: datasets::Result<T>) -> String {
    r.unwrap_err().to_string()
}

const SOLVED: &str =
    "652483917978162435314975628825736149791824563436519872269348751547291386183657294";
const PUZZLE: &str =
    ".5..83.17...1..4..3.4..56.8....3...9.9.8245....6....7...9....5...729..861.36.72.4";

fn sudoku_csv(dir: &Path, train_rows: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut train = String::from("source,question,answer,rating\n");
    for r in train_rows {
        train.push_str(r);
        train.push('\n');
    }
    std::fs::write(dir.join("train.csv"), train).unwrap();
    std::fs::write(
        dir.join("test.csv"),
        format!("source,question,answer,rating\nx,{PUZZLE},{SOLVED},0\n"),
    )
    .unwrap();
}

fn official_sudoku(
    dir: &Path,
) -> datasets::Result<(datasets::format::Dataset, datasets::manifest::Manifest)> {
    let cfg = SudokuConfig {
        source: SudokuSource::OfficialCsv(dir.to_path_buf()),
        test_size: None,
        num_aug: 1,
        ..SudokuConfig::default()
    };
    datasets::sudoku::build::build(&cfg)
}

#[test]
fn sudoku_csv_problems_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let good = format!("x,{PUZZLE},{SOLVED},3");
    sudoku_csv(tmp.path(), &[&good, &good]);
    let (d, _) = official_sudoku(tmp.path()).unwrap();
    assert_eq!(d.train.num_groups(), 2);

    sudoku_csv(tmp.path(), &[&good, "x,12345,", &good]);
    let e = err_of(official_sudoku(tmp.path()));
    assert!(
        e.contains("train.csv") && e.contains("line 3") && e.contains("4 fields"),
        "{e}"
    );

    sudoku_csv(
        tmp.path(),
        &[
            &good,
            &format!("x,{},{SOLVED},3", PUZZLE.replacen('.', "x", 1)),
        ],
    );
    let e = err_of(official_sudoku(tmp.path()));
    assert!(e.contains("line 3") && e.contains("'x'"), "{e}");

    // An answer that is not a solution of its question.
    let wrong = SOLVED.replacen("65", "56", 1);
    sudoku_csv(tmp.path(), &[&format!("x,{PUZZLE},{wrong},3")]);
    assert!(err_of(official_sudoku(tmp.path())).contains("not a valid solution"));

    // A question with several solutions whose answer is one of them.
    let open = format!("{}{}", &".".repeat(60), &SOLVED[60..]);
    sudoku_csv(tmp.path(), &[&format!("x,{open},{SOLVED},3")]);
    let e = err_of(official_sudoku(tmp.path()));
    assert!(
        e.contains("line 2") && e.contains("more than one solution"),
        "{e}"
    );

    sudoku_csv(tmp.path(), &[&format!("x,{PUZZLE},{SOLVED},hard")]);
    assert!(err_of(official_sudoku(tmp.path())).contains("rating \"hard\""));

    sudoku_csv(tmp.path(), &[&good]);
    std::fs::remove_file(tmp.path().join("test.csv")).unwrap();
    let e = err_of(official_sudoku(tmp.path()));
    assert!(e.contains("test.csv"), "{e}");
}

#[test]
fn sudoku_list_problems_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("list");
    let conflict = format!("55{}", &PUZZLE[2..]);
    std::fs::write(&list, format!("# comment\n{PUZZLE}\n{conflict}\n")).unwrap();
    let e = err_of(read_list(&list, Shape::STANDARD));
    assert!(
        e.contains("list") && e.contains("line 3") && e.contains("contradictory clues"),
        "{e}"
    );
    let unsolvable =
        "1...5.2.9..7.......6.......2...........5.1..2....2.39.3.4.9...15...1...3...8...4.";
    std::fs::write(&list, format!("{PUZZLE}\n{unsolvable}\n")).unwrap();
    let e = err_of(read_list(&list, Shape::STANDARD));
    assert!(e.contains("line 2") && e.contains("no solution"), "{e}");
    std::fs::write(&list, format!("{}\n", &PUZZLE[1..])).unwrap();
    assert!(err_of(read_list(&list, Shape::STANDARD)).contains("80"));
    let cfg = SudokuConfig {
        source: SudokuSource::Lists(vec![tmp.path().join("missing")]),
        ..SudokuConfig::default()
    };
    assert!(err_of(datasets::sudoku::build::build(&cfg)).contains("missing"));
}

#[test]
fn maze_csv_problems_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    // 3x3 mazes; leading and trailing spaces are data.
    let q = "S       G";
    let a = "S  o  ooG";
    let write = |rows: &[String]| {
        let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(
            tmp.path().join("train.csv"),
            format!("source,question,answer,rating\n{body}"),
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("test.csv"),
            format!("source,question,answer,rating\nx,{q},{a},4\n"),
        )
        .unwrap();
    };
    let cfg = MazeConfig {
        source: MazeSource::OfficialCsv(tmp.path().to_path_buf()),
        train_size: None,
        test_size: None,
        ..MazeConfig::default()
    };
    write(&[format!("x,{q},{a},4")]);
    let (d, _) = datasets::maze::build::build(&cfg).unwrap();
    assert_eq!(d.train.input(0), &[3, 2, 2, 2, 2, 2, 2, 2, 4]);
    write(&[format!("x,{q},{a},4"), format!("x,{q},Soo     G,4")]);
    let e = err_of(datasets::maze::build::build(&cfg));
    assert!(
        e.contains("train.csv") && e.contains("line 3") && e.contains("shortest path"),
        "{e}"
    );
    write(&[format!("x,S  #  S  ,{a},4")]);
    let e = err_of(datasets::maze::build::build(&cfg));
    assert!(
        e.contains("line 2") && e.contains("more than one 'S'"),
        "{e}"
    );
    write(&[format!("x,S  *  ? G,{a},4")]);
    assert!(err_of(datasets::maze::build::build(&cfg)).contains("'*'"));
}

#[test]
fn arc_grid_problems_name_the_task_and_place() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("abcd1234.json");
    let check = |json: &str, needle: &str| {
        std::fs::write(&file, json).unwrap();
        let e = err_of(load_task_file(&file, "training"));
        assert!(
            e.contains("abcd1234") && e.contains(needle),
            "{e} should contain {needle}"
        );
    };
    check(
        r#"{"train": [{"input": [[1,2],[3]], "output": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]}"#,
        "ragged grid",
    );
    check(
        r#"{"train": [{"input": [[1,12]], "output": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]}"#,
        "not a colour 0-9",
    );
    let wide = format!("[[{}]]", vec!["0"; 31].join(","));
    check(
        &format!(
            r#"{{"train": [{{"input": {wide}, "output": [[1]]}}], "test": [{{"input": [[1]], "output": [[1]]}}]}}"#
        ),
        "1 to 30 wide",
    );
    check(
        r#"{"train": [{"input": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]}"#,
        "train pair 0, output",
    );
    check(
        r#"{"train": [], "test": [{"input": [[1]], "output": [[1]]}]}"#,
        "at least one",
    );
    check(r#"{"train": [ "#, "invalid JSON");
}
