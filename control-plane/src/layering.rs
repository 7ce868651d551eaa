//! Holds the direction of dependencies: reads every source file of this crate, finds the
//! modules each refers to (`crate::…`, `super::…`, `self::…`), and fails on an import of a
//! higher layer, on a circle between files, and on a file over the size limit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, top first; a file may use its own layer and the ones below.
const LAYERS: &[&[&str]] = &[
    &["startup"],
    &["routes"],
    &["service"],
    &["state"],
    &[
        "cluster",
        "directory",
        "mail",
        "hasher",
        "keys",
        "throttle",
        "metrics",
        "replica",
        "error",
        "config",
        "failpoint",
        "telemetry",
    ],
];

/// Longest non-test source file, in lines.
const MAX_LINES: usize = 800;

type Module = Vec<String>;

fn layer_of(m: &Module) -> Option<usize> {
    let top = m.first()?;
    LAYERS.iter().position(|l| l.contains(&top.as_str()))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("lib" | "main" | "mod")
    ) {
        parts.pop();
    }
    parts
}

/// The source without its `#[cfg(test)]` module (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod ").map_or(text, |i| &text[..i])
}

/// The module paths named after `crate::`, `super::` or `self::` in `text`, resolved against
/// the module `here`.
fn references(text: &str, here: &Module) -> Vec<Module> {
    let mut out = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", here[..here.len().saturating_sub(1)].to_vec()),
        ("self::", here.clone()),
    ] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let (mut base, mut tail) = (base.clone(), rest);
            // `super::super::x`
            while let Some(t) = tail.strip_prefix("super::").filter(|_| prefix == "super::") {
                base.pop();
                tail = t;
            }
            for path in paths_at(tail) {
                let mut m = base.clone();
                m.extend(path);
                out.push(m);
            }
        }
    }
    out
}

/// `a::b::c` or `{a::b, c}` at the start of `s`, as lists of segments.
fn paths_at(s: &str) -> Vec<Vec<String>> {
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 0;
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return items
            .into_iter()
            .flat_map(|item| paths_at(item.trim()))
            .collect();
    }
    let segs: Vec<String> = s
        .split("::")
        .map(|seg| {
            seg.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|seg| !seg.is_empty() && seg.chars().all(|c| !c.is_ascii_uppercase()))
        .collect();
    if segs.is_empty() {
        Vec::new()
    } else {
        vec![segs]
    }
}

struct Crate {
    files: BTreeMap<Module, PathBuf>,
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

fn read_crate(src: &Path) -> Crate {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let files: BTreeMap<Module, PathBuf> = paths
        .into_iter()
        .filter(|p| !p.ends_with("main.rs"))
        .map(|p| (module_of(src, &p), p))
        .collect();
    let mut edges = BTreeMap::new();
    for (m, path) in &files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut to = BTreeSet::new();
        for r in references(without_tests(&text), m) {
            // The longest prefix that is a file of this crate.
            if let Some(target) = (1..=r.len())
                .rev()
                .map(|k| r[..k].to_vec())
                .find(|k| files.contains_key(k))
                && &target != m
            {
                to.insert(target);
            }
        }
        edges.insert(m.clone(), to);
    }
    Crate { files, edges }
}

/// Strongly connected groups of more than one file.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Reachability by repeated search: fine for a few dozen files.
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let all: BTreeMap<&Module, BTreeSet<Module>> = edges.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<Vec<Module>> = Vec::new();
    for (m, r) in &all {
        let group: Vec<Module> = r
            .iter()
            .filter(|n| all.get(n).is_some_and(|back| back.contains(*m)))
            .cloned()
            .collect();
        if group.len() > 1 && !out.iter().any(|g| g.contains(m)) {
            out.push(group);
        }
    }
    out
}

#[test]
fn dependencies_point_down_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let krate = read_crate(&src);
    assert!(krate.files.len() > 20, "found {} files", krate.files.len());
    let name = |m: &Module| m.join("::");
    let mut problems = Vec::new();
    for (from, tos) in &krate.edges {
        let Some(lf) = layer_of(from) else {
            continue;
        };
        for to in tos {
            if layer_of(to).is_some_and(|lt| lt < lf) {
                problems.push(format!(
                    "{} imports {}, a layer above it",
                    name(from),
                    name(to)
                ));
            }
        }
    }
    for group in circles(&krate.edges) {
        problems.push(format!(
            "import circle: {}",
            group.iter().map(name).collect::<Vec<_>>().join(", ")
        ));
    }
    for (m, path) in &krate.files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines = without_tests(&text).lines().count();
        if lines > MAX_LINES {
            problems.push(format!("{} has {lines} lines (limit {MAX_LINES})", name(m)));
        }
        if m.len() == 1 && layer_of(m).is_none() && m[0] != "layering" {
            problems.push(format!("{} belongs to no layer", name(m)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_upward_imports_and_circles() {
    let here: Module = vec!["service".into(), "auth".into()];
    let refs = references(
        "use crate::routes::error::ApiError;\nuse super::{policy::{self, X}, recovery};",
        &here,
    );
    assert!(refs.contains(&vec!["routes".into(), "error".into()]));
    assert!(refs.contains(&vec!["service".into(), "policy".into()]));
    assert!(refs.contains(&vec!["service".into(), "recovery".into()]));
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(circles(&edges).len(), 1);
    edges.insert(b, BTreeSet::new());
    assert!(circles(&edges).is_empty());
}
