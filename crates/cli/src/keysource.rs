//! The key file as the service's [`KeySource`]: reloads when another process (e.g.
//! `phivault keys rotate`) changed the file, so every server learns the new KEK.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use phivault_crypto::{CryptoError, KeyFile, KeyRing};
use phivault_service::KeySource;

/// How often the file's modification time is checked at most.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A key file that reloads itself when it changes on disk.
#[derive(Debug)]
pub struct FileKeySource {
    file: Mutex<KeyFile>,
    ring: RwLock<Arc<KeyRing>>,
    last_check: Mutex<(Instant, Option<SystemTime>)>,
}

fn modified(file: &KeyFile) -> Option<SystemTime> {
    std::fs::metadata(file.path()).and_then(|m| m.modified()).ok()
}

impl FileKeySource {
    pub fn new(file: KeyFile) -> Self {
        let ring = Arc::new(file.ring().clone());
        let stamp = modified(&file);
        Self { file: Mutex::new(file), ring: RwLock::new(ring), last_check: Mutex::new((Instant::now(), stamp)) }
    }

    fn reload_if_changed(&self, force: bool) -> Result<bool, CryptoError> {
        let mut last = self.last_check.lock().map_err(|_| CryptoError::Primitive)?;
        if !force && last.0.elapsed() < CHECK_INTERVAL {
            return Ok(false);
        }
        let mut file = self.file.lock().map_err(|_| CryptoError::Primitive)?;
        let stamp = modified(&file);
        last.0 = Instant::now();
        if stamp == last.1 && !force {
            return Ok(false);
        }
        file.reload()?;
        last.1 = stamp;
        let fresh = Arc::new(file.ring().clone());
        let mut ring = self.ring.write().map_err(|_| CryptoError::Primitive)?;
        let changed = fresh.current_kek_id() != ring.current_kek_id() || force;
        *ring = fresh;
        Ok(changed)
    }
}

impl KeySource for FileKeySource {
    fn ring(&self) -> Arc<KeyRing> {
        if let Err(e) = self.reload_if_changed(false) {
            tracing::error!(error = %e, "key file changed but could not be reloaded; keeping the keys in memory");
        }
        self.ring.read().map(|r| r.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn refresh(&self) -> Result<bool, CryptoError> {
        self.reload_if_changed(true)
    }
}

impl FileKeySource {
    fn with_file<T>(&self, f: impl FnOnce(&mut KeyFile) -> Result<T, CryptoError>) -> Result<T, CryptoError> {
        let result = {
            let mut file = self.file.lock().map_err(|_| CryptoError::Primitive)?;
            f(&mut file)?
        };
        self.reload_if_changed(true)?;
        Ok(result)
    }

    /// Adds a new current KEK to the key file.
    pub fn add_current_kek(&self, now_unix: i64) -> Result<String, CryptoError> {
        self.with_file(|f| f.add_current_kek(now_unix))
    }

    /// Marks the non-current KEKs retired.
    pub fn retire_old_keks(&self, now_unix: i64) -> Result<Vec<String>, CryptoError> {
        self.with_file(|f| f.retire_old_keks(now_unix))
    }

    /// Destroys retired KEKs older than `keep_secs`.
    pub fn destroy_retired_keks(&self, now_unix: i64, keep_secs: i64) -> Result<Vec<String>, CryptoError> {
        self.with_file(|f| f.destroy_retired_keks(now_unix, keep_secs))
    }

    /// Facts about every KEK in the file.
    pub fn keks(&self) -> Result<Vec<phivault_crypto::KekInfo>, CryptoError> {
        self.with_file(|f| Ok(f.keks()))
    }
}
