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
    if usage.pending_rewrap() == 0 {
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

/// Crypto-shreds one patient.
pub async fn shred_patient(services: &Services, patient_id: &str) -> Result<()> {
    services.keys.refresh()?;
    if services.records.shred_patient(patient_id).await? {
        println!(
            "destroyed the data key of Patient/{patient_id}: every version of every record in that compartment is now unrecoverable"
        );
    } else {
        println!("Patient/{patient_id} has no live data key (never stored, or already destroyed)");
    }
    Ok(())
}
