//! Tidiness of the repository itself, checked from its files: crates depend only downward, no file-level
//! import cycle inside a crate, and nothing cites a path the repository does not have (a clone carries only
//! what is committed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use suites::workspace_root;

/// Every file of the repository, relative to the root: what git tracks, and new files it does not ignore.
fn tracked_files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(workspace_root())
        .output()
        .expect("git runs (the tests run in a clone)");
    assert!(out.status.success(), "git ls-files: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).as_ref()))
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// --- the crate graph -------------------------------------------------------------------------------------------

/// The names listed in a section (`[dependencies]`) of a manifest.
fn dependencies(manifest: &str, section: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == section;
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn crates_depend_only_downward_and_the_domain_does_no_io() {
    // (crate, what its [dependencies] must not name). The domain is held to a short list instead.
    let forbidden: [(&str, &[&str]); 4] = [
        ("fixtures", &["fakes", "pipeline", "harness", "tokio", "reqwest", "sqlx"]),
        ("fakes", &["pipeline", "harness", "sqlx"]),
        ("pipeline", &["fixtures", "fakes", "harness", "wiremock", "testcontainers"]),
        ("harness", &["suites", "benches"]),
    ];
    for (krate, names) in forbidden {
        let manifest = read(&Path::new(krate).join("Cargo.toml"));
        let deps = dependencies(&manifest, "[dependencies]");
        assert!(!deps.is_empty(), "{krate} has dependencies");
        for name in names {
            assert!(!deps.contains(*name), "{krate} must not depend on {name}: dependencies point one way");
        }
    }
    let market = dependencies(&read(Path::new("market/Cargo.toml")), "[dependencies]");
    // roaring: a compressed bitmap (the exact trade-id sets), pure data structure.
    let pure: BTreeSet<String> = ["chrono", "roaring", "serde", "thiserror"].map(str::to_owned).into();
    assert_eq!(market, pure, "market is pure: no IO, no async, no wire formats");
}

#[test]
fn the_dependency_reader_sees_sections_and_names() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nmarket.workspace = true\n# a comment\nserde = { version = \"1\" }\n\n[dev-dependencies]\nproptest.workspace = true\n";
    let deps = dependencies(manifest, "[dependencies]");
    assert_eq!(deps, ["market", "serde"].map(str::to_owned).into());
}

// --- file-level imports ------------------------------------------------------------------------------------------

/// The module path of a source file under `src/`: `run.rs` → `run`, `report/mod.rs` → `report`, `lib.rs` → ``.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let file = parts.pop().unwrap_or_default();
    match file.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    parts.join("::")
}

/// The code of a file without comments and without its trailing `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Paths a file refers to inside its own crate, as module paths (`crate::a::b::C` → `a::b::C`), with `super::`
/// and `self::` resolved against `module`, the file's own module.
fn referenced_paths(code: &str, module: &str) -> Vec<String> {
    let mut found = Vec::new();
    let own: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    let parent = own[..own.len().saturating_sub(1)].to_vec();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent), ("self::", own.clone())] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            if path.ends_with("::") && rest[path.len()..].starts_with('{') {
                let group: String = rest[path.len()..].chars().take_while(|c| *c != '}').collect();
                path.push_str(&group);
                path.push('}');
            }
            for full in expand(&path) {
                let mut segments = base.clone();
                segments.extend(full.split("::").filter(|s| !s.is_empty()));
                found.push(segments.join("::"));
            }
        }
    }
    found
}

/// `a::{b, c::D}` → `a::b`, `a::c::D` (one level of braces, which is what rustfmt leaves in practice).
fn expand(path: &str) -> Vec<String> {
    let path = path.trim();
    match path.find('{') {
        None => vec![path.split([' ', ',', '}']).next().unwrap_or_default().trim_end_matches("::").to_owned()],
        Some(open) => {
            let head = &path[..open];
            let inner = path[open + 1..].split('}').next().unwrap_or_default();
            inner.split(',').map(|item| format!("{head}{}", item.trim())).filter(|p| !p.ends_with("::")).collect()
        }
    }
}

/// For each `mod.rs`/`lib.rs` module, the names it re-exports and the child module each comes from.
fn reexports(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (module, text) in files {
        let mut names = BTreeMap::new();
        for statement in code(text).split(';') {
            let statement = statement.trim();
            let Some(rest) = statement.strip_prefix("pub use ") else { continue };
            for path in expand(&rest.replace('\n', " ")) {
                let segments: Vec<&str> = path.split("::").collect();
                if let (Some(child), Some(name)) = (segments.first(), segments.last())
                    && *child != "crate"
                    && *child != "super"
                    && segments.len() > 1
                {
                    let target = if module.is_empty() { (*child).to_owned() } else { format!("{module}::{child}") };
                    names.insert((*name).to_owned(), target);
                }
            }
        }
        map.insert(module.clone(), names);
    }
    map
}

/// The file module a path lands in: the longest prefix that is a file, through re-exports of `mod.rs` files.
fn resolve(
    path: &str,
    modules: &BTreeMap<String, String>,
    exports: &BTreeMap<String, BTreeMap<String, String>>,
) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    for len in (1..=segments.len()).rev() {
        let prefix = segments[..len].join("::");
        if modules.contains_key(&prefix) {
            // A name re-exported by a module root points at the child that defines it.
            if let Some(next) = segments.get(len)
                && let Some(child) = exports.get(&prefix).and_then(|names| names.get(*next))
            {
                return Some(child.clone());
            }
            return Some(prefix);
        }
    }
    None
}

/// The import cycles between the files of one crate's `src/`, each as a list of modules.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let root = workspace_root().join(src);
    let mut files = BTreeMap::new();
    let mut roots = BTreeSet::new();
    for path in tracked_files().into_iter().filter(|p| p.starts_with(src) && p.extension().is_some_and(|e| e == "rs")) {
        let relative = path.strip_prefix(src).expect("under src").to_path_buf();
        if relative.starts_with("bin") {
            continue;
        }
        let module = module_of(&relative);
        let name = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if matches!(name.as_str(), "lib.rs" | "main.rs" | "mod.rs") {
            roots.insert(module.clone());
        }
        // main.rs is another crate (the binary) beside lib.rs.
        if name != "main.rs" {
            files.insert(module, std::fs::read_to_string(root.join(&relative)).expect("readable"));
        }
    }
    let exports = reexports(&files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let targets = referenced_paths(&code(text), module)
            .iter()
            .filter_map(|p| resolve(p, &files, &exports))
            .filter(|t| t != module && !roots.contains(t))
            .collect();
        edges.insert(module.clone(), targets);
    }
    // Strongly connected components (Tarjan) with more than one file are cycles.
    let mut found = Vec::new();
    let mut index = BTreeMap::new();
    let mut low = BTreeMap::new();
    let mut stack = Vec::new();
    let mut on_stack = BTreeSet::new();
    fn visit(
        v: &String,
        edges: &BTreeMap<String, BTreeSet<String>>,
        index: &mut BTreeMap<String, usize>,
        low: &mut BTreeMap<String, usize>,
        stack: &mut Vec<String>,
        on_stack: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        let i = index.len();
        index.insert(v.clone(), i);
        low.insert(v.clone(), i);
        stack.push(v.clone());
        on_stack.insert(v.clone());
        for w in edges.get(v).into_iter().flatten() {
            if !index.contains_key(w) {
                visit(w, edges, index, low, stack, on_stack, found);
                let lw = low[w];
                low.entry(v.clone()).and_modify(|l| *l = (*l).min(lw));
            } else if on_stack.contains(w) {
                let iw = index[w];
                low.entry(v.clone()).and_modify(|l| *l = (*l).min(iw));
            }
        }
        if low[v] == index[v] {
            let mut component = Vec::new();
            while let Some(w) = stack.pop() {
                on_stack.remove(&w);
                let done = &w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                found.push(component);
            }
        }
    }
    for v in edges.keys() {
        if !index.contains_key(v) {
            visit(v, &edges, &mut index, &mut low, &mut stack, &mut on_stack, &mut found);
        }
    }
    found
}

#[test]
fn no_crate_has_a_file_level_import_cycle() {
    for krate in ["market", "fixtures", "pipeline", "harness"] {
        let cycles = cycles(&Path::new(krate).join("src"));
        assert!(cycles.is_empty(), "{krate}: files that import each other (directly or around a loop): {cycles:?}");
    }
    // The fakes still have two, recorded here so that none is added: the fake BigQuery's request types and
    // state live beside the handlers that use them, and the mock Tardis' server and responders share types.
    // Splitting the resources' models from their handlers removes them (and shrinks these lists to nothing).
    let known: Vec<Vec<String>> = vec![
        ["dataset", "job", "load", "paging", "routes", "state", "table", "upload"]
            .map(|m| format!("bigquery::{m}"))
            .to_vec(),
        ["responders", "server"].map(|m| format!("tardis::{m}")).to_vec(),
    ];
    assert_eq!(cycles(Path::new("fakes/src")), known, "the fakes' import cycles changed: remove, never add");
}

#[test]
fn the_cycle_finder_finds_a_cycle_through_a_reexport() {
    let paths = referenced_paths("use crate::a::{B, c::D};\nuse super::e::F;\nfn f() { crate::g::h(); }", "x::y");
    assert_eq!(paths, ["a::B", "a::c::D", "g::h", "x::e::F"]);
    let files: BTreeMap<String, String> = [
        ("", "pub mod a;"),
        ("a", "mod b;\npub use b::Thing;"),
        ("a::b", "use crate::c::Other;"),
        ("c", "use crate::a::Thing;\npub struct Other;"),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_owned(), t.to_owned()))
    .collect();
    let exports = reexports(&files);
    assert_eq!(resolve("a::Thing", &files, &exports).as_deref(), Some("a::b"));
    assert_eq!(resolve("c::Other", &files, &exports).as_deref(), Some("c"));
}

// --- cited paths ---------------------------------------------------------------------------------------------------

/// Text files where a path may be cited.
fn is_text(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    matches!(
        ext.as_str(),
        "rs" | "md" | "sh" | "py" | "toml" | "yml" | "yaml" | "json" | "txt" | "service" | "timer" | "example"
    ) || matches!(name.as_str(), "run" | "Dockerfile")
}

/// Path-like tokens of `text` that point into the repository's top-level directories (a file, or a directory
/// written with its trailing `/`), at a Markdown file, or at notes kept outside the repository.
fn cited_paths(text: &str, top_level: &BTreeSet<String>) -> Vec<String> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "._-/@".contains(c);
    let mut cited = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let boundary = !text[..start].chars().last().is_some_and(|p| is_path_char(p) || p == '$' || p == '~');
        if !boundary || !is_path_char(c) {
            continue;
        }
        let raw: String = text[start..].chars().take_while(|c| is_path_char(*c)).collect();
        for _ in 1..raw.chars().count() {
            chars.next();
        }
        let next = text[start + raw.len()..].chars().next();
        // Templates and placeholders (`{date}`, `<area>`, `*.rs`, `…`) and absolute paths are not citations.
        if next.is_some_and(|n| "{<*…$".contains(n)) || raw.starts_with('/') {
            continue;
        }
        let token = raw.trim_end_matches(['.', '-', '/']);
        let last = token.rsplit('/').next().unwrap_or_default();
        let first = token.split('/').next().unwrap_or_default();
        let names_a_file_or_directory = last.contains('.') || raw.trim_end_matches(['.', '-']).ends_with('/');
        let into_repo = raw.contains('/') && top_level.contains(first) && names_a_file_or_directory;
        let markdown = token.ends_with(".md");
        let outside = token.contains("shared/") || token.contains("research/");
        if into_repo || markdown || outside {
            cited.push(token.to_owned());
        }
    }
    cited
}

/// `relative` joined to `base`, with `.` and `..` resolved; `None` when it climbs above the root.
fn normalize(base: &Path, relative: &str) -> Option<String> {
    let mut parts: Vec<String> = base.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other.to_owned()),
        }
    }
    Some(parts.join("/"))
}

#[test]
fn nothing_cites_a_path_the_repository_does_not_have() {
    let files = tracked_files();
    let tracked: BTreeSet<String> = files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let directories: BTreeSet<String> =
        files.iter().flat_map(|p| p.ancestors().skip(1).map(|a| a.to_string_lossy().into_owned())).collect();
    let top_level: BTreeSet<String> =
        directories.iter().filter(|d| !d.is_empty() && !d.contains('/')).cloned().collect();
    let basenames: BTreeSet<String> =
        files.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    let mut missing = Vec::new();
    // This file's own examples cite missing paths on purpose.
    for file in files.iter().filter(|p| is_text(p) && !p.starts_with("suites/tests/tidy")) {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap_or_default();
        let here = file.parent().unwrap_or(Path::new(""));
        for cited in cited_paths(&text, &top_level) {
            // Relative to the file, to any directory above it (a crate's manifest directory), or to the root.
            let exists = here
                .ancestors()
                .filter_map(|base| normalize(base, &cited))
                .any(|p| tracked.contains(&p) || directories.contains(&p))
                || (!cited.contains('/') && basenames.contains(&cited));
            // Generated output (reports, target/, logs/) is cited on purpose and never committed.
            let basename = cited.rsplit('/').next().unwrap_or_default();
            let generated = ["target/", "reports/", "logs/"].iter().any(|g| cited.starts_with(g))
                || ["report.md", "report.json", "report.html"].contains(&basename);
            if !exists && !generated {
                missing.push(format!("{}: {cited}", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths cited but not in the repository (state the fact instead):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_citation_finder_sees_repository_paths_markdown_and_outside_references() {
    let top: BTreeSet<String> = ["scripts", "pipeline"].map(str::to_owned).into();
    let text = "run scripts/test.sh, see PLAN.md and ../team/research/notes; pipeline/src/{date}.rs is a template, \
                not scripts/*.sh either; pipeline/ holds the README.md, ~/pipeline/x.rs and /usr/x.md are not ours, \
                nor is pipeline/bin (no extension, no slash).";
    assert_eq!(
        cited_paths(text, &top),
        ["scripts/test.sh", "PLAN.md", "../team/research/notes", "pipeline", "README.md"]
    );
    assert_eq!(normalize(Path::new("suites/tests"), "../../README.md").as_deref(), Some("README.md"));
    assert_eq!(normalize(Path::new("suites"), "../../x"), None);
}
