//! `phivault keys`: status, rotation, retirement of old KEKs, crypto-shredding.

use std::time::Duration;

use anyhow::{Result, bail};
use phivault_service::KeySource;
use phivault_service::keys::{key_usage, rewrap_all};

use crate::progress;
use crate::wiring::Services;

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn age(secs: i64) -> String {
    let days = secs / 86_400;
    if days > 0 { format!("{days} d") } else { format!("{} h", secs / 3600) }
}

/// Prints KEK ids, ages and how many data keys each wraps.
pub async fn status(services: &Services) -> Result<()> {
    let usage = key_usage(&services.store, services.keys.as_ref()).await?;
    let file = services.keys.keks()?;
    println!("{:<28} {:>8} {:>10} state", "KEK", "age", "data keys");
    for kek in file {
        let count = usage.data_keys_per_kek.iter().find(|(k, _)| *k == kek.id).map_or(0, |(_, n)| *n);
        let state = if kek.is_current {
            "current".to_owned()
        } else if let Some(at) = kek.retired_unix {
            format!("retired {} ago", age(now_secs() - at))
        } else {
            "rotation pending".to_owned()
        };
        println!("{:<28} {:>8} {:>10} {}", kek.id, age(now_secs() - kek.created_unix), count, state);
    }
    if usage.pending_rewrap() > 0 {
        println!(
            "{} data keys still wrapped under an older KEK: run `phivault keys rotate` to finish",
            usage.pending_rewrap()
        );
    }
    Ok(())
}

/// Starts (or resumes) a rotation: new KEK, re-wrap every data key, retire the old KEK.
pub async fn rotate(services: &Services) -> Result<()> {
    let usage = key_usage(&services.store, services.keys.as_ref()).await?;
    // A non-current KEK that is not retired means an earlier rotation stopped after creating
    // its KEK (possibly before any data key moved): finish that one rather than start anew.
    let unfinished = services.keys.keks()?.iter().any(|k| !k.is_current && k.retired_unix.is_none());
    if usage.pending_rewrap() == 0 && !unfinished {
        let new = services.keys.add_current_kek(now_secs())?;
        println!("new key-encryption key {new} is current");
    } else {
        println!("resuming the rotation to {}", usage.current_kek);
    }
    let total = key_usage(&services.store, services.keys.as_ref()).await?.pending_rewrap();
    let bar = progress::bar(total, "re-wrapping");
    let mut done = rewrap_all(&services.store, services.keys.as_ref(), &mut |n| bar.set_position(n)).await?;
    // Servers re-read the key file within a second; a server that wrapped a new data key
    // under the old KEK just before noticing is caught by a second pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    done += rewrap_all(&services.store, services.keys.as_ref(), &mut |n| bar.set_position(total.min(n))).await?;
    bar.finish_and_clear();
    let retired = services.keys.retire_old_keks(now_secs())?;
    println!(
        "re-wrapped {done} data keys; retired {}",
        if retired.is_empty() { "nothing".to_owned() } else { retired.join(", ") }
    );
    println!(
        "retired KEKs stay in the key file until `phivault keys destroy-retired`, so backups taken before the rotation still open"
    );
    Ok(())
}

/// Deletes retired KEKs older than `min_age_days` when no data key depends on them.
pub async fn destroy_retired(services: &Services, min_age_days: i64) -> Result<()> {
    let usage = key_usage(&services.store, services.keys.as_ref()).await?;
    if usage.pending_rewrap() > 0 {
        bail!("{} data keys still depend on an old KEK; finish `phivault keys rotate` first", usage.pending_rewrap());
    }
    let destroyed = services.keys.destroy_retired_keks(now_secs(), min_age_days * 86_400)?;
    println!("destroyed {} retired KEK(s)", destroyed.len());
    Ok(())
}

/// Crypto-shreds one patient, recording it (`cli.keys.shred_patient`) in the same
/// transaction as the key's destruction.
pub async fn shred_patient(services: &Services, patient_id: &str) -> Result<()> {
    services.keys.refresh()?;
    let mut event = super::audit::cli_event(
        &services.audit,
        "cli.keys.shred_patient",
        Some(format!("Patient/{patient_id}")),
        true,
    )?;
    event.patient_ids.push(phivault_audit::clip(patient_id, 64));
    let entry = phivault_service::PendingEntry { time_ms: event.time_ms, canonical: event.canonical_bytes() };
    let destroyed = services.records.shred_patient(patient_id, Some(&entry)).await?;
    if services.audit.settle().await.is_err() {
        eprintln!(
            "warning: the shredding is recorded, but the audit trail could not chain the entry yet; the next start does"
        );
    }
    if destroyed {
        println!(
            "destroyed the data key of Patient/{patient_id}: every version of every record in that compartment is now unrecoverable"
        );
    } else {
        println!("Patient/{patient_id} has no live data key (never stored, or already destroyed)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::init::{InitOptions, init};
    use crate::config::Config;

    #[tokio::test]
    async fn a_rotation_interrupted_before_moving_any_key_is_finished_not_restarted() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("data");
        init(&InitOptions { data_dir: dir.clone(), insecure_dev_keys: true, database: None, hsm: None })
            .await
            .expect("init");
        let services = crate::wiring::open(&Config::load(&dir).expect("config")).await.expect("open");
        // The crash point: the new KEK is in the key file, no data key has moved (none exist).
        let started = services.keys.add_current_kek(now_secs()).expect("new KEK");

        rotate(&services).await.expect("rotate");
        let keks = services.keys.keks().expect("keks");
        assert_eq!(keks.len(), 2, "no third KEK: {keks:?}");
        let current = keks.iter().find(|k| k.is_current).expect("current");
        assert_eq!(current.id, started, "the interrupted rotation's KEK became current");
        assert!(keks.iter().filter(|k| !k.is_current).all(|k| k.retired_unix.is_some()), "old KEK retired");
    }
}
