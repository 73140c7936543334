//! The harness crate's layers, checked from its sources: `cli` over `report` over `science`
//! over `run`, every module importing only from its own layer or those below, and no import
//! circle among modules. Test modules (from a file's first `#[cfg(test)]` on) are left out:
//! they may borrow fixtures from anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: [&str; 4] = ["run", "science", "report", "cli"];

/// `layer::module` for every `crate::layer::module` the non-test code of `source` names,
/// grouped imports (`crate::layer::{a::X, b}`) included.
fn references(source: &str) -> BTreeSet<String> {
    let code = source.split("\n#[cfg(test)]").next().unwrap_or(source);
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let layer: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !LAYERS.contains(&layer.as_str()) {
            continue;
        }
        let after = &rest[layer.len()..];
        let Some(path) = after.strip_prefix("::") else {
            continue;
        };
        let modules: Vec<String> = match path.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .map(|item| item.trim().split("::").next().unwrap_or("").to_string())
                .collect(),
            None => vec![path
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()],
        };
        for m in modules.into_iter().filter(|m| !m.is_empty()) {
            out.insert(format!("{layer}::{m}"));
        }
    }
    out
}

/// Every module of the layers with the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for layer in LAYERS {
        for entry in std::fs::read_dir(src.join(layer)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if name == "mod" {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let me = format!("{layer}::{name}");
            let mut refs = references(&source);
            refs.remove(&me);
            graph.insert(me, refs);
        }
    }
    graph
}

fn rank(module: &str) -> usize {
    let layer = module.split("::").next().unwrap();
    LAYERS.iter().position(|l| *l == layer).unwrap()
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let graph = graph();
    assert!(graph.len() > 20, "found only {} modules", graph.len());
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(m, refs)| {
            refs.iter()
                .filter(|r| rank(r) > rank(m))
                .map(move |r| format!("{m} -> {r}"))
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports that run upward:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_circle_among_modules() {
    let graph = graph();
    // Depth-first search; a module met again while still open closes a circle.
    fn visit<'g>(
        m: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        open: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = open.iter().position(|o| *o == m) {
            return Some(open[i..].iter().map(|s| s.to_string()).collect());
        }
        if !done.insert(m) {
            return None;
        }
        open.push(m);
        for next in graph.get(m).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, open, done) {
                return Some(circle);
            }
        }
        open.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        let mut open = Vec::new();
        if let Some(circle) = visit(m, &graph, &mut open, &mut done) {
            panic!("import circle: {} -> {}", circle.join(" -> "), circle[0]);
        }
    }
}

#[test]
fn grouped_and_inline_references_are_read() {
    let refs = references(
        "use crate::run::{eval::X, train};\nfn f() { crate::science::stats::ALPHA }\n#[cfg(test)]\nmod tests { use crate::cli::data; }",
    );
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    assert_eq!(refs, ["run::eval", "run::train", "science::stats"]);
}
