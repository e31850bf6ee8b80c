//! The revocation stamp: a small file beside an SQLite database whose content changes
//! (to fresh random bytes) after every write that can take access away: a logout, a lock,
//! a deactivation, a revoked grant, a disabled client. Every process using the database
//! is on the same host (SQLite is not shared over a network), so reading the file is a
//! cheap way to learn "nothing was revoked since I last looked" without a database round
//! trip. PostgreSQL deployments span hosts and have no stamp: they check the database on
//! every request.

use std::path::{Path, PathBuf};

use phivault_service::StoreError;

#[derive(Debug, Clone)]
pub(crate) struct RevocationStamp {
    path: PathBuf,
}

impl RevocationStamp {
    /// The stamp for the SQLite database file `db`.
    pub(crate) fn beside(db: &Path) -> Self {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push("-auth-stamp");
        Self { path: db.with_file_name(name) }
    }

    /// The current content (empty when the file does not exist yet).
    pub(crate) fn read(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_default()
    }

    /// Replaces the content with fresh random bytes, atomically (write, then rename).
    /// Random rather than a counter: two processes bumping at once can never produce the
    /// same value a reader already holds.
    pub(crate) fn bump(&self) -> Result<(), StoreError> {
        let value = phivault_crypto::random_bytes::<16>().map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let suffix = phivault_crypto::random_token(6).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let tmp = self.path.with_extension(format!("{}.{suffix}.tmp", std::process::id()));
        let io = |e: std::io::Error| {
            tracing::error!(error = %e, "cannot update the revocation stamp; other processes notice within 15 s");
            StoreError::Unavailable(Box::new(e))
        };
        std::fs::write(&tmp, value).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bump_changes_the_content() {
        let dir = tempfile::tempdir().expect("dir");
        let stamp = RevocationStamp::beside(&dir.path().join("phivault.db"));
        assert!(stamp.read().is_empty());
        stamp.bump().expect("bump");
        let first = stamp.read();
        assert_eq!(first.len(), 16);
        stamp.bump().expect("bump");
        assert_ne!(stamp.read(), first);
        assert!(dir.path().join("phivault.db-auth-stamp").exists());
        let leftovers = std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "tmp")))
            .count();
        assert_eq!(leftovers, 0);
    }
}
