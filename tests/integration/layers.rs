//! The crate's layers, held by a test in the spirit of buck2's banned dependency paths: each
//! top-level module of `src/` sits in one layer, and a module may import (`crate::NAME`) only
//! from its own layer or a lower one, with no import cycle between modules anywhere. A new
//! module must be placed in the table. Test code (`#[cfg(test)]`) may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. ARCHITECTURE.md draws the same table.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "hex",
            "digest",
            "bounded",
            "duration",
            "time",
            "parallel",
            "diagnostic",
            "error",
            "atomic",
            "host_tool",
            "http",
        ],
    ),
    ("keys and the store", &["keys", "store"]),
    (
        "documents and domains",
        &[
            "attest", "nix", "gauntlet", "rollout", "sbom", "runlog", "report", "vulns", "template",
        ],
    ),
    (
        "the model and the auditor",
        &[
            "pipeline",
            "git",
            "workspace",
            "graph",
            "verify",
            "init",
            "usage",
        ],
    ),
    ("the engine", &["exec", "remote"]),
    ("the kinds", &["kinds"]),
    ("the run", &["run"]),
    ("flows", &["repro", "release"]),
    ("the edge", &["cli", "fuzz", "main", "lib"]),
];

/// (importer, imported) → the files of the importer that import it.
type Imports = BTreeMap<(String, String), BTreeSet<String>>;

/// Every `crate::NAME` in `src/`, outside comments and test code, by top-level module.
fn imports(src: &Path) -> Imports {
    let mut imports = Imports::new();
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.expect("walk src");
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "rs") || is_test_file(path) {
            continue;
        }
        let relative = path.strip_prefix(src).expect("inside src");
        let first = relative.components().next().expect("a component");
        let module = Path::new(first.as_os_str())
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).expect("read source");
        for imported in imported_modules(&text) {
            if imported != module {
                imports
                    .entry((module.clone(), imported))
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    imports
}

/// A file that is itself a test module (`#[cfg(test)] mod NAME;` in its folder's module).
fn is_test_file(path: &Path) -> bool {
    let Some(stem) = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
    else {
        return false;
    };
    let folder = path.parent().expect("a folder");
    let parents = [
        folder.join("mod.rs"),
        folder.join("lib.rs"),
        folder.with_extension("rs"),
    ];
    parents.iter().any(|parent| {
        std::fs::read_to_string(parent).is_ok_and(|text| {
            text.contains(&format!("#[cfg(test)]\nmod {stem};"))
                || text.contains(&format!("#[cfg(test)]\npub mod {stem};"))
        })
    })
}

/// The top-level modules `text` names as `crate::NAME`, before its first `#[cfg(test)]`
/// (tests come last in a file) and outside `//` comments.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// Each import from a lower layer into a higher one, and each module no layer holds.
fn violations(imports: &Imports, modules: &BTreeSet<String>) -> Vec<String> {
    let layer_of = |module: &str| {
        LAYERS
            .iter()
            .position(|(_, members)| members.contains(&module))
    };
    let mut found = Vec::new();
    for module in modules {
        if layer_of(module).is_none() {
            found.push(format!(
                "`{module}` is in no layer: place it in LAYERS (tests/integration/layers.rs) and ARCHITECTURE.md"
            ));
        }
    }
    for ((from, to), files) in imports {
        if let (Some(low), Some(high)) = (layer_of(from), layer_of(to))
            && low < high
        {
            found.push(format!(
                "`{from}` ({}) imports `{to}` ({}), a higher layer, in {}",
                LAYERS[low].0,
                LAYERS[high].0,
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    found
}

/// The modules that import each other through a cycle, as strongly connected groups.
fn cycles(imports: &Imports) -> Vec<BTreeSet<String>> {
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in imports.keys() {
        edges.entry(from).or_default().insert(to);
    }
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(next) = todo.pop() {
            for &to in edges.get(next).into_iter().flatten() {
                if seen.insert(to) {
                    todo.push(to);
                }
            }
        }
        seen
    };
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    for &module in edges.keys() {
        let from_here = reach(module);
        if !from_here.contains(module) || groups.iter().any(|group| group.contains(module)) {
            continue;
        }
        let group = from_here
            .into_iter()
            .filter(|other| reach(other).contains(module))
            .map(str::to_owned)
            .collect();
        groups.push(group);
    }
    groups
}

fn source_folder() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_lower_layer_imports_a_higher_one_and_no_modules_import_each_other() {
    let src = source_folder();
    let imports = imports(&src);
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("src")
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let module =
                path.is_dir() || path.extension().is_some_and(|extension| extension == "rs");
            module.then(|| {
                path.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
            })?
        })
        .collect();
    let found = violations(&imports, &modules);
    assert!(found.is_empty(), "{}", found.join("\n"));
    let cycles = cycles(&imports);
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn an_upward_import_and_a_cycle_are_caught() {
    let engine = "use crate::exec::commit::Failure;\nuse crate::kinds::Action; // the engine reaching up\n#[cfg(test)]\nmod tests { use crate::cli; }\n";
    assert_eq!(
        imported_modules(engine),
        BTreeSet::from(["exec".to_owned(), "kinds".to_owned()])
    );
    let mut imports = Imports::new();
    for (from, to) in [("exec", "kinds"), ("kinds", "exec"), ("verify", "attest")] {
        imports
            .entry((from.to_owned(), to.to_owned()))
            .or_default()
            .insert(format!("{from}/mod.rs"));
    }
    let modules = BTreeSet::from(["exec".to_owned(), "kinds".to_owned(), "newcomer".to_owned()]);
    let found = violations(&imports, &modules);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("`newcomer` is in no layer"), "{found:?}");
    assert!(
        found[1].starts_with("`exec` (the engine) imports `kinds` (the kinds), a higher layer"),
        "{found:?}"
    );
    assert_eq!(
        cycles(&imports),
        [BTreeSet::from(["exec".to_owned(), "kinds".to_owned()])]
    );
}
