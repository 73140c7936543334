//! `harness plan` on the real binary (whose allocator counts live heap bytes): the paper
//! recipes of every task fit an 80 GB GPU, and the analytic estimate of a step is within 20%
//! of the peak live heap of two real steps on this CPU, whole and in micro-batches.

use std::process::Command;

fn plan(args: &[&str], data_root: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("plan")
        .args(args)
        .arg("--data-root")
        .arg(data_root)
        // The ARC sections name ../shared/data relative to the project root.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_paper_recipes_of_every_task_fit_an_80_gb_gpu() {
    let empty = tempfile::tempdir().unwrap();
    let arc = datasets::shared::shared_dir("data/arc-agi-1", "planning the ARC recipes").is_some();
    for task in ["sudoku-extreme", "maze-hard", "arc-agi-1", "arc-agi-2"] {
        if task.starts_with("arc") && !arc {
            continue;
        }
        for model in ["trm-att", "trm-mlp", "hrm"] {
            let (ok, text) = plan(
                &[
                    "--preset",
                    "paper",
                    "--task",
                    task,
                    "--model",
                    model,
                    "--device-memory",
                    "80GB",
                ],
                empty.path(),
            );
            assert!(
                ok && text.contains("fits in 80.00 GB"),
                "{task} {model}:\n{text}"
            );
        }
    }
    // A budget nothing fits is said, with the exit code.
    let (ok, text) = plan(
        &[
            "--preset",
            "paper",
            "--task",
            "maze-hard",
            "--model",
            "hrm",
            "--device-memory",
            "1GB",
        ],
        empty.path(),
    );
    assert!(!ok && text.contains("does NOT fit in 1.00 GB"), "{text}");
    // Ranks that do not divide the batch (768 over 5) are refused, as `train` refuses them.
    let (ok, text) = plan(
        &[
            "--preset",
            "paper",
            "--task",
            "maze-hard",
            "--model",
            "hrm",
            "--gpus",
            "5",
        ],
        empty.path(),
    );
    assert!(
        !ok && text.contains("does not split evenly over 5 ranks"),
        "{text}"
    );
}

/// The estimate over a measured peak (`what`: "measured" for the live heap, "resident"),
/// from the command's output.
fn ratio(text: &str, what: &str) -> f64 {
    let key = format!("estimate / {what} = ");
    let at = text
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"));
    text[at + key.len()..]
        .split(|c: char| c == ')' || c.is_whitespace())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_estimate_is_within_a_fifth_of_the_measured_peak() {
    let empty = tempfile::tempdir().unwrap();
    // Width 256, batch 64: the graph (0.4 to 0.9 GB) outweighs the process's own memory.
    let shape = [
        "--preset",
        "cpu",
        "--task",
        "sudoku-extreme",
        "--layers",
        "cpu",
        "--measure",
        "--set",
        "train.global_batch_size=64",
        "--set",
        "arch.hidden_size=256",
        "--set",
        "arch.puzzle_emb_ndim=256",
    ];
    let cases = [
        ("trm-att", None),
        ("hrm", None),
        ("trm-mlp", None),
        ("trm-att", Some("0.5GB")),
    ];
    for (model, budget) in cases {
        let mut args: Vec<&str> = shape.to_vec();
        args.extend(["--model", model]);
        if let Some(b) = budget {
            args.extend(["--device-memory", b]);
        }
        let (ok, text) = plan(&args, empty.path());
        assert!(ok, "{model}:\n{text}");
        if budget.is_some() {
            assert!(!text.contains("with 1 micro-batch"), "{text}");
        }
        for what in ["measured", "resident"] {
            let r = ratio(&text, what);
            assert!(
                (0.8..=1.2).contains(&r),
                "{model} {budget:?}: estimate / {what} {r}\n{text}"
            );
        }
    }
}
