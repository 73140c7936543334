//! Datasets of run configs: built once under `<data root>/<task>-<hash of the data
//! section>` and reused, after checking every file against its manifest, by every model and
//! seed that asks for the same data.

use crate::run::build::{build_and_write, build_args_from_table};
use anyhow::{bail, Context, Result};
use datasets::format::{load_dataset, LoadedDataset};
use std::path::{Path, PathBuf};

/// The layout of the directories this module builds, hashed beside the data section so that
/// a directory built under an older layout is never reused: 2 added `val/`, the split
/// carved from the training side (a dataset built before has none).
pub const LAYOUT_VERSION: u32 = 2;

/// Where the data section `data` of task `task` lives under `root`.
pub fn dataset_dir(root: &Path, task: &str, data: &toml::Table) -> Result<PathBuf> {
    // toml::Table is ordered by key, so equal sections serialise equally. A section that
    // does not serialise must not share the hash of "" with every other such section.
    let mut text = toml::to_string(data)
        .with_context(|| format!("the data section of {task} cannot be written as TOML"))?;
    text.push_str(&format!("\nlayout = {LAYOUT_VERSION}"));
    let hash = datasets::manifest::sha256_hex(text.as_bytes());
    Ok(root.join(format!("{task}-{}", &hash[..12])))
}

/// Loads the dataset of a data section, building it first if it is not there yet.
pub fn ensure_dataset(root: &Path, task: &str, data: &toml::Table) -> Result<LoadedDataset> {
    let declared = data.get("task").and_then(|t| t.as_str());
    if declared != Some(task) {
        bail!("the data section builds task {declared:?}, but the run is for {task}");
    }
    let dir = dataset_dir(root, task, data)?;
    // One builder at a time: a second process waits, then finds the data built.
    let lock_path = dir.with_file_name(format!(
        ".{}.lock",
        dir.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    ));
    let _lock =
        datasets::fsio::DirLock::acquire(&lock_path, &format!("dataset {}", dir.display()))?;
    if !dir.join(datasets::manifest::MANIFEST_FILE).exists() {
        let args = build_args_from_table(data, &dir)?;
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let started = std::time::Instant::now();
        build_and_write(&args)?;
        println!(
            "built the {task} data in {:.1} s -> {}",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        // Just written and hashed: no need to hash it again.
        return load_dataset(&dir).with_context(|| format!("loading {}", dir.display()));
    }
    load_verified(&dir)
}

/// Loads a dataset directory and checks its files against the manifest.
pub fn load_verified(dir: &Path) -> Result<LoadedDataset> {
    let data = load_dataset(dir).with_context(|| format!("loading {}", dir.display()))?;
    if let Some(manifest) = &data.manifest {
        let problems = manifest.verify(dir)?;
        if !problems.is_empty() {
            bail!(
                "{} no longer matches its manifest: {}",
                dir.display(),
                problems.join("; ")
            );
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_version_is_part_of_the_directory_name() {
        // A directory built before val/ existed was named by the hash of the section alone:
        // it must never be found again.
        let data: toml::Table = toml::from_str("task = \"maze-hard\"\nside = 6\n").unwrap();
        let dir = dataset_dir(Path::new("data"), "maze-hard", &data).unwrap();
        let old = datasets::manifest::sha256_hex(toml::to_string(&data).unwrap().as_bytes());
        assert_ne!(
            dir,
            Path::new("data").join(format!("maze-hard-{}", &old[..12]))
        );
        assert_eq!(
            dir,
            dataset_dir(Path::new("data"), "maze-hard", &data).unwrap()
        );
    }
}
