//! Provides the file writing of the report (the reading is in `run`): every error names the path.

use std::path::Path;

use anyhow::Context;

/// Writes `contents` to `path`, creating its parent directories.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))
}
