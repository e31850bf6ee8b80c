//! `phivault init`: configuration, key file, TLS certificate, database, first admin.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use phivault_crypto::{KdfParams, KeyFile, KeyFileProtection};
use phivault_store::SqlStore;

use crate::config::{CONFIG_FILE, Config};
use crate::keysource::FileKeySource;
use crate::wiring::passphrase;

/// The first administrator's credentials, to print once.
#[derive(Debug)]
pub struct BootstrapAdmin {
    pub username: String,
    /// Random; only its Argon2id hash is stored. Must be changed, and MFA enrolled, at the
    /// first login.
    pub password: String,
}

/// What `init` needs to know.
#[derive(Debug)]
pub struct InitOptions {
    pub data_dir: PathBuf,
    pub insecure_dev_keys: bool,
    pub database: Option<String>,
    /// PKCS#11 module and token label, when the KEKs live in an HSM.
    pub hsm: Option<(PathBuf, String)>,
}

fn new_passphrase() -> Result<String> {
    let first = passphrase("New key file passphrase (12+ characters): ")?;
    if std::env::var("PHIVAULT_PASSPHRASE").is_err()
        && std::env::var("PHIVAULT_PASSPHRASE_FILE").is_err()
        && std::io::stdin().is_terminal()
    {
        let again = rpassword::prompt_password("Repeat the passphrase: ")?;
        if again != first {
            bail!("the passphrases differ");
        }
    }
    Ok(first)
}

/// Creates a data dir. Refuses to touch one that already holds a configuration. All or
/// nothing: if a step fails, the files this run created are removed again, and the
/// configuration file, written last, never points at a half-made key file or database.
pub async fn init(options: &InitOptions) -> Result<Option<BootstrapAdmin>> {
    let dir = &options.data_dir;
    if dir.join(CONFIG_FILE).exists() {
        bail!("{} already holds a phivault configuration; refusing to overwrite it", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;

    let mut on_disk = Config::default();
    if let Some(db) = &options.database {
        on_disk.database = db.clone();
    }
    let config = on_disk.clone().resolved(dir)?;
    let mut created = Vec::new();
    match create_keys_tls_and_database(options, &config, &mut created).await {
        Ok(admin) => {
            let text = toml::to_string_pretty(&on_disk).context("cannot serialize the configuration")?;
            let header =
                "# phivault configuration. Every setting can be overridden by a PHIVAULT_* variable (see README).\n";
            crate::private_file::write_new(&dir.join(CONFIG_FILE), format!("{header}{text}").as_bytes())?;
            Ok(admin)
        }
        Err(e) => {
            for path in created.iter().rev() {
                let _ = std::fs::remove_file(path);
                // And the folders this run made for them, once empty (tls/, audit/).
                if let Some(parent) = path.parent().filter(|p| *p != dir.as_path()) {
                    let _ = std::fs::remove_dir(parent);
                }
            }
            Err(e)
        }
    }
}

async fn create_keys_tls_and_database(
    options: &InitOptions,
    config: &Config,
    created: &mut Vec<PathBuf>,
) -> Result<Option<BootstrapAdmin>> {
    let protection = match (&options.hsm, options.insecure_dev_keys) {
        (Some(_), true) => bail!("choose either an HSM or --insecure-dev-keys"),
        (Some((module, token)), false) => KeyFileProtection::Hsm(crate::wiring::hsm_provider(module, token)?),
        (None, true) => KeyFileProtection::InsecurePlaintext,
        (None, false) => KeyFileProtection::Passphrase { passphrase: new_passphrase()?, kdf: KdfParams::default() },
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let key_file = KeyFile::create(&config.key_file, protection, now).context("cannot create the key file")?;
    created.push(config.key_file.clone());

    if !config.tls.cert.exists() {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).context("cannot create a self-signed certificate")?;
        crate::private_file::write_new(&config.tls.key, certified.signing_key.serialize_pem().as_bytes())?;
        created.push(config.tls.key.clone());
        crate::private_file::write_new(&config.tls.cert, certified.cert.pem().as_bytes())?;
        created.push(config.tls.cert.clone());
    }

    if let Some(file) = config.database.strip_prefix("sqlite://") {
        let file = PathBuf::from(file.split('?').next().unwrap_or(file));
        if !file.exists() {
            for suffix in ["", "-wal", "-shm"] {
                created.push(PathBuf::from(format!("{}{suffix}", file.display())));
            }
        }
    }
    if !config.audit.signing_key.exists() {
        super::audit::signer(&config.audit, key_file.ring())?;
        created.push(config.audit.signing_key.clone());
        created.push(config.audit.public_key.clone());
    }
    // The default access policies, for the operator to read, extend and test.
    let written = phivault_policy::defaults::write_defaults(&config.policy.dir)
        .with_context(|| format!("cannot write the default policies to {}", config.policy.dir.display()))?;
    created.extend(written.iter().map(|name| config.policy.dir.join(name)));
    let store = SqlStore::connect(&config.database).await.context("cannot create the database")?;
    let identity = crate::wiring::identity(config, &store, std::sync::Arc::new(FileKeySource::new(key_file)))?;
    let admin = match identity.create_bootstrap_admin().await {
        Ok(Some((username, password))) => {
            // Who made the first account, and when: the trail's first entry (the account by
            // its id, as every entry names accounts).
            let id = identity.find_user(&username).await.map(|u| u.id).context("the new administrator")?;
            let recorded = super::audit::record_own(
                &store,
                "cli.init.bootstrap_admin",
                Some(format!("user:{id}")),
                "bootstrap administrator created; password shown once on the console".into(),
            )
            .await;
            recorded.map(|()| Some(BootstrapAdmin { username, password }))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e.into()),
    };
    store.close().await;
    admin
}
