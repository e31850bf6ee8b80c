//! Where backups are kept: the port ([`Repository`]) and its directory adapter (an external
//! disk, a NAS mount). Everything written is written whole or not at all (a temporary
//! name, fsync, rename), so an interrupted backup leaves at worst unreferenced chunks and
//! never a manifest that promises what is not there.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{BackupError, ChunkId};

const MARKER: &str = "phivault-backup-repository";
/// Larger than any manifest or chunk phivault writes: a planted huge file is refused, not read.
const MAX_MANIFEST: u64 = 256 * 1024 * 1024;
const MAX_CHUNK_FILE: u64 = 16 * 1024 * 1024;
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

/// Held while writing; removes the lock file when dropped, if it is still this holder's.
#[derive(Debug)]
pub struct RepoLock {
    path: PathBuf,
    holder: String,
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if std::fs::read_to_string(&self.path).is_ok_and(|text| text == self.holder) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `(process id, host)` of a holder text `… by process <pid> on <host> …`.
fn holder_of(text: &str) -> Option<(u32, &str)> {
    let rest = text.split("process ").nth(1)?;
    let mut words = rest.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    (words.next()? == "on").then_some(())?;
    Some((pid, words.next()?))
}

/// Whether `existing` names a process on our host (as `ours` names it) that no longer runs.
fn is_stale(existing: &str, ours: &str) -> bool {
    match (holder_of(existing), holder_of(ours)) {
        (Some((pid, host)), Some((_, our_host))) if host == our_host => !Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}

fn read_capped(file: std::fs::File, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("is larger than any phivault writes ({max} bytes): refused unread"));
    }
    Ok(bytes)
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
        let file = match std::fs::File::open(self.chunk_path(id)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BackupError::io(format!("cannot read chunk {id}"), e)),
        };
        read_capped(file, MAX_CHUNK_FILE).map(Some).map_err(|why| BackupError::Chunk { id: id.to_string(), why })
    }

    fn list_chunks(&self) -> Result<Vec<(ChunkId, u64)>, BackupError> {
        let mut out = Vec::new();
        let dir = self.root.join("chunks");
        let read =
            |d: &Path| std::fs::read_dir(d).map_err(|e| BackupError::io(format!("cannot read {}", d.display()), e));
        for prefix in read(&dir)? {
            let prefix = prefix.map_err(|e| BackupError::io("cannot list chunks", e))?;
            // Only the two-hex-digit folders phivault makes (a NAS adds its own, e.g. @eaDir).
            let folder = prefix.file_name().to_string_lossy().into_owned();
            let is_prefix =
                folder.len() == 2 && folder.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !prefix.path().is_dir() || !is_prefix {
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
        let file =
            std::fs::File::open(&path).map_err(|e| BackupError::io(format!("cannot read manifest {name}"), e))?;
        read_capped(file, MAX_MANIFEST).map_err(|why| BackupError::Manifest { name: name.to_owned(), why })
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
        for attempt in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(holder.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| BackupError::io("cannot write the lock file", e))?;
                    return Ok(RepoLock { path, holder: holder.to_owned() });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let who = std::fs::read_to_string(&path).unwrap_or_default();
                    // A holder on this host whose process is gone left it by crashing.
                    if attempt == 0 && is_stale(&who, holder) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    return Err(BackupError::Repository(format!(
                        "{} is locked by another backup or prune ({}); if none is running, remove {}",
                        self.root.display(),
                        who.trim(),
                        path.display()
                    )));
                }
                Err(e) => return Err(BackupError::io(format!("cannot lock {}", self.root.display()), e)),
            }
        }
        Err(BackupError::Repository(format!("{} could not be locked", self.root.display())))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
