//! Configuration: defaults → `phivault.toml` in the data dir → `PHIVAULT_*` variables.
//! Secure by default: loopback only, TLS always, sealed keys unless explicitly insecure.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Name of the configuration file inside the data dir.
pub const CONFIG_FILE: &str = "phivault.toml";

/// Everything phivault reads at startup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://phivault.db` (relative to the data dir) or `postgres://user@host/db`.
    #[serde(default = "default_database")]
    pub database: String,
    /// Key file holding the KEKs and the index key, sealed under the passphrase.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tls: TlsConfig,
}

/// The HTTPS server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Loopback only until authentication exists.
    pub listen: String,
    /// Public base URL used in links and Location headers.
    pub public_base_url: String,
    /// Optional plain-HTTP address that only redirects to `public_base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_listen: Option<String>,
    /// Reverse proxies (CIDR) whose X-Forwarded-For is trusted.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may run.
    pub request_timeout_secs: u64,
    /// Deadline for request headers; idle keep-alive connections close after it.
    pub header_read_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            public_base_url: "https://127.0.0.1:8443".into(),
            redirect_listen: None,
            trusted_proxies: Vec::new(),
            max_body_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 120,
            header_read_timeout_secs: 30,
        }
    }
}

/// Certificate and key (PEM). `init` creates a self-signed pair for localhost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self { cert: "tls/cert.pem".into(), key: "tls/key.pem".into() }
    }
}

fn default_database() -> String {
    "sqlite://phivault.db".into()
}

fn default_key_file() -> PathBuf {
    "keys.json".into()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database: default_database(),
            key_file: default_key_file(),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Config {
    /// Loads `phivault.toml` from `data_dir`, applies `PHIVAULT_*` overrides, resolves
    /// relative paths against the data dir, and validates.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read {}; run `phivault init --data-dir {}` first", path.display(), data_dir.display())
        })?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid phivault configuration", path.display()))?;
        config.resolved(data_dir)
    }

    /// This configuration as the server runs it: `PHIVAULT_*` overrides applied, relative
    /// paths resolved against `data_dir`, validated.
    pub fn resolved(mut self, data_dir: &Path) -> Result<Self> {
        self.apply_env(|name| std::env::var(name).ok())?;
        self.resolve(data_dir);
        self.validate()?;
        Ok(self)
    }

    /// Applies `PHIVAULT_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = var("PHIVAULT_DATABASE") {
            self.database = v;
        }
        if let Some(v) = var("PHIVAULT_KEY_FILE") {
            self.key_file = v.into();
        }
        if let Some(v) = var("PHIVAULT_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = var("PHIVAULT_PUBLIC_BASE_URL") {
            self.server.public_base_url = v;
        }
        if let Some(v) = var("PHIVAULT_REDIRECT_LISTEN") {
            self.server.redirect_listen = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = var("PHIVAULT_TRUSTED_PROXIES") {
            self.server.trusted_proxies =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        }
        if let Some(v) = var("PHIVAULT_MAX_BODY_BYTES") {
            self.server.max_body_bytes = v.parse().context("PHIVAULT_MAX_BODY_BYTES must be a number of bytes")?;
        }
        if let Some(v) = var("PHIVAULT_TLS_CERT") {
            self.tls.cert = v.into();
        }
        if let Some(v) = var("PHIVAULT_TLS_KEY") {
            self.tls.key = v.into();
        }
        Ok(())
    }

    fn resolve(&mut self, data_dir: &Path) {
        let abs = |p: &Path| if p.is_absolute() { p.to_owned() } else { data_dir.join(p) };
        self.key_file = abs(&self.key_file);
        self.tls.cert = abs(&self.tls.cert);
        self.tls.key = abs(&self.tls.key);
        if let Some(rest) = self.database.strip_prefix("sqlite://") {
            let file = Path::new(rest.split('?').next().unwrap_or(rest));
            if !file.is_absolute() {
                self.database = format!("sqlite://{}", data_dir.join(rest).display());
            }
        }
    }

    /// Refuses settings that would run weak or broken.
    pub fn validate(&self) -> Result<()> {
        if !(self.database.starts_with("sqlite://")
            || self.database.starts_with("postgres://")
            || self.database.starts_with("postgresql://"))
        {
            bail!("database must be sqlite://FILE or postgres://USER@HOST/DB");
        }
        if !self.server.public_base_url.starts_with("https://") {
            bail!("server.public_base_url must be an https:// URL: PHI is only served over TLS");
        }
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes below 1 KiB would refuse every resource");
        }
        for net in &self.server.trusted_proxies {
            net.parse::<phivault_api::IpNet>().map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_relative_paths() {
        let mut config = Config::default();
        let env = |name: &str| match name {
            "PHIVAULT_LISTEN" => Some("127.0.0.1:9443".to_owned()),
            "PHIVAULT_TRUSTED_PROXIES" => Some("10.0.0.0/8, 192.168.1.1".to_owned()),
            _ => None,
        };
        config.apply_env(env).expect("env");
        config.resolve(Path::new("/data"));
        assert_eq!(config.server.listen, "127.0.0.1:9443");
        assert_eq!(config.server.trusted_proxies, ["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(config.database, "sqlite:///data/phivault.db");
        assert_eq!(config.key_file, Path::new("/data/keys.json"));
        config.validate().expect("valid");
    }

    #[test]
    fn weak_or_broken_settings_are_refused() {
        let mut plain = Config::default();
        plain.server.public_base_url = "http://example.org".into();
        assert!(plain.validate().is_err());
        let mut proxies = Config::default();
        proxies.server.trusted_proxies = vec!["not-a-network".into()];
        assert!(proxies.validate().is_err());
        let db = Config { database: "mysql://x".into(), ..Config::default() };
        assert!(db.validate().is_err());
        assert!(toml::from_str::<Config>("unknown_setting = 1").is_err(), "typos are refused, not ignored");
    }
}
