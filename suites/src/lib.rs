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
