//! Files only their owner may read (keys, configuration, certificates' keys), written once:
//! never over an existing file, synced before the write counts as done.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Creates `path` (and its folders) with `contents`, mode 0600; refuses an existing file.
pub fn write_new(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .with_context(|| format!("cannot write {}", path.display()))
}
