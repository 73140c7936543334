//! `harness train`, `eval` and `compare` end to end with the `smoke` preset on a tiny
//! generated maze task: the outputs' contents, not only their existence.

use harness::report::csv::CSV_HEADER;
use harness::run::answer_rules::AnswerRule;
use harness::science::record::ResultRecord;
use std::path::Path;

fn harness(args: &[&str]) -> Result<u8, String> {
    let mut full = vec!["harness"];
    full.extend_from_slice(args);
    harness::run(full).map_err(|e| format!("{e:#}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `harness train --model MODEL --task maze-hard --preset smoke` for `steps` steps, evaluating
/// every 3, on `dir` with the data under `data`, plus `extra`.
fn smoke_train(
    model: &str,
    steps: usize,
    dir: &Path,
    data: &Path,
    extra: &[&str],
) -> Result<u8, String> {
    let steps = format!("train.steps={steps}");
    let mut args = vec![
        "train",
        "--model",
        model,
        "--task",
        "maze-hard",
        "--preset",
        "smoke",
        "--set",
        &steps,
        "--set",
        "train.eval_interval=3",
        "--run",
        s(dir),
        "--data-root",
        s(data),
    ];
    args.extend_from_slice(extra);
    harness(&args)
}

/// `harness compare --preset smoke EXTRA...` with every output inside `root`; the records.
fn compare_in(root: &Path, extra: &[&str]) -> Vec<ResultRecord> {
    let (out, data, results) = (root.join("out"), root.join("data"), root.join("results"));
    let mut args = vec!["compare", "--preset", "smoke", "--seeds", "1"];
    args.extend_from_slice(extra);
    args.extend([
        "--out",
        s(&out),
        "--data-root",
        s(&data),
        "--results",
        s(&results),
    ]);
    assert_eq!(harness(&args).unwrap(), 0);
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

/// `harness compare --task maze-hard --preset smoke --seeds 3` into these folders: three
/// seeds, below the default six, so that the outputs' "no verdict" path is the one tested.
fn compare_smoke(out: &Path, data: &Path, results: &Path) -> u8 {
    harness(&[
        "compare",
        "--task",
        "maze-hard",
        "--preset",
        "smoke",
        "--seeds",
        "3",
        "--out",
        s(out),
        "--data-root",
        s(data),
        "--results",
        s(results),
    ])
    .unwrap()
}

#[test]
fn compare_smoke_writes_rows_records_plots_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, data, results) = (
        tmp.path().join("out"),
        tmp.path().join("data"),
        tmp.path().join("results"),
    );
    assert_eq!(compare_smoke(&out, &data, &results), 0);

    // One record per model and seed, on the same data, under the same budget and protocol.
    let records: Vec<ResultRecord> =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let runs: Vec<(&str, u64)> = records.iter().map(|r| (r.model.as_str(), r.seed)).collect();
    assert_eq!(
        runs,
        [
            ("trm-att", 0),
            ("hrm", 0),
            ("trm-att", 1),
            ("hrm", 1),
            ("trm-att", 2),
            ("hrm", 2)
        ]
    );
    for r in &records {
        assert_eq!(r.dataset_hash, records[0].dataset_hash);
        assert_eq!(r.dataset_hash.len(), 64);
        // Budgets match training FLOPs by default: the first model's 4 steps set them.
        if r.model == "trm-att" {
            assert_eq!(r.train_steps, 4);
        }
        let per_step = r.train_flops / r.train_steps as f64;
        assert!((r.train_flops - records[0].train_flops).abs() <= per_step / 2.0 + 1.0);
        assert_eq!(r.budget_match, "flops");
        assert_eq!(r.preset, "smoke");
        assert_eq!(r.metrics.examples, 12, "the whole test split is scored");
        // Test-time compute: the preset's budgets (1, 2, 4: up to twice the trained 2).
        let budgets: Vec<usize> = r.metrics.test_time.iter().map(|p| p.steps).collect();
        assert_eq!(budgets, [1, 2, 4]);
        let trained = &r.metrics.test_time[1];
        assert_eq!(
            trained.exact, r.metrics.exact,
            "the trained budget is the headline"
        );
        assert_eq!(trained.exact_halting, r.metrics.exact_at_halt);
        assert!(r
            .metrics
            .test_time
            .iter()
            .all(|p| p.mean_steps_halting <= p.steps as f64));
        assert_eq!(r.metrics.per_example.exact.0.len(), 12);
        assert!(r.metrics.maze_valid_path.is_some());
        let e = r.metrics.exact;
        assert!(e.low <= e.value && e.value <= e.high && e.total == 12);
        assert!(r.trainable_parameters > 0 && r.train_flops > 0.0);
        assert_eq!(r.config.total_steps, r.train_steps);
        // Every evaluation during training read the validation split, the last at the end
        // on all of it; the test split was read once.
        assert_eq!(r.selection.during_training, "validation");
        let val = r.validation.as_ref().expect("scored on validation");
        assert_eq!(
            r.learning_curve.last(),
            Some(&(r.train_steps, val.exact)),
            "the curve ends with the whole validation split"
        );
        if r.model == "trm-att" {
            assert_eq!(r.learning_curve.len(), 2, "validation at steps 2 and 4");
        }
        // Answer selection: every rule, scored by the maze headline on the trained steps;
        // the last step is the headline itself, halting runs the model's own steps, and no
        // rule passes the oracle.
        let rules = &r.metrics.answer_rules;
        let order: Vec<AnswerRule> = rules.iter().map(|s| s.rule).collect();
        assert_eq!(order, AnswerRule::ALL);
        assert_eq!(Some(rules[0].right), r.metrics.maze_valid_path);
        assert_eq!(rules[1].mean_steps, r.metrics.mean_halting_step);
        assert_eq!(
            rules[0].inference_flops_per_puzzle,
            r.inference_flops_per_puzzle
        );
        for rule in rules {
            assert!(rule.right.value <= rules[4].right.value, "{rule:?}");
            assert_eq!(rule.failures, 12 - rule.right.successes);
            assert!(rule.selection_failures <= rule.failures);
            assert_eq!(rule.per_example.0.len(), 12);
        }
    }
    // HRM has twice the networks of this TRM, so more parameters.
    assert!(records[1].trainable_parameters > records[0].trainable_parameters);

    // The results table: the documented header, one row per model, every row complete.
    let csv = std::fs::read_to_string(results.join("maze-hard-smoke.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), 7);
    let columns = CSV_HEADER.split(',').count();
    for row in &lines[1..] {
        assert_eq!(row.split(',').count(), columns, "{row}");
    }
    // The label says the preset, the data source, the overrides and the verdict, derived
    // from the run (generated data: never the papers' setting).
    for needle in [
        ",trm-att,smoke,smoke: smoke test (tiny task and models; numbers are meaningless) | data: generator | no overrides | NOT the papers' setting (",
        ",generator,,false,0,flops,",
    ] {
        assert!(lines[1].contains(needle), "{needle} not in {}", lines[1]);
    }
    let json_records = std::fs::read_dir(results.join("records")).unwrap().count();
    assert_eq!(json_records, 6);

    // Paired statistics: TRM - HRM per metric over the three seeds, the headline first, with
    // both intervals containing the mean, and a sentence in the table and the report.
    let paired: Vec<harness::science::paired::PairedDifference> =
        serde_json::from_str(&std::fs::read_to_string(out.join("paired.json")).unwrap()).unwrap();
    let metrics: Vec<&str> = paired.iter().map(|d| d.metric.as_str()).collect();
    assert_eq!(
        metrics,
        [
            "valid shortest path",
            "exact accuracy",
            "exact at halting step",
            "answer rule: last step",
            "answer rule: halting step",
            "answer rule: most confident step",
            "answer rule: majority over steps",
            "answer rule: oracle (any step)"
        ]
    );
    assert_eq!(
        paired.iter().filter(|d| d.headline).count(),
        1,
        "rules are secondary"
    );
    for d in &paired {
        assert_eq!((d.a.as_str(), d.b.as_str()), ("trm-att", "hrm"));
        assert_eq!(d.seeds, [0, 1, 2]);
        let (lo, hi) = d.seeds_and_examples.unwrap();
        let (t_lo, t_hi) = d.seed_level.t_interval.unwrap();
        assert!(
            lo <= t_lo && t_lo <= d.mean() && d.mean() <= t_hi && t_hi <= hi,
            "{d:?}"
        );
        assert_eq!(d.reading, harness::science::stats::Reading::TooFewSeeds);
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("trm-att − hrm on valid shortest path (headline)"),
        "{table}"
    );
    let test_time = std::fs::read_to_string(out.join("test_time.csv")).unwrap();
    assert_eq!(test_time.lines().count(), 1 + 6 * 3 * 2);
    let rules = std::fs::read_to_string(out.join("answer_rules.csv")).unwrap();
    assert_eq!(rules.lines().count(), 1 + 6 * 5);
    assert!(
        table.contains("| trm-att (3 seeds) | majority over steps |"),
        "{table}"
    );
    assert!(table.contains("inference FLOPs / solved puzzle"), "{table}");

    // Charts: every PNG decodes as an image; the SVGs name both models.
    let names = [
        "accuracy_vs_parameters",
        "accuracy_vs_train_flops",
        "accuracy_vs_inference_flops",
        "learning_curves",
        "accuracy_vs_test_time_compute",
        "accuracy_by_answer_rule",
    ];
    for name in names {
        let png = std::fs::read(out.join("plots").join(format!("{name}.png"))).unwrap();
        let (w, h) = plots::png::png_size(&png).unwrap();
        assert!(w >= 800 && h >= 400, "{name}: {w}x{h}");
        let svg = std::fs::read_to_string(out.join("plots").join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.contains(">\ntrm-att (3 seeds)") && svg.contains(">\nhrm (3 seeds)"),
            "{name}"
        );
        assert!(
            svg.contains("preset smoke"),
            "{name}: the preset is in the title"
        );
    }

    // The report: both models, the scaled-down label, inline charts, the audit, the configs
    // with their differences highlighted; nothing fetched from elsewhere.
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "trm-att",
        "hrm",
        "Not the papers' setting",
        "<svg",
        "Audit of the data used",
        "Paired differences",
        "Audit of the evaluation setup",
        "Answer selection at test time",
        "class=diff",
        &records[0].dataset_hash,
    ] {
        assert!(report.contains(needle), "the report lacks {needle:?}");
    }
    assert!(!report.contains("http://") || !report.contains("src=\"http"));
    assert!(!report.contains("<script src") && !report.contains("<link"));

    // The evaluation setup's audit: three seeds cannot carry a verdict, and the smoke
    // preset smooths TRM's weights (EMA) and not HRM's, which it names; a script sees exit
    // code 1. No choice read the test split, and the budgets match in FLOPs.
    let audit_json = tmp.path().join("audit.json");
    assert_eq!(
        harness(&["audit", "--run", s(&out), "--json", s(&audit_json)]).unwrap(),
        1
    );
    let audit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&audit_json).unwrap()).unwrap();
    let warned: Vec<&str> = audit[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "warn")
        .map(|c| c["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        warned,
        [
            "enough paired seeds for a verdict",
            "EMA alike across models"
        ]
    );

    // Run again: the finished runs are reused, and the rows are appended.
    assert_eq!(compare_smoke(&out, &data, &results), 0);
    let csv = std::fs::read_to_string(results.join("maze-hard-smoke.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let train = |dir: &Path, extra: &[&str]| smoke_train("hrm", 5, dir, &data, extra);
    assert_eq!(train(&a, &[]).unwrap(), 0);
    // Stopped after step 2 (between evaluations), then continued.
    assert_eq!(train(&b, &["--stop-after", "2"]).unwrap(), 130);
    let err = train(&b, &[]).unwrap_err();
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(train(&b, &["--resume"]).unwrap(), 0);
    let ckpt = |dir: &Path| {
        let p = dir.join("checkpoints/step_5.safetensors");
        models::checkpoint::load_state_dict(&p, &candle_core::Device::Cpu).unwrap()
    };
    let (wa, wb) = (ckpt(&a), ckpt(&b));
    assert_eq!(wa.len(), wb.len());
    let values = |t: &candle_core::Tensor| -> Vec<f32> {
        let t = t.flatten_all().unwrap();
        t.to_dtype(candle_core::DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    for (name, ta) in &wa {
        assert_eq!(
            values(ta),
            values(&wb[name]),
            "{name} differs after resuming"
        );
    }
    let metrics = |dir: &Path| std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let strip_wall = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| l.rsplit_once(',').map_or(l, |(a, _)| a).to_string())
            .collect()
    };
    assert_eq!(strip_wall(metrics(&a)), strip_wall(metrics(&b)));
    let scores_of = |dir: &Path| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join("scores.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["scores"].clone()
    };
    assert_eq!(scores_of(&a), scores_of(&b));

    // `harness eval` on the run reproduces the final scores.
    let out = tmp.path().join("eval");
    assert_eq!(
        harness(&["eval", "--run", s(&a), "--out", s(&out)]).unwrap(),
        0
    );
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("scores.json")).unwrap()).unwrap();
    // One schema for both: the run's final evaluation and `harness eval`'s.
    assert_eq!(scores["scores"], trained["scores"]);
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&scores), keys(&trained));
    let predictions = datasets::npy::read::<u8>(&out.join("predictions.npy")).unwrap();
    assert_eq!(predictions.shape, vec![12, 25]);

    // A bare state dict (official names only, as an official checkpoint holds) evaluates the
    // same: HRM's recipe has no EMA, so the weights are the live ones.
    let weights: Vec<(String, candle_core::Tensor)> = wa
        .into_iter()
        .filter(|(k, _)| k.starts_with("model."))
        .collect();
    let bare = tmp.path().join("weights.safetensors");
    models::checkpoint::write(&bare, &weights).unwrap();
    let out2 = tmp.path().join("eval2");
    let eval_bare = |model: &str| {
        let mut args = vec!["eval", "--checkpoint", s(&bare), "--task", "maze-hard"];
        args.extend([
            "--model",
            model,
            "--preset",
            "smoke",
            "--set",
            "train.steps=5",
        ]);
        args.extend(["--data-root", s(&data), "--out", s(&out2)]);
        harness(&args)
    };
    assert_eq!(eval_bare("hrm").unwrap(), 0);
    let scores2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("scores.json")).unwrap()).unwrap();
    assert_eq!(scores2["scores"], trained["scores"]);
    let err = eval_bare("trm-att").unwrap_err();
    assert!(err.contains("model lacks"), "{err}");
}

#[test]
fn bad_configs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let base = |extra: &[&str]| {
        let mut args = vec!["compare", "--task", "maze-hard", "--data-root", s(&data)];
        if !extra.contains(&"--preset") {
            args.extend(["--preset", "smoke"]);
        }
        args.extend_from_slice(extra);
        let out = tmp.path().join("out");
        let results = tmp.path().join("results");
        let mut owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        owned.extend([
            "--out".into(),
            s(&out).into(),
            "--results".into(),
            s(&results).into(),
        ]);
        let refs: Vec<&str> = owned.iter().map(|a| a.as_str()).collect();
        harness(&refs)
    };
    let err = base(&["--models", "trm-att,gpt"]).unwrap_err();
    assert!(err.contains("unknown model \"gpt\""), "{err}");
    let err = base(&["--set", "train.lr=-1"]).unwrap_err();
    assert!(err.contains("train.lr must be positive"), "{err}");
    let err = base(&["--set", "arch.hidden_size=17"]).unwrap_err();
    assert!(err.contains("num_heads"), "{err}");
    let err = base(&["--set", "data.side=1"]).unwrap_err();
    assert!(err.contains("side"), "{err}");
    let err = base(&["--preset", "nope.toml"]).unwrap_err();
    assert!(err.contains("nope.toml"), "{err}");
    let err = base(&["--set", "train.warmup=3"]).unwrap_err();
    assert!(err.contains("warmup"), "{err}");
    assert!(!tmp.path().join("results").exists(), "no partial results");
}

/// A hand-made ARC folder: two training tasks, two evaluation tasks, one of them with two
/// test inputs.
fn arc_fixture(root: &Path) {
    std::fs::create_dir_all(root.join("training")).unwrap();
    std::fs::create_dir_all(root.join("evaluation")).unwrap();
    let task = |a: u8, b: u8, tests: usize| {
        let pair = |x: u8| {
            format!(
                r#"{{"input": [[{x}, 0], [0, {x}]], "output": [[{y}, {y}], [0, 0]]}}"#,
                y = (x + 1) % 10
            )
        };
        let tests: Vec<String> = (0..tests).map(|i| pair(b + i as u8)).collect();
        format!(
            r#"{{"train": [{}, {}], "test": [{}]}}"#,
            pair(a),
            pair(a + 1),
            tests.join(", ")
        )
    };
    std::fs::write(root.join("training/aaaa0001.json"), task(1, 3, 1)).unwrap();
    std::fs::write(root.join("training/aaaa0002.json"), task(2, 5, 1)).unwrap();
    std::fs::write(root.join("evaluation/bbbb0001.json"), task(4, 6, 2)).unwrap();
    std::fs::write(root.join("evaluation/bbbb0002.json"), task(5, 7, 1)).unwrap();
}

#[test]
fn arc_compare_scores_pass_at_k_per_checkpoint_and_pooled() {
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("arc");
    arc_fixture(&arc);
    let from = format!("data.from=[\"{}\"]", s(&arc));
    let records = compare_in(
        tmp.path(),
        &[
            "--task",
            "arc-agi-1",
            "--set",
            &from,
            "--set",
            "data.num-aug=2",
            "--models",
            "trm-att",
        ],
    );
    let r = &records[0];
    let arc_scores = r.metrics.arc.as_ref().expect("ARC scores");
    // Two evaluation tasks with three test inputs; each input seen in 3 versions.
    assert_eq!((arc_scores.tasks, arc_scores.test_inputs), (2, 3));
    assert_eq!(r.metrics.examples, 9);
    assert_eq!(arc_scores.strict[&2].total, 2);
    assert!(arc_scores.strict[&1].value <= arc_scores.strict[&2].value);
    let pooled = r
        .arc_pooled_over_checkpoints
        .as_ref()
        .expect("pooled scores");
    // Every checkpoint's votes, each over the whole test split (9 inputs): reading one
    // checkpoint, or a training-time subset, gives other counts.
    assert_eq!(pooled.checkpoints, [2, 4]);
    assert_eq!(pooled.predictions, 2 * 9);
    assert_eq!(pooled.scores.tasks, 2);
    // Each evaluation's votes are written once beside the run, not into its state file.
    let run = tmp.path().join("out/runs/trm-att-seed0");
    for step in [2, 4] {
        assert!(run
            .join(format!("arc_predictions/step_{step}.json"))
            .exists());
    }
    let state = std::fs::read_to_string(run.join("state.json")).unwrap();
    assert!(!state.contains("canvas"));
    let report = std::fs::read_to_string(tmp.path().join("out/report.html")).unwrap();
    assert!(report.contains("pass@2 pooled over checkpoints"));
}

/// Pooling counts the eval-interval checkpoints only: a run stopped at a step off the
/// schedule (Ctrl-C, SIGTERM and `--stop-after` save a checkpoint there) and resumed pools
/// the same votes as the run never stopped.
#[test]
fn an_interrupted_arc_run_pools_the_votes_of_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("arc");
    arc_fixture(&arc);
    let from = format!("data.from=[\"{}\"]", s(&arc));
    let data = tmp.path().join("data");
    let train = |run: &Path, extra: &[&str], code: u8| {
        let mut args = vec![
            "train",
            "--model",
            "trm-att",
            "--task",
            "arc-agi-1",
            "--preset",
            "smoke",
            "--set",
            &from,
            "--set",
            "data.num-aug=2",
            "--set",
            "train.steps=4",
            "--set",
            "train.eval_interval=2",
            // Pruning keeps the last checkpoint and, on ARC, every one pooling reads.
            "--set",
            "train.keep_checkpoints=1",
            "--run",
            s(run),
            "--data-root",
            s(&data),
        ];
        args.extend_from_slice(extra);
        assert_eq!(harness(&args).unwrap(), code);
    };
    let (whole, stopped) = (tmp.path().join("whole"), tmp.path().join("stopped"));
    train(&whole, &[], 0);
    train(&stopped, &["--stop-after", "3"], 130);
    assert!(stopped.join("checkpoints/step_3.safetensors").exists());
    train(&stopped, &["--resume"], 0);
    let pool = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("arc_pooled.json")).unwrap())
            .unwrap()
    };
    let (a, b) = (pool(&whole), pool(&stopped));
    assert_eq!(a["checkpoints"], serde_json::json!([2, 4]));
    assert_eq!(a, b);
    // The off-schedule step 3 went once step 4 was saved; the pooled ones stayed.
    assert_eq!(checkpoint_steps(&stopped), [2, 4]);
}

fn checkpoint_steps(run: &Path) -> Vec<u64> {
    harness::run::run_dir::checkpoints(run)
        .unwrap()
        .into_iter()
        .map(|(step, _)| step)
        .collect()
}

/// After each save a run keeps its last `train.keep_checkpoints` checkpoints (2 unless set)
/// and removes the older ones, and still resumes from the last.
#[test]
fn a_run_keeps_its_last_checkpoints_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (default, one) = (tmp.path().join("default"), tmp.path().join("one"));
    assert_eq!(smoke_train("trm-att", 9, &default, &data, &[]).unwrap(), 0);
    assert_eq!(checkpoint_steps(&default), [6, 9]);
    let keep_one = ["--set", "train.keep_checkpoints=1"];
    let stop = [&keep_one[..], &["--stop-after", "4"]].concat();
    assert_eq!(smoke_train("trm-att", 9, &one, &data, &stop).unwrap(), 130);
    assert_eq!(checkpoint_steps(&one), [4]);
    let resume = [&keep_one[..], &["--resume"]].concat();
    assert_eq!(smoke_train("trm-att", 9, &one, &data, &resume).unwrap(), 0);
    assert_eq!(checkpoint_steps(&one), [9]);
    let none = ["--set", "train.keep_checkpoints=0"];
    let err = smoke_train("trm-att", 9, &tmp.path().join("none"), &data, &none).unwrap_err();
    assert!(
        err.contains("train.keep_checkpoints must be at least 1"),
        "{err}"
    );
}

/// A step that cannot fit the device's memory is refused before the run directory exists, so
/// the same command with the memory it needs starts the run.
#[test]
fn a_run_refused_for_memory_leaves_no_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    let err = smoke_train("trm-att", 3, &run, &data, &["--device-memory", "1KB"]).unwrap_err();
    assert!(err.contains("more than the"), "{err}");
    assert!(!run.exists(), "a refused run left {}", run.display());
    assert_eq!(smoke_train("trm-att", 3, &run, &data, &[]).unwrap(), 0);
}

#[test]
fn flops_matching_gives_every_model_the_first_models_training_compute() {
    let tmp = tempfile::tempdir().unwrap();
    let records = compare_in(
        tmp.path(),
        &[
            "--task",
            "maze-hard",
            "--match",
            "flops",
            "--set",
            "train.steps=6",
        ],
    );
    let (trm, hrm) = (&records[0], &records[1]);
    assert_eq!(trm.train_steps, 6);
    assert_eq!(hrm.budget_match, "flops");
    // HRM's step is cheaper here, so it gets more steps for the same compute.
    let per_step = hrm.train_flops / hrm.train_steps as f64;
    assert!(hrm.train_steps > trm.train_steps);
    assert!((hrm.train_flops - trm.train_flops).abs() <= per_step / 2.0 + 1.0);
}

/// `train --gpus 2` (two CPU ranks here) ends with the weights, optimiser state and scores
/// of `--gpus 1`: the rank count does not change a run; a run of two ranks resumes on two
/// (bit for bit) or on one.
#[test]
fn two_ranks_train_the_run_of_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let train = |dir: &Path, extra: &[&str]| smoke_train("trm-att", 6, dir, &data, extra);
    assert_eq!(train(&one, &[]).unwrap(), 0);
    assert_eq!(train(&two, &["--gpus", "2"]).unwrap(), 0);
    let ckpt = |dir: &Path| {
        let p = dir.join("checkpoints/step_6.safetensors");
        models::checkpoint::load_state_dict(&p, &candle_core::Device::Cpu).unwrap()
    };
    let (a, b) = (ckpt(&one), ckpt(&two));
    let values = |t: &candle_core::Tensor| -> Vec<f32> {
        t.flatten_all()
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    for (name, ta) in a.iter().filter(|(n, _)| !n.starts_with("carry.")) {
        let (x, y) = (values(ta), values(&b[name]));
        let scale = x.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        let worst = x
            .iter()
            .zip(&y)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            worst <= 1e-4 * scale,
            "{name}: two ranks differ by {worst:e} of {scale:e}"
        );
    }
    // Each rank evaluated its share into a file; rank 0 merged them all and removed them.
    let examples = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("eval.csv"))
            .unwrap()
            .lines()
            .map(|l| l.split(',').nth(3).unwrap().to_string())
            .collect()
    };
    assert_eq!(examples(&one), examples(&two));
    assert!(!two.join("eval-shards").exists());
    assert!(two.join("scores.json").exists());
    // A finished run of two ranks resumes as finished.
    assert_eq!(train(&two, &["--gpus", "2", "--resume"]).unwrap(), 0);
    // Stopped at step 2, its checkpoint holds every rank's slots: resumed on two ranks it is
    // the uninterrupted run bit for bit, and one rank can continue it too.
    let stopped = tmp.path().join("stopped");
    assert_eq!(
        train(&stopped, &["--gpus", "2", "--stop-after", "2"]).unwrap(),
        130
    );
    let on_one = tmp.path().join("on-one");
    let copied = std::process::Command::new("cp")
        .args(["-r", s(&stopped), s(&on_one)])
        .status()
        .unwrap();
    assert!(copied.success());
    assert_eq!(train(&stopped, &["--gpus", "2", "--resume"]).unwrap(), 0);
    let resumed = ckpt(&stopped);
    for (name, t) in &b {
        assert_eq!(values(t), values(&resumed[name]), "{name} after resuming");
    }
    assert_eq!(train(&on_one, &["--resume"]).unwrap(), 0);
    let continued = ckpt(&on_one);
    for (name, t) in b.iter().filter(|(n, _)| !n.starts_with("carry.")) {
        let (x, y) = (values(t), values(&continued[name]));
        let scale = x.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        let worst = x
            .iter()
            .zip(&y)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            worst <= 1e-4 * scale,
            "{name}: one rank differs by {worst:e}"
        );
    }
    // Every rank holds as many slots as the others: 8 over 3 ranks is refused up front.
    let err = train(&tmp.path().join("uneven"), &["--gpus", "3"]).unwrap_err();
    assert!(err.contains("does not split evenly over 3 ranks"), "{err}");
    assert!(err.contains("Rank counts that divide 8: 2, 4, 8"), "{err}");
    assert!(!tmp.path().join("uneven").exists());
    // A batch smaller than the ranks is refused before anything runs.
    let err = train(&tmp.path().join("wide"), &["--gpus", "64"]).unwrap_err();
    assert!(err.contains("leaves a rank without one"), "{err}");
}
