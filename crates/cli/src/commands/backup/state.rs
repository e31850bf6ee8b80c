//! What this installation remembers of its backups: the newest one made into each
//! repository, so that a repository rolled back to an older backup (the newest manifest
//! deleted) is noticed. A copy of the same facts is in the audit trail.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    repositories: BTreeMap<String, Newest>,
    /// The drills per repository.
    #[serde(default)]
    drills: BTreeMap<String, Drills>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Drills {
    last: Option<Drill>,
    last_passed_ms: Option<i64>,
}

/// A drill's outcome, for the schedule and its alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drill {
    pub time_ms: i64,
    pub passed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Newest {
    seq: u64,
    digest: String,
    created_ms: i64,
}

fn key(repo: &Path) -> String {
    std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_owned()).display().to_string()
}

fn read(state_file: &Path) -> Result<State> {
    match std::fs::read_to_string(state_file) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("{} is not a backup state file", state_file.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", state_file.display())),
    }
}

/// The newest backup recorded for `repo`: `(seq, manifest digest)`.
pub fn newest(state_file: &Path, repo: &Path) -> Result<Option<(u64, String)>> {
    Ok(read(state_file)?.repositories.remove(&key(repo)).map(|n| (n.seq, n.digest)))
}

/// When the newest backup recorded for `repo` was taken.
pub fn newest_time(state_file: &Path, repo: &Path) -> Result<Option<i64>> {
    Ok(read(state_file)?.repositories.remove(&key(repo)).map(|n| n.created_ms))
}

/// The last drill recorded for `repo`, and the last one that passed.
pub fn drills(state_file: &Path, repo: &Path) -> Result<(Option<Drill>, Option<i64>)> {
    let drills = read(state_file)?.drills.remove(&key(repo)).unwrap_or_default();
    Ok((drills.last, drills.last_passed_ms))
}

pub fn record_drill(state_file: &Path, repo: &Path, drill: Drill) -> Result<()> {
    let mut state = read(state_file)?;
    let drills = state.drills.entry(key(repo)).or_default();
    if drill.passed {
        drills.last_passed_ms = Some(drill.time_ms);
    }
    drills.last = Some(drill);
    write(state_file, &state)
}

pub fn record(state_file: &Path, repo: &Path, signed: &phivault_backup::SignedManifest) -> Result<()> {
    let mut state = read(state_file)?;
    state.repositories.insert(
        key(repo),
        Newest { seq: signed.manifest.seq, digest: signed.digest.clone(), created_ms: signed.manifest.created_ms },
    );
    write(state_file, &state)
}

fn write(state_file: &Path, state: &State) -> Result<()> {
    let text = serde_json::to_string_pretty(state)?;
    if let Some(parent) = state_file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A name of its own per writer (a console backup and the server's drill may race),
    // synced before it replaces the old state.
    let temp = state_file.with_extension(format!("json.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, state_file)
    };
    write().with_context(|| format!("cannot write {}", state_file.display()))
}

/// Who holds a repository's lock, for the message another writer sees.
pub fn lock_holder(what: &str) -> String {
    format!(
        "{what} by process {} on {} since {}",
        std::process::id(),
        crate::wiring::node_name().split('/').next().unwrap_or("localhost"),
        super::format_ms(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
        )
    )
}
