//! Test inputs shared by the discovery tests: a file tree in a temporary
//! directory, and an environment map.

use std::collections::BTreeMap;

/// A temporary directory holding `files` (path relative to it, content).
pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    dir
}

/// Writes `files` under `root`, making directories as needed.
pub(crate) fn write(root: &std::path::Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// An environment of these variables.
pub(crate) fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
