//! The architecture, checked: every top-level module of `src/` imports only
//! modules of lower layers (docs/design.md draws the same map), so the SIP
//! plumbing never learns of bindings, storage never learns of events, and
//! no two modules depend on each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. A module may use modules of strictly lower layers only.
const LAYERS: &[&[&str]] = &[
    &[
        "datagrams",
        "hash",
        "ids",
        "mask",
        "metrics",
        "net",
        "problems",
        "text",
        "time",
    ],
    &["sip", "bindings", "media", "logs"],
    &["b2bua", "store"],
    &["events", "registrar"],
    &["calls", "service"],
    &["api", "handover"],
    // Assembles every module's section: above all of them.
    &["config"],
    &["cli", "watch"],
    &["server"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `crate::<module>` a file's code (not its comments) names.
fn uses_in(text: &str, into: &mut BTreeSet<String>) {
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                into.insert(name);
            }
        }
    }
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// module -> the modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut all = Vec::new();
    files(&src, &mut all);
    for f in all {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read file");
        let used = g.entry(top.clone()).or_default();
        uses_in(&text, used);
        used.remove(&top);
    }
    g
}

#[test]
fn every_module_has_a_layer() {
    for m in graph().keys() {
        assert!(layer_of(m).is_some(), "src/{m} is in no layer of LAYERS");
    }
}

#[test]
fn modules_use_only_lower_layers() {
    let mut wrong = Vec::new();
    for (m, used) in graph() {
        let Some(mine) = layer_of(&m) else { continue };
        for u in used {
            match layer_of(&u) {
                Some(theirs) if theirs < mine => {}
                _ => wrong.push(format!("{m} uses {u}")),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:?}");
}

#[test]
fn the_checker_sees_imports() {
    let mut s = BTreeSet::new();
    uses_in(
        "use crate::sip::Msg;\n// crate::api in a comment\nlet x = crate::store::open(d);",
        &mut s,
    );
    assert_eq!(s.into_iter().collect::<Vec<_>>(), vec!["sip", "store"]);
    // The graph is not empty: the scan found the sources.
    let g = graph();
    assert!(g["b2bua"].contains("sip"), "{g:?}");
    assert!(g["server"].len() > 5, "{g:?}");
}

/// docs/design.md's list of what each module uses is the graph the code
/// has: a module's line names exactly the modules it imports.
#[test]
fn the_design_docs_map_is_the_codes() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/design.md"))
        .expect("read docs/design.md");
    let block = doc
        .split("What each module uses")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("a code block after \"What each module uses\"");
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in block.lines().filter(|l| l.contains("->")) {
        let (m, uses) = line.split_once("->").expect("an arrow");
        let uses = uses.split('(').next().unwrap_or("");
        documented.insert(
            m.trim().to_string(),
            uses.split_whitespace()
                .filter(|u| *u != "nothing")
                .map(str::to_string)
                .collect(),
        );
    }
    let code = graph();
    let expected: Vec<String> = code
        .iter()
        .filter(|(_, u)| !u.is_empty())
        .map(|(m, u)| {
            format!(
                "{m:<9} -> {}",
                u.iter().cloned().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    let real: BTreeMap<String, BTreeSet<String>> =
        code.into_iter().filter(|(_, u)| !u.is_empty()).collect();
    assert_eq!(
        documented,
        real,
        "docs/design.md's map differs from the code; the code's is:\n{}",
        expected.join("\n")
    );
}
