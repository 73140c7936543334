//! Parity with the official PyTorch code on every golden folder in `../shared/golden`
//! (skipped, saying so, when the folder is absent).

use models::flops::parameter_counts;
use models::parity::{run_golden, run_golden_with_weights, Golden, Tolerances};
use std::path::PathBuf;

fn golden(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/golden")
        .join(name);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED golden parity {name}: ../shared/golden is not present in this checkout");
        None
    }
}

fn check(name: &str) {
    let Some(dir) = golden(name) else { return };
    check_deviations(name, run_golden(&dir, Tolerances::default()).unwrap());
    // The same run from the PyTorch pickle of the same state dict.
    check_deviations(
        name,
        run_golden_with_weights(&dir, "weights.pt", Tolerances::default()).unwrap(),
    );
}

fn check_deviations(name: &str, deviations: Vec<models::parity::Deviation>) {
    let mut failures = Vec::new();
    for d in &deviations {
        println!(
            "{:<60} max|diff| {:.3e}  rel {:.2e}  tol {:.2e}",
            d.name,
            d.max_abs_diff,
            d.relative(),
            d.tolerance
        );
        if !d.ok() {
            failures.push(d.name.clone());
        }
    }
    assert!(
        deviations.len() > 50,
        "only {} tensors compared",
        deviations.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: out of tolerance: {failures:?}"
    );
}

#[test]
fn trm_attention_matches_the_official_code() {
    check("trm-att");
}

#[test]
fn trm_mlp_matches_the_official_code() {
    check("trm-mlp");
}

#[test]
fn hrm_matches_the_official_code() {
    check("hrm");
}

fn check_optimizers(name: &str) {
    let Some(dir) = golden(name) else { return };
    let deviations = models::parity::run_optimizer_golden(&dir, 1e-5).unwrap();
    for d in &deviations {
        println!(
            "{:<60} max|diff| {:.3e}  rel {:.2e}",
            d.name,
            d.max_abs_diff,
            d.relative()
        );
    }
    let failures: Vec<_> = deviations
        .iter()
        .filter(|d| !d.ok())
        .map(|d| d.name.clone())
        .collect();
    assert!(
        deviations.len() >= 20,
        "only {} tensors compared",
        deviations.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: out of tolerance: {failures:?}"
    );
}

#[test]
fn optimizers_match_the_official_code() {
    for name in ["trm-att", "trm-mlp", "hrm"] {
        check_optimizers(name);
    }
}

#[test]
fn parameter_counts_match_the_golden_weights() {
    for name in ["trm-att", "trm-mlp", "hrm"] {
        let Some(dir) = golden(name) else { return };
        let g = Golden::open(&dir, &candle_core::Device::Cpu).unwrap();
        let buffers = [
            "model.inner.H_init",
            "model.inner.L_init",
            "model.inner.puzzle_emb.weights",
        ];
        let stored: usize = g
            .varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| !buffers.contains(&k.as_str()))
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum();
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let official = config["derived"]["num_trainable_params"].as_u64().unwrap();
        let counted = parameter_counts(&g.config, g.kind());
        assert_eq!(
            (stored as u64, counted.trainable),
            (official, official),
            "{name}"
        );
        assert_eq!(counted.puzzle_embedding, 3 * 64);
    }
}
