//! Where backups are kept: the port ([`Repository`]) and its directory adapter (an external
//! disk, a NAS mount). Everything written is written whole or not at all (a temporary
//! name, fsync, rename), so an interrupted backup leaves at worst unreferenced chunks and
//! never a manifest that promises what is not there.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{BackupError, ChunkId};

const MARKER: &str = "phivault-backup-repository";
const MARKER_TEXT: &str = "phivault-backup-repository/1\n";

/// A place that holds chunks and manifests.
pub trait Repository: std::fmt::Debug + Send + Sync {
    /// The stored size of a chunk, if present.
    fn chunk_size(&self, id: &ChunkId) -> Result<Option<u64>, BackupError>;
    fn put_chunk(&self, id: &ChunkId, sealed: &[u8]) -> Result<(), BackupError>;
    fn get_chunk(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, BackupError>;
    /// Every stored chunk with its size.
    fn list_chunks(&self) -> Result<Vec<(ChunkId, u64)>, BackupError>;
    fn remove_chunk(&self, id: &ChunkId) -> Result<(), BackupError>;
    /// Stores a manifest under a new name; refuses to replace one.
    fn put_manifest(&self, name: &str, bytes: &[u8]) -> Result<(), BackupError>;
    fn get_manifest(&self, name: &str) -> Result<Vec<u8>, BackupError>;
    /// Manifest names, sorted.
    fn list_manifests(&self) -> Result<Vec<String>, BackupError>;
    fn remove_manifest(&self, name: &str) -> Result<(), BackupError>;
    /// One writer at a time (a backup and a prune must not interleave).
    fn lock(&self, holder: &str) -> Result<RepoLock, BackupError>;
    /// Where it is, for messages.
    fn describe(&self) -> String;
}

/// A repository in a local directory.
#[derive(Debug, Clone)]
pub struct DirRepository {
    root: PathBuf,
}

/// Held while writing; removes the lock file when dropped.
#[derive(Debug)]
pub struct RepoLock {
    path: PathBuf,
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn is_manifest_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl DirRepository {
    /// Opens the repository at `root`, creating it when `create` and it does not exist.
    /// A non-empty directory that is not a repository is refused (a mistyped path must not
    /// fill someone's home directory with chunks).
    pub fn open(root: &Path, create: bool) -> Result<Self, BackupError> {
        let marker = root.join(MARKER);
        if marker.exists() {
            let text = std::fs::read_to_string(&marker)
                .map_err(|e| BackupError::io(format!("cannot read {}", marker.display()), e))?;
            if text != MARKER_TEXT {
                return Err(BackupError::Repository(format!(
                    "{} is a backup repository of another format version",
                    root.display()
                )));
            }
            return Ok(Self { root: root.to_owned() });
        }
        if !create {
            return Err(BackupError::Repository(format!("{} is not a phivault backup repository", root.display())));
        }
        if root.exists()
            && std::fs::read_dir(root)
                .map_err(|e| BackupError::io(format!("cannot read {}", root.display()), e))?
                .next()
                .is_some()
        {
            return Err(BackupError::Repository(format!(
                "{} is not empty and not a phivault backup repository; choose an empty or new directory",
                root.display()
            )));
        }
        for dir in [root.to_owned(), root.join("chunks"), root.join("manifests")] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| BackupError::io(format!("cannot create {}", dir.display()), e))?;
        }
        let repo = Self { root: root.to_owned() };
        repo.write_atomically(&marker, MARKER_TEXT.as_bytes(), false)?;
        Ok(repo)
    }

    fn chunk_path(&self, id: &ChunkId) -> PathBuf {
        self.root.join("chunks").join(&id.as_str()[..2]).join(id.as_str())
    }

    fn manifest_path(&self, name: &str) -> Result<PathBuf, BackupError> {
        if !is_manifest_name(name) {
            return Err(BackupError::Repository(format!("{name:?} is not a manifest name")));
        }
        Ok(self.root.join("manifests").join(name))
    }

    /// Writes to a temporary name beside `path`, syncs, renames, syncs the directory.
    fn write_atomically(&self, path: &Path, bytes: &[u8], replace: bool) -> Result<(), BackupError> {
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent)
            .map_err(|e| BackupError::io(format!("cannot create {}", parent.display()), e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let suffix = phivault_crypto::random_token(6).map_err(|_| BackupError::Crypto)?;
        let temp = parent.join(format!(".{name}.{suffix}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            if !replace && path.exists() {
                return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already exists"));
            }
            std::fs::rename(&temp, path)?;
            std::fs::File::open(parent)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            BackupError::io(format!("cannot write {}", path.display()), e)
        })
    }
}

impl Repository for DirRepository {
    fn chunk_size(&self, id: &ChunkId) -> Result<Option<u64>, BackupError> {
        match std::fs::metadata(self.chunk_path(id)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackupError::io(format!("cannot read chunk {id}"), e)),
        }
    }

    fn put_chunk(&self, id: &ChunkId, sealed: &[u8]) -> Result<(), BackupError> {
        // Same name, same content: a chunk already there (from a racing writer) is as good.
        self.write_atomically(&self.chunk_path(id), sealed, true)
    }

    fn get_chunk(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, BackupError> {
        match std::fs::read(self.chunk_path(id)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackupError::io(format!("cannot read chunk {id}"), e)),
        }
    }

    fn list_chunks(&self) -> Result<Vec<(ChunkId, u64)>, BackupError> {
        let mut out = Vec::new();
        let dir = self.root.join("chunks");
        let read =
            |d: &Path| std::fs::read_dir(d).map_err(|e| BackupError::io(format!("cannot read {}", d.display()), e));
        for prefix in read(&dir)? {
            let prefix = prefix.map_err(|e| BackupError::io("cannot list chunks", e))?;
            if !prefix.path().is_dir() {
                continue;
            }
            for entry in read(&prefix.path())? {
                let entry = entry.map_err(|e| BackupError::io("cannot list chunks", e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue; // a temporary file of an interrupted write
                }
                let size = entry.metadata().map_err(|e| BackupError::io("cannot list chunks", e))?.len();
                match ChunkId::try_from(name.clone()) {
                    Ok(id) => out.push((id, size)),
                    Err(_) => {
                        return Err(BackupError::Repository(format!(
                            "{} holds a file that is not a chunk: {name}",
                            prefix.path().display()
                        )));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove_chunk(&self, id: &ChunkId) -> Result<(), BackupError> {
        std::fs::remove_file(self.chunk_path(id)).map_err(|e| BackupError::io(format!("cannot remove chunk {id}"), e))
    }

    fn put_manifest(&self, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
        self.write_atomically(&self.manifest_path(name)?, bytes, false)
    }

    fn get_manifest(&self, name: &str) -> Result<Vec<u8>, BackupError> {
        let path = self.manifest_path(name)?;
        std::fs::read(&path).map_err(|e| BackupError::io(format!("cannot read manifest {name}"), e))
    }

    fn list_manifests(&self) -> Result<Vec<String>, BackupError> {
        let dir = self.root.join("manifests");
        let mut out = Vec::new();
        for entry in
            std::fs::read_dir(&dir).map_err(|e| BackupError::io(format!("cannot read {}", dir.display()), e))?
        {
            let name = entry
                .map_err(|e| BackupError::io("cannot list manifests", e))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if is_manifest_name(&name) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove_manifest(&self, name: &str) -> Result<(), BackupError> {
        std::fs::remove_file(self.manifest_path(name)?)
            .map_err(|e| BackupError::io(format!("cannot remove manifest {name}"), e))
    }

    fn lock(&self, holder: &str) -> Result<RepoLock, BackupError> {
        let path = self.root.join("lock");
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let who = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(BackupError::Repository(format!(
                    "{} is locked by another backup or prune ({}); if none is running, remove {}",
                    self.root.display(),
                    who.trim(),
                    path.display()
                )));
            }
            Err(e) => return Err(BackupError::io(format!("cannot lock {}", self.root.display()), e)),
        };
        file.write_all(holder.as_bytes()).map_err(|e| BackupError::io("cannot write the lock file", e))?;
        Ok(RepoLock { path })
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
