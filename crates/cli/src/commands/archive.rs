//! `phivault audit archive`: moves the content of the oldest entries into an archive file
//! (the verifier's export format), keeping their leaf and chain hashes in the database, so
//! the online trail stays verifiable and the archive can be checked against it at any time.
//! Nothing is ever deleted through the API; archive files are the organization's to keep
//! (45 CFR 164.316(b)(2): six years from creation).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use phivault_audit::archive::ArchiveStatement;
use phivault_audit::{AuditEvent, AuditStore, Checkpoint, CheckpointSigner, Outcome, StoredEntry};

/// Reads archive files (verifier export lines); names the file and line of a bad one.
pub fn read_archives(paths: &[PathBuf]) -> Result<Vec<StoredEntry>> {
    let mut out = Vec::new();
    for path in paths {
        let file = std::fs::File::open(path).with_context(|| format!("cannot read the archive {}", path.display()))?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read the archive {}", path.display()))?;
            let entry = phivault_audit::export::parse_line(&line)
                .with_context(|| format!("{} line {} is not an archived entry", path.display(), i + 1))?;
            out.push(entry);
        }
    }
    Ok(out)
}

/// Archives the entries written before `before_ms` that a validly signed checkpoint already
/// covers, after checking the whole trail; returns how many. The run's record carries a
/// statement signed by `signer` (the checkpoint key): without one, the verifier treats the
/// missing content as removed by someone else.
pub async fn archive(
    store: &dyn AuditStore,
    checkpoints: &[Checkpoint],
    signer: &CheckpointSigner,
    before_ms: i64,
    out: &Path,
) -> Result<u64> {
    let public_key = &signer.public_key()[..];
    let entries = super::audit::all_entries(store).await?;
    let report = phivault_audit::verify(entries.iter().cloned(), checkpoints, public_key);
    if let Some((seq, why)) = report.first_problem {
        bail!("refusing to archive a trail that is not intact: {why} (first bad entry #{seq})");
    }
    // Only what a signed checkpoint anchors, so the archive can always be proven against it.
    let Some(anchor) = phivault_audit::checkpoint::signed_by(checkpoints, public_key).max_by_key(|c| c.tree_size)
    else {
        bail!("nothing to archive: no checkpoint is signed yet (run `phivault audit checkpoint` first)");
    };
    let signed = anchor.tree_size;
    let end = entries
        .iter()
        .take_while(|e| e.seq < signed)
        .take_while(|e| {
            e.bytes.is_empty() || AuditEvent::from_canonical(&e.bytes).is_some_and(|v| v.time_ms < before_ms)
        })
        .count() as u64;
    let already = entries.iter().take_while(|e| e.bytes.is_empty()).count() as u64;
    if end <= already {
        bail!(
            "nothing to archive: no unarchived entry before that time is covered by a signed checkpoint \
             (run `phivault audit checkpoint` first)"
        );
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(out).with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    for entry in &entries[already as usize..end as usize] {
        writeln!(writer, "{}", phivault_audit::export::export_line(entry))?;
    }
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    // The archive must hold exactly what is removed: read it back before removing anything.
    let written = read_archives(&[out.to_path_buf()])?;
    let mut check = entries.clone();
    for entry in &mut check[already as usize..end as usize] {
        entry.bytes.clear();
    }
    let filled = phivault_audit::export::fill_from_archive(&mut check, written);
    if filled != end - already || !phivault_audit::verify(check, checkpoints, public_key).is_intact() {
        bail!("the archive {} does not read back intact; nothing was removed", out.display());
    }
    // The record first: an archive run must never happen without its entry (if the
    // removal then fails, the trail names a run whose entries still hold their content).
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let mut event = AuditEvent::new(now, "audit.archive", Outcome::Success, &crate::wiring::node_name());
    event.user_id = Some(crate::actor::os_actor());
    let statement = ArchiveStatement { first: already, last: end - 1, size: signed, root: anchor.root.clone() };
    event.reason = Some(statement.reason(signer));
    store.append_audit(&[(now, event.canonical_bytes())], true).await?;
    store.archive_prefix(end).await?;
    Ok(end - already)
}
