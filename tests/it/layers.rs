//! The floors of `src/`: a module imports only from its own floor or below, and the pure cores
//! (`signature`, `payload`) import nothing from the crate outside themselves. Read from the source
//! text, so a new `use crate::…` that breaks the order fails here before it becomes a circle.

use std::collections::BTreeSet;
use std::path::Path;

/// Lowest first. A module may import from a lower floor; on one floor, from a sibling only when
/// that sibling does not import it back; on floor 0, from nothing but itself.
const FLOORS: &[&[&str]] = &[
    &["signature", "payload"],
    &[
        "event_log",
        "dedupe",
        "metrics",
        "forward",
        "client_ip",
        "diagnostics",
    ],
    &["config"],
    &["live_config"],
    &["http"],
    &["admin"],
    &["app"],
    &["replay"],
    &["cli"],
];

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// The top-level crate modules that `code` names through `crate::` (comments left out).
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c}`: the first name of each item at the group's own depth.
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                            item_start = false;
                            found.insert(ident(&group[i..]));
                        }
                        _ => {}
                    }
                }
            } else {
                found.insert(ident(rest));
            }
        }
    }
    found
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every broken rule, as a sentence; `files` is (top-level module, source text).
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut edges = BTreeSet::new();
    let mut out = Vec::new();
    for (module, code) in files {
        let Some(own) = floor(module) else {
            out.push(format!("module {module} has no floor in FLOORS"));
            continue;
        };
        for target in imports(code) {
            if target == *module {
                continue;
            }
            match floor(&target) {
                _ if own == 0 => out.push(format!("{module} is a pure core but imports {target}")),
                Some(t) if t > own => {
                    out.push(format!("{module} imports {target}, a higher floor"))
                }
                Some(t) if t == own => {
                    edges.insert((module.clone(), target));
                }
                Some(_) => {}
                None => out.push(format!("{module} imports {target}, which has no floor")),
            }
        }
    }
    for (a, b) in &edges {
        if a < b && edges.contains(&(b.clone(), a.clone())) {
            out.push(format!("{a} and {b} import each other"));
        }
    }
    out
}

fn source_files(dir: &Path, out: &mut Vec<(String, String)>, top: Option<&str>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            source_files(&path, out, Some(top.unwrap_or(&name)));
        } else if path.extension().is_some_and(|e| e == "rs") {
            match top {
                Some(t) => out.push((t.to_string(), std::fs::read_to_string(&path).unwrap())),
                // lib.rs and main.rs are the roots that name every module.
                None if name == "lib" || name == "main" => {}
                None => out.push((name, std::fs::read_to_string(&path).unwrap())),
            }
        }
    }
}

#[test]
fn no_module_imports_from_a_higher_floor() {
    let mut files = Vec::new();
    source_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
        None,
    );
    assert!(files.len() > 20, "read {} files", files.len());
    assert_eq!(violations(&files), Vec::<String>::new());
}

#[test]
fn the_check_sees_each_kind_of_break() {
    let file = |m: &str, code: &str| (m.to_string(), code.to_string());
    let broken = [
        file("signature", "use crate::metrics::Metrics;"),
        file("payload", "use crate::{payload::x, signature::Verified};"),
        file("config", "let x = crate::http::router(state);"),
        file("dedupe", "use crate::metrics;"),
        file("metrics", "use crate::{dedupe::Dedupe};"),
        file("stranger", ""),
    ];
    let found = violations(&broken);
    for expected in [
        "signature is a pure core but imports metrics",
        "payload is a pure core but imports signature",
        "config imports http, a higher floor",
        "dedupe and metrics import each other",
        "module stranger has no floor in FLOORS",
    ] {
        assert!(
            found.iter().any(|v| v == expected),
            "{expected:?} not in {found:?}"
        );
    }
    assert_eq!(found.len(), 5, "{found:?}");
    let fine = [
        file(
            "http",
            "use crate::config::Config; // crate::cli in a comment",
        ),
        file(
            "signature",
            "use super::scheme::Scheme; use crate::signature::Key;",
        ),
    ];
    assert_eq!(violations(&fine), Vec::<String>::new());
}
