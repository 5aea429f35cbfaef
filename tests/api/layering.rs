//! The module graph stays one-way: no module of `src/` imports one that imports it back, at
//! the top level (`http` → `services` → `store`…) or among the submodules of one top-level
//! module. Read from the source (`crate::…` and `super::…` paths outside `#[cfg(test)]`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` is the crate root.
fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("main") if parts.len() == 1 => return None,
        Some("lib") if parts.len() == 1 => parts.clear(),
        Some("mod") => {
            parts.pop();
        }
        _ => {}
    }
    Some(parts)
}

/// The code of a file up to its test module, without `//` comments.
fn code_of(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .take_while(|line| !line.trim_start().starts_with("#[cfg(test)]"))
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path named after `crate::` or `super::`, resolved to absolute segments.
fn referenced_paths(module: &ModPath, code: &str) -> Vec<ModPath> {
    // `super` of `a::b` is `a`, whether `b` is `a/b.rs` or `a/b/mod.rs`.
    let parent: ModPath = module[..module.len().saturating_sub(1)].to_vec();
    let mut found = Vec::new();
    for (anchor, base) in [("crate::", ModPath::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(anchor) {
            if at > 0 && is_ident(code[..at].chars().last().unwrap()) {
                continue;
            }
            let rest = &code[at + anchor.len()..];
            let mut path = base.clone();
            let mut tail = rest;
            loop {
                let ident: String = tail.chars().take_while(|c| is_ident(*c)).collect();
                if ident.is_empty() {
                    break;
                }
                tail = &tail[ident.len()..];
                path.push(ident);
                match tail.strip_prefix("::") {
                    Some(next) => tail = next,
                    None => break,
                }
            }
            if let Some(group) = tail.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or_default();
                for item in group.split(',') {
                    let first: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                    let mut full = path.clone();
                    if !first.is_empty() && first != "self" {
                        full.push(first);
                    }
                    found.push(full);
                }
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The longest prefix of `path` that is a module.
fn resolve(modules: &BTreeSet<ModPath>, path: &ModPath) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, bool>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), true);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(true) => {
                    let start = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(false) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), false);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .filter_map(|node| {
            (!state.contains_key(node))
                .then(|| visit(node, graph, &mut state, &mut Vec::new()))
                .flatten()
        })
        .next()
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sources: Vec<(ModPath, PathBuf)> = files
        .into_iter()
        .filter_map(|file| module_of(&src, &file).map(|module| (module, file)))
        .collect();
    let modules: BTreeSet<ModPath> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeSet::new();
    for (module, file) in &sources {
        for path in referenced_paths(module, &code_of(file)) {
            edges.insert((module.clone(), resolve(&modules, &path)));
        }
    }
    assert!(
        edges.len() > 50,
        "the scan found too few imports: {edges:?}"
    );

    // Top level: `http`, `services`, `store`…
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in &edges {
        if let (Some(a), Some(b)) = (from.first(), to.first()) {
            if a != b {
                top.entry(a.clone()).or_default().insert(b.clone());
            }
        }
    }
    assert_eq!(find_cycle(&top), None, "top-level modules: {top:#?}");
    // The direction of the main flow, beyond the absence of cycles.
    for (lower, upper) in [
        ("store", "services"),
        ("store", "http"),
        ("store", "config"),
        ("services", "http"),
        ("services", "jobs"),
        ("domain", "store"),
        ("revenuecat", "store"),
    ] {
        assert!(
            !top.get(lower).is_some_and(|deps| deps.contains(upper)),
            "`{lower}` must not import `{upper}`: {top:#?}"
        );
    }

    // Inside each top-level module: `services::webhooks` → `services::user_resyncs`…
    let tops: BTreeSet<&String> = modules.iter().filter_map(|m| m.first()).collect();
    for parent in tops {
        let inner = |m: &ModPath| -> Option<String> {
            (m.first() == Some(parent))
                .then(|| m.get(1).cloned().unwrap_or_else(|| "(mod.rs)".into()))
        };
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &edges {
            if let (Some(a), Some(b)) = (inner(from), inner(to)) {
                if a != b {
                    graph.entry(a).or_default().insert(b);
                }
            }
        }
        assert_eq!(find_cycle(&graph), None, "inside `{parent}`: {graph:#?}");
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_owned(), BTreeSet::from(["b".to_owned()]))].into();
    assert_eq!(find_cycle(&acyclic), None);
}
