//! Integration test binaries live under tests/; this library holds what several of them share.

use std::path::{Path, PathBuf};

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the suites crate sits in the workspace root").to_path_buf()
}

/// A binary of the workspace (`pipeline`, `harness`) next to the running test's executable. The workspace
/// test command (`cargo nextest run --workspace`) builds both, because their packages have integration tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p {name}` (the workspace test command does)",
        path.display()
    );
    path
}

/// The Python interpreter of the pinned venv `scripts/setup-python.sh` builds (`target/conformance-venv`, with
/// the vendors' official clients), after checking the venv was built from the current requirements. Panics with
/// the command that fixes a missing or stale venv: the tests that need it fail, never skip.
pub fn conformance_python() -> PathBuf {
    let root = workspace_root();
    let venv = root.join("target/conformance-venv");
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "the conformance venv is missing ({}): run `bash scripts/setup-python.sh` (scripts/test.sh does it)",
        python.display()
    );
    let wanted = std::fs::read(root.join("suites/conformance/requirements.txt"))
        .expect("suites/conformance/requirements.txt is part of the repository");
    let built_from = std::fs::read(venv.join(".requirements.txt")).unwrap_or_default();
    assert!(
        built_from == wanted,
        "the conformance venv ({}) was built from other requirements than suites/conformance/requirements.txt: \
         run `bash scripts/setup-python.sh`",
        venv.display()
    );
    python
}

/// The directory `scripts/setup-node.sh` installs Google's official Node BigQuery client into
/// (`target/conformance-node`, from the lockfile pinned in `suites/conformance/node`), after checking it was
/// installed from the current lockfile. Panics with the command that fixes a missing or stale install: the tests
/// that need it fail, never skip.
pub fn conformance_node() -> PathBuf {
    let root = workspace_root();
    let install = root.join("target/conformance-node");
    assert!(
        install.join("node_modules/@google-cloud/bigquery/package.json").is_file(),
        "the conformance Node packages are missing ({}): run `bash scripts/setup-node.sh` (scripts/test.sh does it)",
        install.display()
    );
    let wanted = std::fs::read(root.join("suites/conformance/node/package-lock.json"))
        .expect("suites/conformance/node/package-lock.json is part of the repository");
    let installed_from = std::fs::read(install.join(".installed-package-lock.json")).unwrap_or_default();
    assert!(
        installed_from == wanted,
        "the conformance Node packages ({}) were installed from another lockfile than \
         suites/conformance/node/package-lock.json: run `bash scripts/setup-node.sh`",
        install.display()
    );
    install
}
