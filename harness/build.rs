//! Stamps the binary with the commit of the code it was built from, `-dirty` when that code
//! differs from the commit, so that a run records the code that trained it (not whatever
//! checkout a later command happens to run in).

use std::path::Path;
use std::process::Command;

/// The sources the binary is made of; a change to any of them re-runs this script.
const CODE: [&str; 9] = [
    "harness/src",
    "harness/presets",
    "harness/build.rs",
    "harness/Cargo.toml",
    "models",
    "datasets",
    "plots",
    "Cargo.toml",
    "Cargo.lock",
];

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for path in CODE {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let version = match git(&root, &["rev-parse", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            // HEAD and the index move with every commit, checkout and add.
            if let Some(git_dir) = git(&root, &["rev-parse", "--absolute-git-dir"]) {
                for file in ["HEAD", "index", "packed-refs"] {
                    println!("cargo:rerun-if-changed={git_dir}/{file}");
                }
                if let Some(branch) = git(&root, &["symbolic-ref", "-q", "HEAD"]) {
                    println!("cargo:rerun-if-changed={git_dir}/{branch}");
                }
            }
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(CODE);
            let dirty = git(&root, &status).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{head}-dirty")
            } else {
                head
            }
        }
        _ => "unknown (not built from a git checkout)".into(),
    };
    println!("cargo:rustc-env=HARNESS_CODE_VERSION={version}");
}
