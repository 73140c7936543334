//! A directory laid out exactly as the official Python builders write it (NumPy headers,
//! `dataset.json` field order, `identifiers.json`, no manifest) loads unchanged; damaged
//! directories are refused with the file named.

use datasets::format::load_dataset;
use std::path::Path;

/// A `.npy` file as NumPy writes it, with any dtype and header version.
fn numpy_file(descr: &str, shape: &str, body: &[u8], version: u8) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let prefix = if version == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(body);
    out
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Two Sudoku-shaped splits: train one group of two puzzles, test two groups.
fn write_official(dir: &Path) {
    for (split, groups, ids) in [
        ("train", vec![0, 2], vec![0, 0]),
        ("test", vec![0, 1, 2], vec![0, 0]),
    ] {
        let d = dir.join(split);
        std::fs::create_dir_all(&d).unwrap();
        let inputs: Vec<u8> = (0..2 * 81).map(|i| (i % 11) as u8).collect();
        let labels: Vec<i64> = (0..2 * 81).map(|i| 2 + (i % 9) as i64).collect();
        std::fs::write(
            d.join("all__inputs.npy"),
            numpy_file("|u1", "(2, 81)", &inputs, 1),
        )
        .unwrap();
        // int64 labels and a version-2 header: the loader widens whatever NumPy stored.
        let label_bytes: Vec<u8> = labels.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(
            d.join("all__labels.npy"),
            numpy_file("<i8", "(2, 81)", &label_bytes, 2),
        )
        .unwrap();
        std::fs::write(
            d.join("all__puzzle_indices.npy"),
            numpy_file("<i4", "(3,)", &i32s(&[0, 1, 2]), 1),
        )
        .unwrap();
        std::fs::write(
            d.join("all__group_indices.npy"),
            numpy_file("<i4", &format!("({},)", groups.len()), &i32s(&groups), 1),
        )
        .unwrap();
        std::fs::write(
            d.join("all__puzzle_identifiers.npy"),
            numpy_file("<i4", "(2,)", &i32s(&ids), 1),
        )
        .unwrap();
        std::fs::write(
            d.join("dataset.json"),
            format!(
                r#"{{"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1, "total_groups": {}, "mean_puzzle_examples": 1.0, "sets": ["all"]}}"#,
                groups.len() - 1
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.join("identifiers.json"), r#"["<blank>"]"#).unwrap();
}

#[test]
fn official_directory_loads_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    write_official(tmp.path());
    let d = load_dataset(tmp.path()).unwrap();
    assert!(d.manifest.is_none());
    // No val/: the official builders write none, and the directory loads without it.
    assert!(d.val().is_none() && d.val_metadata.is_none() && d.data.val.is_none());
    assert_eq!(d.train_metadata.seq_len, 81);
    assert_eq!(d.data.train.num_groups(), 1);
    assert_eq!(d.data.train.num_puzzles(), 2);
    assert_eq!(d.data.test.num_groups(), 2);
    assert_eq!(d.data.train.label(1)[0], 2 + (81 % 9) as u8);
    assert_eq!(d.data.identifiers, vec!["<blank>".to_string()]);
    // The audit reads it too, assuming Sudoku-Extreme's promise as the protocol.
    let report = datasets::audit::audit_dir(tmp.path()).unwrap();
    assert_eq!(report.task, "sudoku-extreme");
    assert!(!report.protocol_declared);
}

fn assert_refused(dir: &Path, file: &str, needle: &str) {
    let err = load_dataset(dir).unwrap_err().to_string();
    assert!(
        err.contains(file) && err.contains(needle),
        "error {err:?} should name {file} and say {needle:?}"
    );
}

#[test]
fn damaged_directories_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_official(tmp.path());
    let inputs = tmp.path().join("train/all__inputs.npy");
    let bytes = std::fs::read(&inputs).unwrap();
    std::fs::write(&inputs, &bytes[..bytes.len() - 10]).unwrap();
    assert_refused(tmp.path(), "all__inputs.npy", "truncated");

    write_official(tmp.path());
    std::fs::remove_file(tmp.path().join("test/all__labels.npy")).unwrap();
    assert_refused(tmp.path(), "test/all__labels.npy", "No such file");

    write_official(tmp.path());
    std::fs::write(
        tmp.path().join("train/all__puzzle_indices.npy"),
        numpy_file("<i4", "(3,)", &i32s(&[0, 2, 1]), 1),
    )
    .unwrap();
    assert_refused(tmp.path(), "all__puzzle_indices.npy", "at least one");

    // An empty group (two equal offsets): used to load, then panic in the sampler.
    write_official(tmp.path());
    std::fs::write(
        tmp.path().join("test/all__group_indices.npy"),
        numpy_file("<i4", "(3,)", &i32s(&[0, 0, 2]), 1),
    )
    .unwrap();
    assert_refused(tmp.path(), "test/all__group_indices.npy", "group 0");

    // An offset beyond i32 (the official dtype) is refused, not truncated.
    write_official(tmp.path());
    let mut big = Vec::new();
    for v in [0i64, 1 << 32, 2] {
        big.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(
        tmp.path().join("train/all__puzzle_indices.npy"),
        numpy_file("<i8", "(3,)", &big, 1),
    )
    .unwrap();
    assert_refused(tmp.path(), "all__puzzle_indices.npy", "does not fit");

    write_official(tmp.path());
    std::fs::write(
        tmp.path().join("train/all__group_indices.npy"),
        numpy_file("<i4", "(2,)", &i32s(&[0, 1]), 1),
    )
    .unwrap();
    assert_refused(tmp.path(), "all__group_indices.npy", "2 puzzles");

    write_official(tmp.path());
    let mut inputs_bytes = std::fs::read(&inputs).unwrap();
    let last = inputs_bytes.len() - 1;
    inputs_bytes[last] = 200;
    std::fs::write(&inputs, inputs_bytes).unwrap();
    assert_refused(tmp.path(), "all__inputs.npy", "outside the vocabulary");

    assert_refused(&tmp.path().join("nowhere"), "nowhere", "not found");
}
