//! Which files of a data dir a backup holds, and where a restore puts them back.
//!
//! Everything a restore needs besides the database: the configuration, the key file (still
//! sealed under its passphrase or HSM: a backup does not make it readable), the TLS files,
//! the audit signing key (sealed) and public key, the witness of signed checkpoints, the
//! policies. Not the backup key itself, and not per-node state (syslog cursor, revocation
//! stamp).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::{CONFIG_FILE, Config};

/// A file to back up: its role, its name within the role, where it is.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub role: &'static str,
    pub name: String,
    pub path: PathBuf,
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The files present for `config` in `data_dir`; a missing optional one (no witness yet) is
/// left out, a missing required one (the key file) is an error.
pub fn collect(data_dir: &Path, config: &Config) -> Result<Vec<DataFile>> {
    let mut out = Vec::new();
    let mut single = |role: &'static str, path: &Path, required: bool| -> Result<()> {
        if path.is_file() {
            out.push(DataFile { role, name: file_name(path), path: path.to_owned() });
        } else if required {
            bail!("{} ({role}) is missing: nothing to back up it from", path.display());
        }
        Ok(())
    };
    single("config", &data_dir.join(CONFIG_FILE), true)?;
    single("key_file", &config.key_file, true)?;
    single("tls_cert", &config.tls.cert, false)?;
    single("tls_key", &config.tls.key, false)?;
    single("audit_signing_key", &config.audit.signing_key, false)?;
    single("audit_public_key", &config.audit.public_key, false)?;
    single("audit_witness", &config.audit.witness_file, false)?;
    if let Some(ca) = &config.audit.syslog_ca {
        single("syslog_ca", ca, false)?;
    }
    if config.policy.dir.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&config.policy.dir)
            .with_context(|| format!("cannot read {}", config.policy.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for path in names {
            out.push(DataFile { role: "policy", name: file_name(&path), path });
        }
    }
    Ok(out)
}

/// A restored configuration made self-contained: every path the backup placed outside its
/// data dir (absolute, or climbing out with `..`) is moved to its default place inside the
/// new one, a SQLite database too unless `--database` names one, and the database is the
/// one given. Returns the new on-disk configuration and whether it differs.
pub fn relocate(mut on_disk: Config, database: Option<&str>) -> (Config, bool) {
    let defaults = Config::default();
    let mut changed = false;
    // Absolute, or climbing out with `..`: either would put a restored file outside NEW.
    let mut inside = |path: &mut PathBuf, default: &Path| {
        if !is_plain_relative(path) {
            *path = default.to_owned();
            changed = true;
        }
    };
    inside(&mut on_disk.key_file, &defaults.key_file);
    inside(&mut on_disk.tls.cert, &defaults.tls.cert);
    inside(&mut on_disk.tls.key, &defaults.tls.key);
    inside(&mut on_disk.audit.signing_key, &defaults.audit.signing_key);
    inside(&mut on_disk.audit.public_key, &defaults.audit.public_key);
    inside(&mut on_disk.audit.witness_file, &defaults.audit.witness_file);
    inside(&mut on_disk.audit.ship_cursor, &defaults.audit.ship_cursor);
    inside(&mut on_disk.policy.dir, &defaults.policy.dir);
    inside(&mut on_disk.backup.key_file, &defaults.backup.key_file);
    inside(&mut on_disk.backup.state_file, &defaults.backup.state_file);
    if let Some(ca) = on_disk.audit.syslog_ca.as_mut()
        && !is_plain_relative(ca)
    {
        *ca = PathBuf::from("audit/syslog-ca.pem");
        changed = true;
    }
    if let Some(url) = database
        && on_disk.database != url
    {
        on_disk.database = url.to_owned();
        changed = true;
    } else if database.is_none()
        && let Some(file) = on_disk.database.strip_prefix("sqlite://")
        && !file.is_empty()
        && !is_plain_relative(Path::new(file.split('?').next().unwrap_or(file)))
    {
        on_disk.database = defaults.database.clone();
        changed = true;
    }
    (on_disk, changed)
}

/// A relative path of plain names only (no `..`, no root): it stays inside whatever it is
/// joined to.
fn is_plain_relative(path: &Path) -> bool {
    use std::path::Component;
    path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Refuses a restore target outside the new data dir (the last line of defence behind
/// [`relocate`]).
pub fn ensure_inside(data_dir: &Path, path: &Path) -> Result<()> {
    match path.strip_prefix(data_dir) {
        Ok(rest) if is_plain_relative(rest) => Ok(()),
        _ => bail!("the backup would write {} outside the new data dir; refusing", path.display()),
    }
}

/// Where a restored file goes under the resolved configuration of the new data dir.
pub fn target(data_dir: &Path, config: &Config, role: &str, name: &str) -> Result<PathBuf> {
    Ok(match role {
        "config" => data_dir.join(CONFIG_FILE),
        "key_file" => config.key_file.clone(),
        "tls_cert" => config.tls.cert.clone(),
        "tls_key" => config.tls.key.clone(),
        "audit_signing_key" => config.audit.signing_key.clone(),
        "audit_public_key" => config.audit.public_key.clone(),
        "audit_witness" => config.audit.witness_file.clone(),
        "syslog_ca" => {
            config.audit.syslog_ca.clone().context("the backup holds a syslog CA the configuration does not name")?
        }
        "policy" => {
            if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
                bail!("the backup holds a policy file with an unsafe name");
            }
            config.policy.dir.join(name)
        }
        other => bail!("the backup holds a file of an unknown role ({other}); restore it with a newer phivault"),
    })
}
