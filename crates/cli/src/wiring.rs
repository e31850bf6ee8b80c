//! Opening what a command needs: key file, store, record service.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use phivault_crypto::KeyFile;
use phivault_service::{Records, SystemClock};
use phivault_store::SqlStore;

use crate::config::Config;
use crate::keysource::FileKeySource;

/// The passphrase for the key file: `PHIVAULT_PASSPHRASE`, a file named by
/// `PHIVAULT_PASSPHRASE_FILE`, or an interactive prompt.
pub fn passphrase(prompt: &str) -> Result<String> {
    if let Ok(p) = std::env::var("PHIVAULT_PASSPHRASE") {
        return Ok(p);
    }
    if let Ok(path) = std::env::var("PHIVAULT_PASSPHRASE_FILE") {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read PHIVAULT_PASSPHRASE_FILE {path}"))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!("the key file is sealed: set PHIVAULT_PASSPHRASE or PHIVAULT_PASSPHRASE_FILE, or run in a terminal");
    }
    rpassword::prompt_password(prompt).context("cannot read the passphrase")
}

/// Opens and unseals the key file.
pub fn open_key_file(path: &Path) -> Result<KeyFile> {
    let sealed =
        KeyFile::needs_passphrase(path).with_context(|| format!("cannot read the key file {}", path.display()))?;
    let passphrase = if sealed { Some(passphrase("Key file passphrase: ")?) } else { None };
    let file = KeyFile::open(path, passphrase.as_deref()).context("cannot open the key file")?;
    if file.is_insecure() {
        tracing::warn!(
            "INSECURE: the key file is not sealed (created with --insecure-dev-keys); use it only for throwaway demo data"
        );
    }
    Ok(file)
}

/// Everything a command that touches records needs.
pub struct Services {
    pub store: SqlStore,
    pub keys: Arc<FileKeySource>,
    pub records: Records,
}

/// Opens the key file and the database (applying migrations) and wires the service.
pub async fn open(config: &Config) -> Result<Services> {
    let file = open_key_file(&config.key_file)?;
    let store = SqlStore::connect(&config.database).await.context("cannot open the database")?;
    let keys = Arc::new(FileKeySource::new(file));
    let records = Records::new(Arc::new(store.clone()), keys.clone(), Arc::new(SystemClock));
    Ok(Services { store, keys, records })
}
