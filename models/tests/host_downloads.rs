//! The source scan `models::host` promises: outside `host.rs`, no module a training or
//! evaluation step runs downloads a tensor to the host by itself (`to_vec0..3`,
//! `to_scalar`), so `host::bytes_read` sees every download a step makes. Test modules are
//! left out; so is `parity` (the comparison with recorded tensors, not a step).

use std::path::Path;

/// Downloads that happen once, outside any step, with the reason.
const ALLOWED: [(&str, &str); 1] = [(
    "attention.rs",
    "Rotary::new copies its tables to the host once, when the model is built",
)];

const DOWNLOADS: [&str; 5] = [".to_vec0", ".to_vec1", ".to_vec2", ".to_vec3", ".to_scalar"];

fn step_sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            step_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().unwrap().to_string_lossy();
            if !matches!(name.as_ref(), "host.rs" | "parity.rs") {
                out.push(path);
            }
        }
    }
}

#[test]
fn steps_download_only_through_host() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    step_sources(&src, &mut files);
    assert!(files.len() > 15, "found only {} sources", files.len());
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("\n#[cfg(test)]").next().unwrap();
        let name = path.strip_prefix(&src).unwrap().display().to_string();
        let allowed = ALLOWED.iter().filter(|(f, _)| *f == name).count();
        let hits: Vec<String> = code
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .filter(|(_, l)| DOWNLOADS.iter().any(|d| l.contains(d)))
            .map(|(i, l)| format!("{name}:{}: {}", i + 1, l.trim()))
            .collect();
        if hits.len() > allowed {
            found.extend(hits);
        }
    }
    assert!(
        found.is_empty(),
        "downloads that bypass models::host:\n{}",
        found.join("\n")
    );
}
