//! The crate's module graph: every `crate::…` and `super::…` path in
//! `src/**/*.rs` is an edge from the module it is written in to the module
//! it names. The edges must form a DAG, between top-level modules
//! (`claim`, `durable`, `ledger`, …) and between every module below them
//! (`bilevel::direct`, `archive::take`, …): a cycle means two modules each
//! need the other, and neither can be read, tested or moved alone.
//!
//! `cargo test --test all imports -- --nocapture` prints every edge, by
//! module (`archive::take -> durable`) and between top-level modules.
//!
//! A `mod` declaration (parent → child) is structure, not an edge, and a
//! module using its ancestors' items is not a cycle to report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root: `["archive", "take"]`; empty for
/// the root.
type Module = Vec<String>;

#[test]
fn modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_edges(&src);
    println!("module edges (user -> used):");
    for (from, tos) in &edges {
        for to in tos {
            println!("  {} -> {}", shown(from), shown(to));
        }
    }
    let top = top_level(&edges);
    println!("top-level edges:");
    for (from, tos) in &top {
        println!(
            "  {from} -> {}",
            tos.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(cycle) = find_cycle(&top) {
        let witnesses: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {}: {}", w[0], w[1], witness(&edges, &w[0], &w[1])))
            .collect();
        panic!(
            "import cycle between top-level modules: {}\n  {}",
            cycle.join(" -> "),
            witnesses.join("\n  ")
        );
    }
    let fine: BTreeMap<String, BTreeSet<String>> = edges
        .iter()
        .map(|(from, tos)| (shown(from), tos.iter().map(shown).collect()))
        .collect();
    if let Some(cycle) = find_cycle(&fine) {
        panic!("import cycle between modules: {}", cycle.join(" -> "));
    }
}

/// The checker finds a planted cycle (and none in a chain), so the test
/// above can fail.
#[test]
fn a_planted_cycle_is_found_and_named() {
    let graph = |pairs: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    let chain = graph(&[("archive", "claim"), ("claim", "durable")]);
    assert_eq!(find_cycle(&chain), None);
    let cycle = graph(&[
        ("archive", "claim"),
        ("claim", "ledger"),
        ("ledger", "claim"),
    ]);
    assert_eq!(
        find_cycle(&cycle),
        Some(vec!["claim".into(), "ledger".into(), "claim".into()])
    );

    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod inner;\n// crate::b::not_code\nfn f() { let _ = \"crate::b::x\"; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "use super::f;\nuse crate::{b::{self, g}};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub fn g() { crate::a::h(); }\n#[cfg(test)]\nmod tests { use super::g; }\n",
    )
    .unwrap();
    let edges = module_edges(src);
    let top = top_level(&edges);
    assert_eq!(
        find_cycle(&top),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    // Comments, strings and a module's use of its parent are no edges.
    assert_eq!(
        edges
            .get(&vec!["a".to_string()])
            .cloned()
            .unwrap_or_default(),
        BTreeSet::new()
    );
    assert_eq!(
        edges[&vec!["a".to_string(), "inner".to_string()]],
        BTreeSet::from([vec!["b".to_string()]])
    );
}

fn shown(m: &Module) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// Every module's edges to other modules (itself and its ancestors left
/// out: those are its own items).
fn module_edges(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = rust_files(src);
    let modules: BTreeSet<Module> = files.iter().map(|f| file_module(src, f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let here = file_module(src, file);
        for (from, path) in paths(&here, &tokens(&text)) {
            // The longest prefix that is a module in a file of its own
            // (inline modules count as their file's).
            let Some(to) = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            let from = file_level(&modules, from);
            if from.starts_with(&to) || to.is_empty() {
                continue;
            }
            edges.entry(from).or_default().insert(to);
        }
    }
    edges
}

/// `m`, or its nearest ancestor that has a file of its own.
fn file_level(modules: &BTreeSet<Module>, mut m: Module) -> Module {
    while !modules.contains(&m) {
        m.pop();
    }
    m
}

/// The edges between top-level modules.
fn top_level(edges: &BTreeMap<Module, BTreeSet<Module>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in edges {
        for to in tos {
            if let (Some(a), Some(b)) = (from.first(), to.first())
                && a != b
            {
                top.entry(a.clone()).or_default().insert(b.clone());
            }
        }
    }
    top
}

/// The first module edge from top-level module `a` to `b`, to name in a
/// failure.
fn witness(edges: &BTreeMap<Module, BTreeSet<Module>>, a: &str, b: &str) -> String {
    edges
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| {
            from.first().map(String::as_str) == Some(a) && to.first().map(String::as_str) == Some(b)
        })
        .map(|(from, to)| format!("{} uses {}", shown(from), shown(to)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cycle (first node repeated at the end), or `None` for a DAG.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
    files.sort();
    files
}

/// `src/lib.rs` → root, `src/a.rs` and `src/a/mod.rs` → `a`,
/// `src/a/b.rs` → `a::b`. (`main.rs` and `build.rs` are their own
/// crates' roots; their `rlewatch::` paths are not `crate::` ones.)
fn file_module(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        m.last().map(String::as_str),
        Some("mod" | "lib" | "main" | "build")
    ) {
        m.pop();
    }
    m
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Punct(char),
}

/// The file's identifiers, `::` and punctuation, without comments, string
/// and character literals, or lifetimes.
fn tokens(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == 'r'
            && (next == Some('"') || next == Some('#'))
            && raw_string(&c, i).is_some()
        {
            i = raw_string(&c, i).unwrap();
        } else if ch == 'b' && next == Some('\'') {
            i = char_literal(&c, i + 1).unwrap_or(i + 2);
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ch == '\'' {
            // A character literal, or a lifetime / label (skipped as an
            // identifier with no meaning here).
            match char_literal(&c, i) {
                Some(end) => i = end,
                None => {
                    i += 1;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch == ':' && next == Some(':') {
            out.push(Tok::Colons);
            i += 2;
        } else if ch.is_whitespace() {
            i += 1;
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// The end of the raw string starting at `i` (`r"…"`, `r#"…"#`), if one
/// starts there.
fn raw_string(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(j)
}

/// The end of the character literal starting at `i`, if it is one (and
/// not a lifetime).
fn char_literal(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        return Some(j + 1);
    }
    (c.get(i + 2) == Some(&'\'')).then_some(i + 3)
}

/// Every `crate::…`, `super::…` and `self::…` path in `toks` (file of
/// module `here`), resolved to a full path from the crate root, with the
/// (possibly inline) module it is written in.
fn paths(here: &Module, toks: &[Tok]) -> Vec<(Module, Module)> {
    let mut out = Vec::new();
    // Inline modules: (module, brace depth at which it closes).
    let mut scope: Vec<(Module, usize)> = vec![(here.clone(), 0)];
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let current = scope.last().unwrap().0.clone();
        match &toks[i] {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if scope.len() > 1 && scope.last().unwrap().1 == depth {
                    scope.pop();
                }
            }
            Tok::Ident(m) if m == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut inner = current.clone();
                    inner.push(name.clone());
                    scope.push((inner, depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(start)
                if matches!(start.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1) == Some(&Tok::Colons)
                    && !matches!(
                        i.checked_sub(1).map(|p| &toks[p]),
                        Some(Tok::Colons) | Some(Tok::Punct('$'))
                    ) =>
            {
                let mut base = if start == "crate" {
                    Vec::new()
                } else {
                    current.clone()
                };
                let mut j = i;
                // `super::super::…`, `self::…`
                while let Some(Tok::Ident(s)) = toks.get(j) {
                    match s.as_str() {
                        "crate" if j == i => {}
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    if toks.get(j + 1) != Some(&Tok::Colons) {
                        break;
                    }
                    j += 2;
                }
                let end = tree(toks, j, &base, &mut |p| out.push((current.clone(), p)));
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads a use-tree or path at `i` below `base` (`a::b`, `a::{b, c::d}`,
/// `*`), reporting each full path; returns the index after it.
fn tree(toks: &[Tok], mut i: usize, base: &Module, report: &mut impl FnMut(Module)) -> usize {
    let mut path = base.clone();
    loop {
        match toks.get(i) {
            Some(Tok::Ident(s)) if s != "self" => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Ident(_)) => i += 1,
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::Punct('}')) | None => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        _ => i = tree(toks, i, &path, report),
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                i += 1;
                break;
            }
            _ => break,
        }
        if toks.get(i) == Some(&Tok::Colons) {
            i += 1;
        } else {
            break;
        }
    }
    report(path);
    i
}
