//! Configuration: defaults → `phivault.toml` in the data dir → `PHIVAULT_*` variables.
//! Secure by default: loopback unless configured otherwise, TLS always, sealed keys unless
//! explicitly insecure, sign-in with a second factor for every role that sees PHI.

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
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub export: ExportConfig,
    #[serde(default)]
    pub backup: BackupConfig,
}

/// Backups (`phivault backup`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The backup key (created by the first `backup create`). Never inside a backup: keep a
    /// copy off this host, or no backup can be restored after losing it.
    pub key_file: PathBuf,
    /// The newest backup made into each repository, to detect a rolled-back repository,
    /// and the last drill.
    pub state_file: PathBuf,
    /// Where `serve` backs up on its own schedule (a directory). None: no schedule, and no
    /// alerts about backups (run `phivault backup create` from cron instead). Configure it on
    /// one node.
    pub repository: Option<PathBuf>,
    /// How often `serve` backs up (backups are incremental: hourly costs little).
    pub every_minutes: u64,
    /// The recovery point objective: an alert is raised when the newest backup is older.
    pub rpo_minutes: u64,
    /// How often `serve` runs a drill (0: never; run `phivault backup drill` yourself).
    pub drill_every_days: u64,
    /// An alert is raised when no drill has passed for this long.
    pub drill_within_days: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            key_file: "backup/backup.key".into(),
            state_file: "backup/state.json".into(),
            repository: None,
            every_minutes: 60,
            rpo_minutes: 180,
            drill_every_days: 30,
            drill_within_days: 35,
        }
    }
}

/// Bulk Data `$export`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// How long a finished export stays downloadable (then its files are deleted).
    pub ttl_minutes: u64,
    /// The smallest group of patients sharing birth year, gender, ZIP-3 and state that a
    /// de-identified export may contain; below it the export fails and nothing is
    /// released (0: no check).
    pub min_k: usize,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self { ttl_minutes: 24 * 60, min_k: 0 }
    }
}

/// Activity review: how often the server runs the alert rules and the integrity scan, and
/// the rules' thresholds (`[review.rules]`: failed_logins, failed_login_window_minutes,
/// working_hours, patients_per_day, default_patients_per_day).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Seconds between runs of the alert rules in `serve` (0: only `phivault alerts run`).
    pub alert_interval_secs: u64,
    /// Hours between integrity scans in `serve` (0: only `phivault integrity scan`).
    pub integrity_scan_hours: u64,
    pub rules: phivault_audit::detect::DetectionRules,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            alert_interval_secs: 60,
            integrity_scan_hours: 24,
            rules: phivault_audit::detect::DetectionRules::default(),
        }
    }
}

/// Where notices for the privacy officer go (break-glass grants).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// SMTP relay URL: `smtp://host:25`, `smtp://host:587?tls=required`, `smtps://host:465`.
    /// Without one, break-glass grants are recorded in the audit trail and the review queue
    /// only, and the server says so at start.
    pub smtp_relay: Option<String>,
    /// Sender address.
    pub from: String,
    /// The privacy officer's address.
    pub privacy_officer: Option<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self { smtp_relay: None, from: "phivault@localhost".into(), privacy_officer: None }
    }
}

/// The access policies (Cedar) and network zones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directory of `*.cedar` policies and `views.toml` (written by `init`; edit and run
    /// `phivault policy check` and `phivault policy test`). Without it, the built-in
    /// defaults apply.
    pub dir: PathBuf,
    /// How often the server looks for changed policy files. A changed set that fails
    /// validation is refused and the last good set stays in force.
    pub reload_interval_secs: u64,
    /// Named client address ranges, e.g. `admin = ["10.1.2.0/24"]`. Once any zone is
    /// configured, requests from outside every zone are refused by the default policies.
    pub zones: std::collections::BTreeMap<String, Vec<String>>,
    /// How long a break-glass grant lasts, in minutes.
    pub break_glass_minutes: u32,
    /// A department's clinicians reach patients with an Encounter there this recent.
    pub department_window_days: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: "policy".into(),
            reload_interval_secs: 5,
            zones: std::collections::BTreeMap::new(),
            break_glass_minutes: phivault_service::access::DEFAULT_BREAK_GLASS_MINUTES,
            department_window_days: phivault_service::access::DEFAULT_DEPARTMENT_WINDOW_DAYS,
        }
    }
}

impl PolicyConfig {
    /// The configured zones, validated.
    pub fn zones(&self) -> Result<phivault_policy::Zones> {
        Ok(phivault_policy::Zones::new(self.zones.iter().map(|(name, ranges)| (name.as_str(), ranges.as_slice())))?)
    }

    /// The policies from `dir`, or the built-in defaults when it does not exist.
    pub fn load(&self) -> Result<phivault_policy::Policies> {
        if self.dir.exists() {
            phivault_policy::Policies::from_dir(&self.dir)
                .with_context(|| format!("the policies in {} are not valid", self.dir.display()))
        } else {
            Ok(phivault_policy::Policies::defaults()?)
        }
    }
}

/// The audit trail's checkpoint key and witness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Ed25519 key that signs checkpoints; kept outside the database. By default sealed
    /// under the key file (created so); a plaintext PKCS#8 file is used if configured.
    pub signing_key: PathBuf,
    /// The public half, for `audit verify` and the standalone verifier.
    pub public_key: PathBuf,
    /// Where signed checkpoints are appended (one JSON line each). Put it on another
    /// volume, or ship it off the host: it is what proves the trail was not rewritten.
    pub witness_file: PathBuf,
    /// How often the server signs a checkpoint while the trail grows (it also signs one at
    /// start, covering what an earlier run left, and at shutdown).
    pub checkpoint_interval_secs: u64,
    /// A SIEM's syslog collector the server ships every entry to: `tcp://host:port` or
    /// `tls://host:port` (RFC 5424 over RFC 6587/5425 framing). None: no shipping.
    pub syslog_target: Option<String>,
    /// The CA certificate (PEM) that signed a `tls://` collector's certificate.
    pub syslog_ca: Option<PathBuf>,
    /// How often the server ships new entries.
    pub ship_interval_secs: u64,
    /// The next entry to ship (one node per cursor file).
    pub ship_cursor: PathBuf,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key: "audit/signing.key.sealed".into(),
            public_key: "audit/signing.pub".into(),
            witness_file: "audit/witness.jsonl".into(),
            syslog_target: None,
            syslog_ca: None,
            ship_interval_secs: 10,
            ship_cursor: "audit/syslog.cursor".into(),
            checkpoint_interval_secs: 60,
        }
    }
}

/// Sign-in, password and session rules (the written policy, as settings).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Argon2id memory in KiB (at least 19456), passes (at least 2), lanes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub password_min_length: usize,
    pub password_max_length: usize,
    /// Upper, lower, digit and symbol required (off by default, per NIST SP 800-63B).
    pub password_require_composition: bool,
    /// Previous passwords that may not be reused.
    pub password_history: usize,
    pub max_failed_logins: i64,
    pub lockout_minutes: i64,
    /// Failed logins per client address per window before it is refused.
    pub max_failures_per_address: i64,
    pub address_window_minutes: i64,
    /// Roles that must use a second factor.
    pub mfa_required_roles: Vec<String>,
    /// Automatic logoff after this many idle minutes...
    pub idle_timeout_minutes: i64,
    /// ...or, per role, after these (e.g. `{ physician = 30 }`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub idle_timeout_minutes_by_role: std::collections::BTreeMap<String, i64>,
    pub session_lifetime_hours: i64,
    pub access_token_minutes: i64,
    pub refresh_token_hours: i64,
    /// The name authenticator apps show next to the code.
    pub totp_issuer: String,
    /// Separation of duties: an administrator's new account or credential reset waits for a
    /// second person's approval (`approve_credentials` in the policies), who alone sees the
    /// temporary password. Off only where one person is the whole office.
    pub second_person_approval: bool,
    /// How long a credential request may wait for approval.
    pub credential_request_hours: i64,
    /// How long a temporary password works before it must have been replaced.
    pub temporary_password_hours: i64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let policy = phivault_identity::IdentityPolicy::default();
        let params = phivault_crypto::PasswordParams::default();
        Self {
            argon2_memory_kib: params.memory_kib,
            argon2_iterations: params.iterations,
            argon2_parallelism: params.parallelism,
            password_min_length: policy.password.min_length,
            password_max_length: policy.password.max_length,
            password_require_composition: policy.password.require_composition,
            password_history: policy.password.history,
            max_failed_logins: policy.max_failed_logins,
            lockout_minutes: policy.lockout_ms / 60_000,
            max_failures_per_address: policy.max_failures_per_source,
            address_window_minutes: policy.source_window_ms / 60_000,
            mfa_required_roles: policy.mfa_required_roles.iter().map(|r| r.as_str().to_owned()).collect(),
            idle_timeout_minutes: 15,
            idle_timeout_minutes_by_role: Default::default(),
            session_lifetime_hours: policy.session_lifetime_ms / 3_600_000,
            access_token_minutes: policy.access_token_ms / 60_000,
            refresh_token_hours: policy.refresh_token_ms / 3_600_000,
            totp_issuer: policy.totp_issuer,
            second_person_approval: policy.second_person_approval,
            credential_request_hours: policy.credential_request_ms / 3_600_000,
            temporary_password_hours: policy.temporary_password_ms / 3_600_000,
        }
    }
}

impl IdentityConfig {
    /// The Argon2id parameters; refuses ones below OWASP's minimum.
    pub fn password_hasher(&self) -> Result<phivault_crypto::PasswordHasher> {
        phivault_crypto::PasswordHasher::new(phivault_crypto::PasswordParams {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        })
        .context("identity.argon2_* settings")
    }

    /// The identity policy these settings describe.
    pub fn policy(&self) -> Result<phivault_identity::IdentityPolicy> {
        use phivault_identity::{IdentityPolicy, PasswordPolicy, Role};
        const MINUTE: i64 = 60_000;
        let positive = |v: i64, name: &str| -> Result<i64> {
            if v <= 0 {
                bail!("identity.{name} must be positive");
            }
            Ok(v)
        };
        if self.password_min_length < 8 {
            bail!("identity.password_min_length must be at least 8 (NIST SP 800-63B)");
        }
        if self.password_max_length < 64 || self.password_max_length < self.password_min_length {
            bail!("identity.password_max_length must be at least 64 (NIST SP 800-63B) and above the minimum");
        }
        let mut idle: std::collections::BTreeMap<Role, i64> =
            Role::ALL.into_iter().map(|r| (r, self.idle_timeout_minutes * MINUTE)).collect();
        for (role, minutes) in &self.idle_timeout_minutes_by_role {
            let role: Role = role.parse().context("identity.idle_timeout_minutes_by_role")?;
            idle.insert(role, positive(*minutes, "idle_timeout_minutes_by_role")? * MINUTE);
        }
        Ok(IdentityPolicy {
            password: PasswordPolicy {
                min_length: self.password_min_length,
                max_length: self.password_max_length,
                require_composition: self.password_require_composition,
                history: self.password_history,
            },
            max_failed_logins: positive(self.max_failed_logins, "max_failed_logins")?,
            lockout_ms: positive(self.lockout_minutes, "lockout_minutes")? * MINUTE,
            max_failures_per_source: positive(self.max_failures_per_address, "max_failures_per_address")?,
            source_window_ms: positive(self.address_window_minutes, "address_window_minutes")? * MINUTE,
            mfa_required_roles: self
                .mfa_required_roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<_, _>>()
                .context("identity.mfa_required_roles")?,
            idle_timeout_ms: {
                positive(self.idle_timeout_minutes, "idle_timeout_minutes")?;
                idle
            },
            session_lifetime_ms: positive(self.session_lifetime_hours, "session_lifetime_hours")? * 60 * MINUTE,
            access_token_ms: positive(self.access_token_minutes, "access_token_minutes")? * MINUTE,
            refresh_token_ms: positive(self.refresh_token_hours, "refresh_token_hours")? * 60 * MINUTE,
            totp_issuer: self.totp_issuer.clone(),
            second_person_approval: self.second_person_approval,
            credential_request_ms: positive(self.credential_request_hours, "credential_request_hours")? * 60 * MINUTE,
            temporary_password_ms: positive(self.temporary_password_hours, "temporary_password_hours")? * 60 * MINUTE,
            ..IdentityPolicy::default()
        })
    }
}

/// The HTTPS server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (loopback by default; every request must authenticate).
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
    /// Origins (`https://app.example`, exactly as browsers send them) whose browser apps may
    /// call the FHIR API and the token endpoint (CORS). None by default; `*` is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors_allowed_origins: Vec<String>,
}

impl ServerConfig {
    /// The CORS origins, each checked to be `scheme://host[:port]` and nothing else.
    pub fn cors_origins(&self) -> anyhow::Result<Vec<String>> {
        for origin in &self.cors_allowed_origins {
            let well_formed = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "https" | "http") && !rest.is_empty() && !rest.contains(['/', '?', '#', '*', ' ', '@'])
            });
            if !well_formed {
                anyhow::bail!(
                    "server.cors_allowed_origins: {origin:?} is not an origin such as https://app.example (no path, no wildcard)"
                );
            }
        }
        Ok(self.cors_allowed_origins.clone())
    }
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
            cors_allowed_origins: Vec::new(),
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
            identity: IdentityConfig::default(),
            audit: AuditConfig::default(),
            policy: PolicyConfig::default(),
            notify: NotifyConfig::default(),
            review: ReviewConfig::default(),
            export: ExportConfig::default(),
            backup: BackupConfig::default(),
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

    /// This configuration with paths resolved against `data_dir`, validated, and no
    /// `PHIVAULT_*` override applied: what a restore writes files by, whatever the
    /// restoring shell's environment holds.
    pub fn resolved_without_env(mut self, data_dir: &Path) -> Result<Self> {
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
        self.audit.signing_key = abs(&self.audit.signing_key);
        self.audit.public_key = abs(&self.audit.public_key);
        self.audit.witness_file = abs(&self.audit.witness_file);
        self.audit.ship_cursor = abs(&self.audit.ship_cursor);
        self.audit.syslog_ca = self.audit.syslog_ca.as_deref().map(abs);
        self.policy.dir = abs(&self.policy.dir);
        self.backup.key_file = abs(&self.backup.key_file);
        self.backup.state_file = abs(&self.backup.state_file);
        self.backup.repository = self.backup.repository.as_deref().map(abs);
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
        if self.backup.every_minutes == 0 {
            bail!("backup.every_minutes must be at least 1");
        }
        if self.backup.rpo_minutes < self.backup.every_minutes {
            bail!("backup.rpo_minutes must be at least backup.every_minutes, or every scheduled backup is late");
        }
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes below 1 KiB would refuse every resource");
        }
        for net in &self.server.trusted_proxies {
            net.parse::<phivault_api::IpNet>().map_err(anyhow::Error::msg)?;
        }
        self.identity.password_hasher()?;
        self.identity.policy()?;
        self.policy.zones()?;
        if !(1..=24 * 60).contains(&self.policy.break_glass_minutes) {
            bail!("policy.break_glass_minutes must be between 1 and 1440: emergency access is time-limited");
        }
        crate::notify::SmtpNotifier::from_config(&self.notify)?;
        if let Some(target) = &self.audit.syslog_target {
            phivault_audit::syslog::ShipTarget::parse(target, self.audit.syslog_ca.as_deref())
                .context("audit.syslog_target")?;
        }
        let rules = &self.review.rules;
        if rules.failed_logins == 0 || rules.failed_login_window_minutes == 0 {
            bail!("review.rules.failed_logins and failed_login_window_minutes must be at least 1");
        }
        if let Some(hours) = &rules.working_hours
            && (hours.start_minute >= 24 * 60 || hours.end_minute > 24 * 60 || hours.utc_offset_minutes.abs() > 14 * 60)
        {
            bail!("review.rules.working_hours: minutes after midnight (0-1440) and a UTC offset within 14 hours");
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
        let weak_argon: Config = toml::from_str("[identity]\nargon2_memory_kib = 4096").expect("toml");
        assert!(weak_argon.validate().is_err(), "Argon2 below OWASP's minimum is refused");
        let short: Config = toml::from_str("[identity]\npassword_min_length = 6").expect("toml");
        assert!(short.validate().is_err());
        let role: Config = toml::from_str("[identity]\nmfa_required_roles = [\"surgeon\"]").expect("toml");
        assert!(role.validate().is_err(), "unknown roles are refused");
        let per_role: Config =
            toml::from_str("[identity]\nidle_timeout_minutes_by_role = { physician = 30 }").expect("toml");
        let policy = per_role.identity.policy().expect("policy");
        assert_eq!(policy.idle_timeout_for(&[phivault_identity::Role::Physician]), 30 * 60_000);
        assert_eq!(
            policy.idle_timeout_for(&[phivault_identity::Role::Physician, phivault_identity::Role::Nurse]),
            15 * 60_000
        );
    }
}
