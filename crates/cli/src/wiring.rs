//! Opening what a command needs: key file, store, record service.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use phivault_crypto::{KeyFile, KeyFileKind, Unlock};
use phivault_hsm::Pkcs11Provider;
use phivault_identity::Identity;
use phivault_service::access::{GuardedRecords, LivePolicies};
use phivault_service::{Records, SystemClock};
use phivault_store::SqlStore;

use crate::config::Config;
use crate::keysource::FileKeySource;

/// A secret from the variable `var`, from the file named by `{var}_FILE` (e.g. a systemd
/// credential), or from a prompt on a terminal; `why` explains a refusal without one.
fn secret(var: &str, prompt: &str, why: &str) -> Result<String> {
    if let Ok(value) = std::env::var(var) {
        return Ok(value);
    }
    let file_var = format!("{var}_FILE");
    if let Ok(path) = std::env::var(&file_var) {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {file_var} {path}"))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{why}: set {var} or {file_var}, or run in a terminal");
    }
    rpassword::prompt_password(prompt).context("cannot read from the terminal")
}

/// The key-file passphrase: `PHIVAULT_PASSPHRASE`, `PHIVAULT_PASSPHRASE_FILE`, or a prompt.
pub fn passphrase(prompt: &str) -> Result<String> {
    secret("PHIVAULT_PASSPHRASE", prompt, "the key file is sealed")
}

/// The HSM user PIN: `PHIVAULT_HSM_PIN`, `PHIVAULT_HSM_PIN_FILE`, or a prompt.
pub fn hsm_pin() -> Result<String> {
    secret("PHIVAULT_HSM_PIN", "HSM user PIN: ", "the keys are in an HSM")
}

/// Logs in to a PKCS#11 token.
pub fn hsm_provider(module: &Path, token: &str) -> Result<Arc<Pkcs11Provider>> {
    let provider = Pkcs11Provider::open(module, token, &hsm_pin()?)
        .with_context(|| format!("cannot log in to PKCS#11 token '{token}' through {}", module.display()))?;
    Ok(Arc::new(provider))
}

/// Opens and unseals the key file with what its protection needs.
pub fn open_key_file(path: &Path) -> Result<KeyFile> {
    let kind = KeyFile::kind(path).with_context(|| format!("cannot read the key file {}", path.display()))?;
    let file = match kind {
        KeyFileKind::Passphrase => KeyFile::open(path, Unlock::Passphrase(&passphrase("Key file passphrase: ")?)),
        KeyFileKind::Hsm { module, token } => {
            KeyFile::open(path, Unlock::Hsm(hsm_provider(Path::new(&module), &token)?))
        }
        KeyFileKind::InsecurePlaintext => KeyFile::open(path, Unlock::Nothing),
    }
    .context("cannot open the key file")?;
    if file.is_insecure() {
        tracing::warn!(
            "INSECURE: the key file is not sealed (created with --insecure-dev-keys); use it only for throwaway demo data"
        );
    }
    Ok(file)
}

/// Everything a command that touches records or accounts needs.
#[derive(Clone)]
pub struct Services {
    pub store: SqlStore,
    pub keys: Arc<FileKeySource>,
    pub records: Records,
    pub identity: Identity,
    pub audit: phivault_audit::AuditLog,
    /// The records as users and apps reach them: behind the access policies.
    pub guarded: GuardedRecords,
    /// Where break-glass grants are sent for the privacy officer.
    pub notifier: Option<Arc<dyn phivault_service::access::Notifier>>,
}

/// This process's name in audit entries: host name and process id.
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/{}", std::process::id())
}

/// The identity service over `store`, with the configured policy.
pub fn identity(config: &Config, store: &SqlStore, keys: Arc<FileKeySource>) -> Result<Identity> {
    Ok(Identity::new(
        Arc::new(store.clone()),
        keys,
        config.identity.password_hasher()?,
        config.identity.policy()?,
        Arc::new(SystemClock),
    )?)
}

/// Opens the key file and the database (applying migrations) and wires the service.
pub async fn open(config: &Config) -> Result<Services> {
    let file = open_key_file(&config.key_file)?;
    let store = SqlStore::connect(&config.database).await.context("cannot open the database")?;
    let keys = Arc::new(FileKeySource::new(file));
    let records = Records::new(Arc::new(store.clone()), keys.clone(), Arc::new(SystemClock));
    let identity = identity(config, &store, keys.clone())?;
    let audit = phivault_audit::AuditLog::start(Arc::new(store.clone()), &node_name());
    let policies = Arc::new(LivePolicies::new(config.policy.load()?));
    let guarded = GuardedRecords::new(records.clone(), policies, Arc::new(store.clone()), audit.clone())
        .with_break_glass_minutes(config.policy.break_glass_minutes)
        .with_department_window_days(config.policy.department_window_days);
    let notifier = crate::notify::SmtpNotifier::from_config(&config.notify)?
        .map(|n| Arc::new(n) as Arc<dyn phivault_service::access::Notifier>);
    Ok(Services { store, keys, records, identity, audit, guarded, notifier })
}
