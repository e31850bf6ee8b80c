//! `phivault audit ...`: checkpoints and verification of the audit trail, and the server's
//! periodic checkpointing.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Subcommand;
use phivault_audit::archive::{archive_claim, vouched_end};
use phivault_audit::merkle::Accumulator;
pub use phivault_audit::syslog::ShipTarget;
use phivault_audit::{AuditEvent, AuditQuery, AuditStore, Checkpoint, CheckpointSigner, StoredEntry};
use phivault_crypto::KeyRing;

use crate::config::AuditConfig;

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Sign a checkpoint of the trail as it is now, store it and append it to the witness.
    Checkpoint,
    /// Prove that entry SEQ is in the latest signed checkpoint (RFC 6962 inclusion proof),
    /// and show the entry.
    Prove {
        /// The entry's position in the trail.
        seq: u64,
        /// Public key to check the checkpoint with (default: audit.public_key).
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
    },
    /// Prove that a later signed checkpoint extends an earlier one (RFC 6962 consistency
    /// proof, checked as in RFC 9162 section 2.1.4.2): by default the two most recent
    /// validly signed checkpoints.
    Consistency {
        /// Tree size of the earlier checkpoint (default: the one before the later one).
        #[arg(long)]
        from: Option<u64>,
        /// Tree size of the later checkpoint (default: the latest).
        #[arg(long)]
        to: Option<u64>,
        /// Public key to check the checkpoints with (default: audit.public_key).
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
        /// Archive files (from `audit archive`) whose content to check too; without them an
        /// archived entry counts by the hash it left behind.
        #[arg(long)]
        archive: Vec<std::path::PathBuf>,
    },
    /// Search the trail (activity review): entries matching every given filter, oldest
    /// first, one JSON object per line.
    Search {
        /// Account id (`user-…`) or `os:<login>` for command-line operations.
        #[arg(long)]
        user: Option<String>,
        /// Patient id: every access that touched this patient's records.
        #[arg(long)]
        patient: Option<String>,
        /// Action, e.g. read, search, login.password, admin.user.deactivate.
        #[arg(long)]
        action: Option<String>,
        /// success, denied or failure.
        #[arg(long)]
        outcome: Option<String>,
        /// From this time on (RFC 3339, e.g. 2026-11-25T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Write the trail to a file: by default the whole trail for the standalone verifier
    /// (`phivault-audit-verify --log FILE --witness WITNESS --public-key KEY`); or entries as
    /// JSON lines, FHIR R4 AuditEvent NDJSON or a FHIR collection Bundle.
    Export {
        /// The file to write (mode 0600; refuses to overwrite).
        #[arg(long)]
        out: std::path::PathBuf,
        /// verifier (every entry's exact bytes and hashes), jsonl (`{"seq":n,"event":{...}}`),
        /// fhir-ndjson or fhir-bundle.
        #[arg(long, value_enum, default_value_t = ExportFormat::Verifier)]
        format: ExportFormat,
        /// From this time on (RFC 3339); not for the verifier format, which needs every entry.
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339); not for the verifier format.
        #[arg(long)]
        until: Option<String>,
    },
    /// Send the entries not yet shipped to a SIEM as RFC 5424 syslog over TCP or TLS
    /// (RFC 5425), then exit. Progress is kept in audit/syslog.cursor under the data dir.
    Ship {
        /// tcp://HOST:PORT or tls://HOST:PORT.
        #[arg(long)]
        to: String,
        /// The CA certificate (PEM) the collector's certificate chains to; needed for tls://.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
    },
    /// Verify the whole trail against the signed checkpoints (database and witness file).
    Verify {
        /// Public key to verify with (default: the configured audit.public_key).
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
        /// Archive files (from `audit archive`) whose content to check too.
        #[arg(long)]
        archive: Vec<std::path::PathBuf>,
        /// Accept a witness file that lacks checkpoints the database holds: only where several
        /// nodes share one trail and each keeps a witness of its own signings.
        #[arg(long)]
        allow_partial_witness: bool,
    },
    /// Move the content of the entries written before a time, and covered by a signed
    /// checkpoint, into an archive file; their hashes stay, so the trail still verifies.
    Archive {
        /// Archive entries written before this time (RFC 3339).
        #[arg(long)]
        before: String,
        /// The archive file to write (refuses to overwrite; keep it six years).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// What `phivault audit export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Every entry's exact bytes with its hashes, for `phivault-audit-verify`.
    Verifier,
    /// One `{"seq":n,"event":{...}}` line per entry, the event in its canonical form.
    Jsonl,
    /// One FHIR R4 AuditEvent per line.
    FhirNdjson,
    /// One FHIR R4 Bundle of type collection.
    FhirBundle,
}

impl ExportFormat {
    /// The name `--format` takes.
    fn name(self) -> &'static str {
        match self {
            Self::Verifier => "verifier",
            Self::Jsonl => "jsonl",
            Self::FhirNdjson => "fhir-ndjson",
            Self::FhirBundle => "fhir-bundle",
        }
    }
}

/// The first line of a sealed signing-key file; base64 of the sealed PKCS#8 follows.
const SEALED_KEY_HEADER: &str = "phivault-sealed-audit-signing-key/1";
/// What the signing key is sealed for (the key ring's token key, which the key file's
/// passphrase or HSM protects and which KEK rotation leaves unchanged).
const SEALED_KEY_PURPOSE: &str = "phivault/audit-signing-key/v1";

/// How the checkpoint signing key is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKeyForm {
    /// Sealed under the key file: a copy of the data dir without the key file's passphrase
    /// (or its HSM) cannot sign.
    Sealed,
    /// A plaintext PKCS#8 file the operator configured (on another volume or account).
    Plaintext,
}

/// The checkpoint signer. A missing key is created, sealed under the key file; a plaintext
/// key at the configured path is used as it is (the operator put it there); a plaintext key
/// left by an older version at `audit/signing.key` beside a sealed default path is sealed
/// and its plaintext removed.
pub fn signer(config: &AuditConfig, ring: &KeyRing) -> Result<(CheckpointSigner, SigningKeyForm)> {
    let path = &config.signing_key;
    let legacy = path.with_file_name("signing.key");
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let opened = open_signing_key(&bytes, ring)
            .with_context(|| format!("cannot use the audit signing key {}", path.display()))?;
        // A plaintext copy left beside the sealed key (a crash mid-migration, a restored
        // backup) would undo the sealing: removed if it is the same key, else reported.
        if opened.1 == SigningKeyForm::Sealed && legacy != *path && legacy.exists() {
            let same = std::fs::read(&legacy)
                .ok()
                .and_then(|der| CheckpointSigner::from_pkcs8(&der).ok())
                .is_some_and(|plain| plain.public_key() == opened.0.public_key());
            if same {
                std::fs::remove_file(&legacy).with_context(|| format!("cannot remove {}", legacy.display()))?;
                eprintln!("removed a plaintext copy of the sealed audit signing key: {}", legacy.display());
            } else {
                eprintln!(
                    "warning: {} holds a plaintext signing key that is not the sealed one; remove it",
                    legacy.display()
                );
            }
        }
        return Ok(opened);
    }
    if path.file_name().is_some_and(|n| n == "signing.key.sealed") && legacy.exists() {
        let der = std::fs::read(&legacy).with_context(|| format!("cannot read {}", legacy.display()))?;
        let signer = CheckpointSigner::from_pkcs8(&der)?;
        write_new(path, &seal_signing_key(&der, ring)?, 0o600)?;
        std::fs::remove_file(&legacy).with_context(|| format!("cannot remove {}", legacy.display()))?;
        eprintln!(
            "sealed the audit signing key under the key file into {} and removed the plaintext {}",
            path.display(),
            legacy.display()
        );
        return Ok((signer, SigningKeyForm::Sealed));
    }
    let (signer, pkcs8) = CheckpointSigner::generate()?;
    write_new(path, &seal_signing_key(&pkcs8, ring)?, 0o600)?;
    let public = base64::engine::general_purpose::STANDARD.encode(signer.public_key());
    write_new(&config.public_key, format!("{public}\n").as_bytes(), 0o644)?;
    tracing::info!(key_id = %signer.key_id(), "created the audit checkpoint key");
    Ok((signer, SigningKeyForm::Sealed))
}

fn seal_signing_key(pkcs8: &[u8], ring: &KeyRing) -> Result<Vec<u8>> {
    let sealed = ring.seal_token(SEALED_KEY_PURPOSE, pkcs8)?;
    Ok(format!("{SEALED_KEY_HEADER}\n{}\n", base64::engine::general_purpose::STANDARD.encode(sealed)).into_bytes())
}

fn open_signing_key(bytes: &[u8], ring: &KeyRing) -> Result<(CheckpointSigner, SigningKeyForm)> {
    let Some(rest) = bytes.strip_prefix(SEALED_KEY_HEADER.as_bytes()) else {
        return Ok((CheckpointSigner::from_pkcs8(bytes)?, SigningKeyForm::Plaintext));
    };
    let sealed = std::str::from_utf8(rest)
        .ok()
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t.trim()).ok())
        .context("the sealed key is not base64")?;
    let pkcs8 = ring
        .open_token(SEALED_KEY_PURPOSE, &sealed)
        .map_err(|_| anyhow::anyhow!("it is sealed under another key file, or was altered"))?;
    Ok((CheckpointSigner::from_pkcs8(&pkcs8)?, SigningKeyForm::Sealed))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .with_context(|| format!("cannot write {}", path.display()))
}

const PAGE: u64 = 10_000;

/// Signs the current head: stored in the database and appended to the witness file.
///
/// The signer does not take the database's word for it: the newest checkpoint this key
/// signed must still match the stored trail, and every entry after it must hash to its
/// stored leaf and chain on from the one before. Otherwise nothing is signed (a signature
/// over a trail rewritten with recomputed hashes would vouch for the rewrite).
pub async fn checkpoint(store: &dyn AuditStore, signer: &CheckpointSigner, witness: &Path) -> Result<Checkpoint> {
    use phivault_audit::merkle::{CHAIN_START, chain_hash, leaf_hash};
    let key = signer.public_key();
    // Entries a crashed process committed with its writes but did not chain are chained
    // first, so a checkpoint at start covers what the previous run left.
    store.append_audit(&[], true).await?;
    // The database's newest checkpoints and the witness file's: deleting them from the
    // database does not make the signer forget what it signed. (A few of the newest: rows
    // naming the key that do not verify cannot push the witness's out of sight.)
    let refuse = |why: String| anyhow::anyhow!("refusing to sign a checkpoint: {why}; run `phivault audit verify`");
    let ours = |c: &Checkpoint| c.key_id == signer.key_id() && c.tree_size > 0 && c.verify(&key);
    let mut known = store.newest_checkpoints(&signer.key_id(), 64).await?;
    // Without the witness, the database's word would be all there is: a missing one while
    // the database holds this key's checkpoints was removed (or never copied to this node).
    if !known.is_empty() && !witness.exists() {
        return Err(refuse(format!(
            "the witness file {} is missing while the database holds checkpoints of this key (restore it, or \
             copy it from another node)",
            witness.display()
        )));
    }
    // Rows that name the key but do not verify must not hide the newest real one.
    if !known.iter().any(ours) {
        known = store.checkpoints().await?;
    }
    known.extend(newest_witness_checkpoints(witness)?);
    let vouched = known.into_iter().filter(ours).max_by_key(|c| c.tree_size);
    let vouched_size = vouched.as_ref().map_or(0, |c| c.tree_size);
    let mut tree = Accumulator::default();
    let mut from = 0;
    let mut last_chain = CHAIN_START;
    loop {
        let page = store.audit_entries(from, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for e in &page {
            let at = tree.size();
            if e.seq != at {
                return Err(refuse(format!("entry #{at} is missing or out of order")));
            }
            if at >= vouched_size {
                // Only what a checkpoint already covers is ever archived.
                if e.bytes.is_empty() {
                    return Err(refuse(format!("entry #{at} has no content, and no checkpoint covers it")));
                }
                if leaf_hash(&e.bytes) != e.leaf {
                    return Err(refuse(format!("entry #{at} does not match its stored hash")));
                }
                if chain_hash(&last_chain, &e.leaf) != e.chain {
                    return Err(refuse(format!("entry #{at} breaks the hash chain")));
                }
            }
            last_chain = e.chain;
            tree.push(e.leaf);
            if let Some(cp) = vouched.as_ref().filter(|cp| cp.tree_size == tree.size()) {
                let hex = phivault_audit::checkpoint::hex;
                if cp.root != hex(&tree.root()) || cp.chain != hex(&last_chain) {
                    return Err(refuse(format!(
                        "the trail's first {} entries no longer match the checkpoint signed for them",
                        cp.tree_size
                    )));
                }
            }
        }
    }
    if tree.size() < vouched_size {
        return Err(refuse(format!(
            "the trail holds {} entries, fewer than the {vouched_size} a checkpoint signed",
            tree.size()
        )));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let cp = signer.sign(tree.size(), &tree.root(), &last_chain, now);
    // The witness first, durable, then the database: a process killed in between leaves a
    // checkpoint only the witness holds (verify reads both), never one the witness lacks,
    // which `audit verify` reports as a rolled-back witness.
    if let Some(parent) = witness.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(witness)
        .with_context(|| format!("cannot open the witness file {}", witness.display()))?;
    writeln!(file, "{}", serde_json::to_string(&cp)?)?;
    file.sync_all()?;
    store.insert_checkpoint(&cp).await?;
    Ok(cp)
}

/// Appends an entry for a console act on the trail itself, straight to the store (these
/// commands run without the record services).
pub(crate) async fn record_own(
    store: &dyn AuditStore,
    action: &str,
    target: Option<String>,
    reason: String,
) -> Result<()> {
    record_own_outcome(store, action, target, reason, phivault_audit::Outcome::Success).await
}

/// [`record_own`] for an act that may have failed.
pub(crate) async fn record_own_outcome(
    store: &dyn AuditStore,
    action: &str,
    target: Option<String>,
    reason: String,
    outcome: phivault_audit::Outcome,
) -> Result<()> {
    record_as(store, &crate::actor::os_actor(), action, target, reason, outcome).await
}

/// An entry for an act by `actor` (`os:<name>` at the console, `system:phivault` for what
/// the server does on its own schedule), straight to the store.
pub(crate) async fn record_as(
    store: &dyn AuditStore,
    actor: &str,
    action: &str,
    target: Option<String>,
    reason: String,
    outcome: phivault_audit::Outcome,
) -> Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let mut event = AuditEvent::new(now, action, outcome, &crate::wiring::node_name());
    event.user_id = Some(actor.to_owned());
    event.target = target;
    event.reason = Some(reason);
    store
        .append_audit(&[(now, event.canonical_bytes())], true)
        .await
        .context("the audit trail could not be written")?;
    Ok(())
}

/// The checkpoints in the last 64 KiB of the witness file (a few hundred: the newest the
/// signer needs), so signing every minute does not parse a file that grows by a line a minute.
fn newest_witness_checkpoints(path: &Path) -> Result<Vec<Checkpoint>> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else { return Ok(Vec::new()) };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    // A tail that starts mid-file starts mid-line: that first part is not a whole line.
    let whole = if start > 0 { text.split_once('\n').map_or("", |(_, rest)| rest) } else { &text };
    phivault_audit::checkpoint::parse_witness(whole)
        .map_err(|line| anyhow::anyhow!("{}: a line near its end is not a checkpoint ({line})", path.display()))
}

/// Checkpoints in the witness file (the copy outside the database).
fn witness_checkpoints(path: &Path) -> Result<Vec<Checkpoint>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    phivault_audit::checkpoint::parse_witness(&text)
        .map_err(|line| anyhow::anyhow!("{} line {line} is not a checkpoint", path.display()))
}

fn read_public_key(path: &Path) -> Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the public key {}", path.display()))?;
    phivault_audit::checkpoint::parse_public_key(&text)
        .with_context(|| format!("{} is not a base64 Ed25519 public key", path.display()))
}

/// Checkpoints from the witness file and the database, without duplicates.
async fn all_checkpoints(store: &dyn AuditStore, config: &AuditConfig) -> Result<Vec<Checkpoint>> {
    let mut checkpoints = witness_checkpoints(&config.witness_file)?;
    for cp in store.checkpoints().await? {
        if !checkpoints.contains(&cp) {
            checkpoints.push(cp);
        }
    }
    Ok(checkpoints)
}

/// `key_file` is opened only by the actions that sign (the signing key is sealed under it).
pub async fn run(store: &dyn AuditStore, config: &AuditConfig, key_file: &Path, action: AuditAction) -> Result<()> {
    match action {
        AuditAction::Checkpoint => {
            let keys = crate::wiring::open_key_file(key_file)?;
            let (signer, _) = signer(config, keys.ring())?;
            let cp = checkpoint(store, &signer, &config.witness_file).await?;
            // Recorded after the signing, so the next checkpoint covers it.
            record_own(store, "cli.audit.checkpoint", None, format!("signed {} entries", cp.tree_size)).await?;
            println!("signed checkpoint: {} entries, root {}", cp.tree_size, cp.root);
            println!("appended to {}", config.witness_file.display());
        }
        AuditAction::Export { out, format, since, until } => {
            if format == ExportFormat::Verifier && (since.is_some() || until.is_some()) {
                bail!("--since and --until are for the jsonl and fhir formats: the verifier needs every entry");
            }
            let query = AuditQuery {
                since_ms: rfc3339_ms(since.as_deref(), "since")?,
                until_ms: rfc3339_ms(until.as_deref(), "until")?,
                ..Default::default()
            };
            let count = export(store, &out, format, &query).await?;
            println!("exported {count} entries to {}", out.display());
        }
        AuditAction::Ship { to, ca } => {
            let target = ShipTarget::parse(&to, ca.as_deref())?;
            let shipped = ship_new_entries(store, &target, &config.ship_cursor).await?;
            println!("shipped {shipped} entries to {target}");
        }
        AuditAction::Search { user, patient, action, outcome, since, until, limit } => {
            let (since, until) = (rfc3339_ms(since.as_deref(), "since")?, rfc3339_ms(until.as_deref(), "until")?);
            let outcome = match outcome.as_deref() {
                None => None,
                Some("success") => Some(phivault_audit::Outcome::Success),
                Some("denied") => Some(phivault_audit::Outcome::Denied),
                Some("failure") => Some(phivault_audit::Outcome::Failure),
                Some(_) => bail!("--outcome is success, denied or failure"),
            };
            let query = phivault_audit::AuditQuery {
                user_id: user,
                patient_id: patient,
                action,
                outcome,
                since_ms: since,
                until_ms: until,
            };
            let found = phivault_audit::search(store, &query, limit).await?;
            crate::listing::print_lines(found.iter().map(|(seq, event)| {
                format!("{{\"seq\":{seq},\"event\":{}}}", String::from_utf8_lossy(&event.canonical_bytes()))
            }))?;
            let found = found.len();
            eprintln!("{found} matching entries");
        }
        AuditAction::Prove { seq, public_key } => {
            let key = read_public_key(&public_key.unwrap_or_else(|| config.public_key.clone()))?;
            let checkpoints = all_checkpoints(store, config).await?;
            let Some(cp) = phivault_audit::checkpoint::signed_by(&checkpoints, &key)
                .filter(|c| c.tree_size > seq)
                .max_by_key(|c| c.tree_size)
            else {
                bail!("no validly signed checkpoint covers entry #{seq} yet; run `phivault audit checkpoint`");
            };
            let mut leaves = Vec::new();
            let mut entry = None;
            let mut from = 0;
            while (leaves.len() as u64) < cp.tree_size {
                let page = store.audit_entries(from, PAGE.min(cp.tree_size - from)).await?;
                let Some(last) = page.last() else { break };
                from = last.seq + 1;
                for e in page {
                    if e.seq == seq {
                        entry = Some((e.bytes.clone(), e.leaf));
                    }
                    leaves.push(e.leaf);
                }
            }
            let (Some((bytes, stored_leaf)), true) = (entry, leaves.len() as u64 == cp.tree_size) else {
                bail!("the trail no longer holds the {} entries the checkpoint signed", cp.tree_size);
            };
            // An archived entry's content is in its archive file: the stored leaf is what the
            // proof is for (`audit verify --archive` checks the content against it).
            let archived = bytes.is_empty();
            let leaf = if archived { stored_leaf } else { phivault_audit::merkle::leaf_hash(&bytes) };
            let proof = phivault_audit::merkle::inclusion_proof(seq as usize, &leaves);
            let root = phivault_audit::checkpoint::unhex(&cp.root).unwrap_or_default();
            let included = phivault_audit::merkle::verify_inclusion(seq, cp.tree_size, &leaf, &proof, &root);
            if archived {
                println!("entry #{seq}: (archived: its content is in an archive file; its stored leaf hash is proved)");
            } else {
                println!("entry #{seq}: {}", String::from_utf8_lossy(&bytes));
            }
            println!("leaf hash: {}", phivault_audit::checkpoint::hex(&leaf));
            println!("checkpoint: {} entries, root {}, signed {}", cp.tree_size, cp.root, cp.time_ms);
            for (i, h) in proof.iter().enumerate() {
                println!("proof[{i}]: {}", phivault_audit::checkpoint::hex(h));
            }
            if !included {
                bail!("entry #{seq} is NOT in the signed tree: the trail was changed");
            }
            println!("entry #{seq} is included in the signed tree");
        }
        AuditAction::Consistency { from, to, public_key, archive } => {
            let key = read_public_key(&public_key.unwrap_or_else(|| config.public_key.clone()))?;
            let signed = signed_checkpoints(all_checkpoints(store, config).await?, &key)?;
            let (old, new) = consistency_pair(&signed, from, to)?;
            let archived = super::archive::read_archives(&archive)?;
            consistency(store, (old, new), &signed, &key, archived).await?;
        }
        AuditAction::Archive { before, out } => {
            let before = rfc3339_ms(Some(&before), "before")?.context("--before is required")?;
            // The run signs its record with the checkpoint key (sealed under the key file).
            let keys = crate::wiring::open_key_file(key_file)?;
            let (signer, _) = signer(config, keys.ring())?;
            let checkpoints = all_checkpoints(store, config).await?;
            let moved = super::archive::archive(store, &checkpoints, &signer, before, &out).await?;
            println!("archived {moved} entries to {}; keep it with the witness file", out.display());
        }
        AuditAction::Verify { public_key, archive, allow_partial_witness } => {
            let pinned = public_key.is_some();
            let key = read_public_key(&public_key.unwrap_or_else(|| config.public_key.clone()))?;
            let checkpoints = all_checkpoints(store, config).await?;
            let mut entries = all_entries(store).await?;
            let filled =
                phivault_audit::export::fill_from_archive(&mut entries, super::archive::read_archives(&archive)?);
            let report = phivault_audit::verify(entries, &checkpoints, &key);
            println!("entries: {}", report.entries);
            if filled > 0 {
                println!("archived entries checked against the archive files: {filled}");
            }
            if report.archived > 0 {
                println!("archived entries not checked (pass their --archive files): {}", report.archived);
            }
            println!("checkpoints verified: {} of {}", report.checkpoints_verified, checkpoints.len());
            // The witness is the copy outside the database: one that lacks checkpoints the
            // database holds was rolled back, replaced or deleted.
            let witnessed = witness_checkpoints(&config.witness_file)?;
            let unwitnessed: Vec<&Checkpoint> =
                phivault_audit::checkpoint::signed_by(&checkpoints, &key).filter(|c| !witnessed.contains(c)).collect();
            let witness_problem = unwitnessed.iter().map(|c| c.tree_size).max().map(|newest| {
                format!(
                    "the witness file {} lacks {} signed checkpoints the database holds (the newest at size {newest}): \
                     it was rolled back, replaced or deleted; keep it append-only, off this host",
                    config.witness_file.display(),
                    unwitnessed.len()
                )
            });
            if let (Some(why), true) = (&witness_problem, allow_partial_witness) {
                println!("warning: {why}");
            }
            if report.checkpoints_other_keys > 0 {
                println!(
                    "checkpoints signed by other keys, not checked: {} (give every node the same audit signing key)",
                    report.checkpoints_other_keys
                );
            }
            println!("root: {}", report.root);
            if let Some((seq, why)) = report.first_problem {
                // A checkpoint's own fault (a bad signature, a fork) names no entry.
                if why.contains("invalid signature") || why.contains("a fork of the trail") {
                    bail!("the audit trail is NOT intact: {why}");
                }
                bail!("the audit trail is NOT intact: {why} (first bad entry #{seq})");
            }
            // The witness is the copy the database owner cannot rewrite: one that lost
            // checkpoints no longer shows what they would (a rewrite behind them).
            if let (Some(why), false) = (witness_problem, allow_partial_witness) {
                bail!("the audit trail is NOT intact: {why}");
            }
            // Fail closed: without a checkpoint that verifies, the entries are covered only
            // by the hash chain, which whoever controls the database can recompute.
            if report.entries > 0 && report.checkpoints_verified == 0 {
                eprintln!(
                    "the audit trail is NOT verified: no checkpoint verifies under this public key, so nothing \
                     binds its {} entries (the unsigned hash chain can be recomputed by whoever controls the \
                     database); run `phivault audit checkpoint` or start the server, which signs one at start",
                    report.entries
                );
                std::process::exit(NOT_VERIFIED_EXIT);
            }
            let newest =
                phivault_audit::checkpoint::signed_by(&checkpoints, &key).map(|c| c.tree_size).max().unwrap_or(0);
            if report.entries > newest {
                println!(
                    "entries after the newest verified checkpoint: {} (bound by the hash chain only until the next checkpoint)",
                    report.entries - newest
                );
            }
            if !pinned {
                println!(
                    "note: checked against the data dir's own public key; pass the auditor's pinned copy with \
                     --public-key for a verdict that holds against whoever controls the data dir"
                );
            }
            println!("the audit trail is intact");
        }
    }
    Ok(())
}

/// The trail as `audit verify` checks it (every entry; the witness's and the database's
/// checkpoints; the configured public key): for restores and drills.
pub(crate) async fn check_trail(store: &dyn AuditStore, config: &AuditConfig) -> Result<phivault_audit::Report> {
    let key = read_public_key(&config.public_key)?;
    let checkpoints = all_checkpoints(store, config).await?;
    let entries = all_entries(store).await?;
    Ok(phivault_audit::verify(entries, &checkpoints, &key))
}

/// `audit verify`'s exit code when nothing could be verified (no checkpoint verifies under
/// the key), as opposed to 1: verified and found altered.
pub const NOT_VERIFIED_EXIT: i32 = 3;

/// The checkpoints that verify under `key`, one per tree size, smallest first. Two validly
/// signed checkpoints of one size with different roots mean the key signed two histories:
/// no proof between them would mean anything, so that is an error of its own.
fn signed_checkpoints(checkpoints: Vec<Checkpoint>, key: &[u8]) -> Result<Vec<Checkpoint>> {
    let mut signed: Vec<Checkpoint> = phivault_audit::checkpoint::signed_by(&checkpoints, key).cloned().collect();
    signed.sort_by_key(|c| c.tree_size);
    signed.dedup_by(|later, earlier| later.tree_size == earlier.tree_size && later.root == earlier.root);
    if let Some(pair) = signed.windows(2).find(|w| w[0].tree_size == w[1].tree_size) {
        bail!(
            "two validly signed checkpoints of {} entries have different roots ({} and {}): the signing key signed two different trails",
            pair[0].tree_size,
            pair[0].root,
            pair[1].root
        );
    }
    Ok(signed)
}

/// The earlier and later checkpoint to prove consistent: those of the sizes given, else the
/// latest (below `to`, when only `to` is given) and the one before it.
fn consistency_pair(signed: &[Checkpoint], from: Option<u64>, to: Option<u64>) -> Result<(&Checkpoint, &Checkpoint)> {
    let of_size = |size: u64| {
        signed.iter().find(|c| c.tree_size == size).with_context(|| {
            let sizes: Vec<String> = signed.iter().map(|c| c.tree_size.to_string()).collect();
            format!("no validly signed checkpoint of {size} entries (signed sizes: {})", sizes.join(", "))
        })
    };
    let new = match to {
        Some(size) => of_size(size)?,
        None => signed.last().context("no validly signed checkpoint yet; run `phivault audit checkpoint`")?,
    };
    let old = match from {
        Some(size) => of_size(size)?,
        None => signed.iter().rev().find(|c| c.tree_size < new.tree_size).with_context(|| {
            format!("no validly signed checkpoint before the one of {} entries to compare it with", new.tree_size)
        })?,
    };
    if old.tree_size > new.tree_size {
        bail!("--from ({}) must not be larger than --to ({})", old.tree_size, new.tree_size);
    }
    Ok((old, new))
}

/// Builds the consistency proof between `old` and `new` from the entries as stored now and
/// checks it against both signed roots. The leaf hashes are recomputed from the entries,
/// not taken from the stored `leaf` column, so an entry rewritten without its hash shows too.
/// An archived entry (content moved out by `audit archive`, only ever a prefix) counts by its
/// stored hash unless `archived` gives its content back, as `audit verify` treats it.
async fn consistency(
    store: &dyn AuditStore,
    (old, new): (&Checkpoint, &Checkpoint),
    signed: &[Checkpoint],
    key: &[u8],
    archived: Vec<StoredEntry>,
) -> Result<()> {
    use phivault_audit::checkpoint::{hex, unhex};
    use phivault_audit::merkle;
    let mut entries = all_entries(store).await?;
    // Which archived entries the signed archive runs vouch for (their records may come after
    // the later checkpoint): the same rule as `audit verify`.
    let claims: Vec<_> = entries
        .iter()
        .filter(|e| !e.bytes.is_empty())
        .filter_map(|e| AuditEvent::from_canonical(&e.bytes).and_then(|v| archive_claim(&v, e.seq, key)))
        .collect();
    let vouched = vouched_end(&claims, |size, root| signed.iter().any(|c| c.tree_size == size && c.root == root));
    entries.truncate(new.tree_size as usize);
    let filled = phivault_audit::export::fill_from_archive(&mut entries, archived);
    let mut leaves = Vec::with_capacity(entries.len());
    let mut unseen = 0u64;
    for (expected, entry) in entries.iter().enumerate() {
        if entry.seq != expected as u64 {
            bail!("entry #{expected} is missing from the trail (found #{} in its place)", entry.seq);
        }
        // Content emptied where no signed archive run vouches for it was not archived: it
        // counts by the hash of nothing, which cannot be the signed one.
        leaves.push(if entry.bytes.is_empty() && entry.seq < vouched {
            unseen += 1;
            entry.leaf
        } else {
            merkle::leaf_hash(&entry.bytes)
        });
    }
    for (label, cp) in [("earlier", old), ("later", new)] {
        println!("{label} checkpoint: {} entries, root {}, signed {}", cp.tree_size, cp.root, cp.time_ms);
    }
    if leaves.len() as u64 != new.tree_size {
        bail!(
            "the trail holds {} entries, fewer than the {} the later checkpoint signed: it was truncated",
            leaves.len(),
            new.tree_size
        );
    }
    if filled > 0 {
        println!("archived entries checked against the archive files: {filled}");
    }
    if unseen > 0 {
        println!("archived entries counted by their stored hash (pass their --archive files to check them): {unseen}");
    }
    let proof = merkle::consistency_proof(old.tree_size as usize, &leaves);
    for (i, h) in proof.iter().enumerate() {
        println!("proof[{i}]: {}", hex(h));
    }
    let (Some(old_root), Some(new_root)) = (unhex(&old.root), unhex(&new.root)) else {
        bail!("a signed checkpoint's root is not 64 hex digits");
    };
    let extends = merkle::verify_consistency(old.tree_size, new.tree_size, &old_root, &new_root, &proof);
    // When the earlier size is a power of two the proof holds no hash of the earlier entries
    // (the signed root stands for them), so whether they are still the signed ones is
    // checked here, not left to the proof.
    let old_held = merkle::root(&leaves[..old.tree_size as usize]) == old_root;
    let new_held = merkle::root(&leaves) == new_root;
    if extends && old_held && new_held {
        println!(
            "the signed tree of {} entries extends the signed tree of {} entries (append-only; RFC 9162 consistency proof verified)",
            new.tree_size, old.tree_size
        );
        return Ok(());
    }
    let span = if old_held {
        format!("an entry from #{} to #{}", old.tree_size, new.tree_size.saturating_sub(1))
    } else {
        format!("an entry before #{}", old.tree_size)
    };
    if extends {
        bail!(
            "the signed trees are consistent, but the stored trail no longer holds the entries they signed: {span} was changed (run `phivault audit verify` to find it)"
        );
    }
    bail!(
        "the stored trail does NOT prove that the signed tree of {} entries extends the one of {}: {span} was changed (run `phivault audit verify` to find it)",
        new.tree_size,
        old.tree_size
    );
}

/// Records a command-line administration or key operation in the audit trail. The actor
/// is the operating-system account that ran it (`os:<login>`).
pub async fn record_cli(log: &phivault_audit::AuditLog, action: &str, target: Option<String>, ok: bool) -> Result<()> {
    record_cli_with_reason(log, action, target, ok, None).await
}

/// [`record_cli`] with a short PHI-free reason (counts, a code).
pub async fn record_cli_with_reason(
    log: &phivault_audit::AuditLog,
    action: &str,
    target: Option<String>,
    ok: bool,
    reason: Option<String>,
) -> Result<()> {
    let mut event = cli_event(log, action, target, ok)?;
    event.reason = reason;
    log.record(&event).await.map_err(|_| anyhow::anyhow!("the audit trail could not be written"))?;
    Ok(())
}

/// The entry for a command-line act, not yet written (for acts that commit their entry in
/// their own transaction).
pub fn cli_event(
    log: &phivault_audit::AuditLog,
    action: &str,
    target: Option<String>,
    ok: bool,
) -> Result<phivault_audit::AuditEvent> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let outcome = if ok { phivault_audit::Outcome::Success } else { phivault_audit::Outcome::Failure };
    let mut event = phivault_audit::AuditEvent::new(now, action, outcome, log.node());
    event.user_id = Some(crate::actor::os_actor());
    event.target = target.map(|t| phivault_audit::clip(&t, 128));
    Ok(event)
}

/// `--since`/`--until` as milliseconds since the epoch.
fn rfc3339_ms(text: Option<&str>, flag: &str) -> Result<Option<i64>> {
    text.map(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as i64)
            .with_context(|| format!("--{flag} must be an RFC 3339 time such as 2026-11-25T08:00:00Z"))
    })
    .transpose()
}

/// Every stored entry, in order (verification needs them all).
pub(crate) async fn all_entries(store: &dyn AuditStore) -> Result<Vec<StoredEntry>> {
    let mut entries = Vec::new();
    each_entry(store, |e| {
        entries.push(e.clone());
        Ok(())
    })
    .await?;
    Ok(entries)
}

/// Calls `each` for every stored entry, in order, a page at a time.
async fn each_entry(store: &dyn AuditStore, mut each: impl FnMut(&StoredEntry) -> Result<()>) -> Result<()> {
    let mut from = 0;
    loop {
        let page = store.audit_entries(from, PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        from = last.seq + 1;
        page.iter().try_for_each(&mut each)?;
    }
}

fn parse_entry(entry: &StoredEntry) -> Result<AuditEvent> {
    AuditEvent::from_canonical(&entry.bytes)
        .with_context(|| format!("entry #{} is not a valid audit entry; run `phivault audit verify`", entry.seq))
}

/// Writes the export next to `out` first and links it into place only when complete, so
/// an interrupted export leaves no half-written file under the name asked for, and an
/// existing file is never replaced (the link fails instead).
async fn export(store: &dyn AuditStore, out: &Path, format: ExportFormat, query: &AuditQuery) -> Result<u64> {
    if out.exists() {
        bail!("{} exists: refusing to overwrite it", out.display());
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // Entries name patients by id: owner-only, like the database.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&partial).with_context(|| {
        format!("cannot create {} (if an earlier export was interrupted, remove it)", partial.display())
    })?;
    let written = async {
        let count = write_export(store, std::io::BufWriter::new(file), format, query).await?;
        // A copy of the trail names patients and who saw them: a disclosure of its own. It is
        // recorded before the file appears under its name, so no copy exists unrecorded.
        let reason = format!("{count} entries, format {}", format.name());
        record_own(store, "cli.audit.export", None, reason).await.context("the export was not made")?;
        std::fs::hard_link(&partial, out).with_context(|| format!("cannot create {}", out.display()))?;
        Ok(count)
    }
    .await;
    let _ = std::fs::remove_file(&partial);
    written
}

async fn write_export(
    store: &dyn AuditStore,
    mut out: std::io::BufWriter<std::fs::File>,
    format: ExportFormat,
    query: &AuditQuery,
) -> Result<u64> {
    let mut count = 0u64;
    match format {
        ExportFormat::Verifier => {
            each_entry(store, |e| {
                count += 1;
                Ok(writeln!(out, "{}", phivault_audit::export::export_line(e))?)
            })
            .await?;
        }
        ExportFormat::Jsonl | ExportFormat::FhirNdjson => {
            each_entry(store, |e| {
                // An archived entry's content is in its archive file (the verifier format
                // keeps its hashes): there is nothing here to write.
                if e.bytes.is_empty() {
                    return Ok(());
                }
                let event = parse_entry(e)?;
                if !query.matches(&event) {
                    return Ok(());
                }
                count += 1;
                if format == ExportFormat::Jsonl {
                    let canonical = String::from_utf8_lossy(&e.bytes);
                    Ok(writeln!(out, "{{\"seq\":{},\"event\":{canonical}}}", e.seq)?)
                } else {
                    Ok(writeln!(out, "{}", phivault_audit::fhir::ndjson_line(e.seq, &event))?)
                }
            })
            .await?;
        }
        ExportFormat::FhirBundle => {
            let mut bundle = phivault_audit::fhir::BundleWriter::new(&mut out)?;
            each_entry(store, |e| {
                if e.bytes.is_empty() {
                    return Ok(());
                }
                let event = parse_entry(e)?;
                if query.matches(&event) {
                    bundle.push(e.seq, &event)?;
                }
                Ok(())
            })
            .await?;
            count = bundle.finish()?.1;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(count)
}

/// Entries per connection: each batch is confirmed (the collector closes after reading it)
/// before the cursor moves past it.
const SHIP_BATCH: u64 = 1000;

/// Ships every entry after the cursor in `cursor` (a file holding the next `seq` to send;
/// missing means from the start) to `target` as RFC 5424 syslog, batch by batch, and
/// returns how many were sent. The cursor is rewritten atomically after each batch the
/// collector took, so a crash or a lost connection repeats at most that one batch (the
/// `seq` parameter lets a SIEM drop the repeats) and never skips an entry. An entry that is
/// not valid stops shipping at that entry, loudly. Not meant to run twice at once on one
/// cursor.
pub async fn ship_new_entries(store: &dyn AuditStore, target: &ShipTarget, cursor: &Path) -> Result<u64> {
    let mut next = read_cursor(cursor)?;
    let mut shipped = 0;
    loop {
        let page = store.audit_entries(next, SHIP_BATCH).await?;
        let Some(last) = page.last().map(|e| e.seq) else { return Ok(shipped) };
        let mut bytes = Vec::new();
        // Archived entries were shipped when they were new (archive runs only on what a
        // checkpoint covers); their content is in the archive file, not here.
        for entry in page.iter().filter(|e| !e.bytes.is_empty()) {
            let message = phivault_audit::syslog::message(entry.seq, &parse_entry(entry)?);
            bytes.extend(phivault_audit::syslog::frame(&message));
        }
        phivault_audit::syslog::deliver(target, &bytes).await?;
        write_cursor(cursor, last + 1)?;
        shipped += page.len() as u64;
        next = last + 1;
    }
}

fn read_cursor(path: &Path) -> Result<u64> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read the shipping cursor {}", path.display())),
        Ok(text) => text.trim().parse().with_context(|| {
            format!("the shipping cursor {} is damaged: it should hold the next entry number", path.display())
        }),
    }
}

/// Replaces the cursor file atomically: a new file, flushed, renamed over the old one.
fn write_cursor(path: &Path, next: u64) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        writeln!(file, "{next}")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself is durable once the directory is.
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write the shipping cursor {}", path.display()))
}

#[cfg(test)]
mod witness_tail {
    use super::*;

    /// The signer reads only the witness file's tail: the newest checkpoint is found, an old
    /// damaged line far from the end does not stop signing, and not every line is parsed.
    #[test]
    fn the_newest_checkpoints_come_from_the_tail_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("witness.jsonl");
        let (signer, _) = CheckpointSigner::generate().expect("key");
        let root = Accumulator::default().root();
        let mut text = String::from("not a checkpoint\n");
        for size in 1..=2_000u64 {
            text.push_str(&serde_json::to_string(&signer.sign(size, &root, &root, 1)).expect("json"));
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write");
        let newest = newest_witness_checkpoints(&path).expect("tail");
        assert_eq!(newest.last().map(|c| c.tree_size), Some(2_000));
        assert!(newest.len() < 2_000 && newest.len() > 50, "{}", newest.len());
        assert!(witness_checkpoints(&path).is_err(), "the whole file, read by verify, still shows the bad line");
    }
}
