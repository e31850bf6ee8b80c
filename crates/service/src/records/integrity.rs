//! The integrity scan: every stored version is opened and checked against the row it sits
//! in. AES-GCM authenticates each body and binds it to its type, id and version; the scan
//! adds what the cipher cannot see: that the version chain is whole (1..n, exactly one
//! current, the newest), and that the row's compartment and data key, which access
//! decisions rely on, agree with what the sealed body says.
//!
//! Safeguards: 45 CFR 164.312(c)(1)-(2) integrity and a mechanism to authenticate ePHI.

use std::fmt;

use phivault_fhir::{format_instant, patient_compartment};
use serde_json::Value;

use super::Records;
use super::codec::{KeyCache, key_scope};
use crate::{RecordError, ScannedVersion, VersionKey};

/// Versions read per round trip.
const PAGE: u64 = 1000;

/// What is wrong with a stored version (or a resource's chain of versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// The body failed authentication (changed, moved to another row, or damaged), or
    /// decrypted to something that is not a resource.
    Tampered,
    /// The wrapped data key failed authentication.
    KeyTampered,
    /// The data key is wrapped under a KEK the key ring does not hold (or cannot use).
    KeyUnusable,
    /// The sealed body names another type, id, version or update time than its row.
    MetaMismatch,
    /// The row's compartment or data key scope is not the one the body implies: access
    /// decisions would be made for the wrong patient.
    Misfiled,
    /// Versions are missing or duplicated (not 1, 2, ..., n).
    VersionGap,
    /// Not exactly one current version, or the current one is not the newest.
    CurrentFlag,
}

impl ProblemKind {
    /// A short PHI-free code, for audit entries and alerts.
    pub fn code(self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::KeyTampered => "key-tampered",
            Self::KeyUnusable => "key-unusable",
            Self::MetaMismatch => "meta-mismatch",
            Self::Misfiled => "misfiled",
            Self::VersionGap => "version-gap",
            Self::CurrentFlag => "current-flag",
        }
    }
}

/// One finding: which record, which version (0 for the chain as a whole), and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityProblem {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub kind: ProblemKind,
}

impl fmt::Display for IntegrityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version > 0 {
            write!(f, "{}/{}/_history/{}: {}", self.resource_type, self.id, self.version, self.kind.code())
        } else {
            write!(f, "{}/{}: {}", self.resource_type, self.id, self.kind.code())
        }
    }
}

/// What a scan found. Ids only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    pub resources: u64,
    pub versions: u64,
    /// Versions whose data key was destroyed on purpose (erasure): not readable, not a fault.
    pub shredded: u64,
    pub problems: Vec<IntegrityProblem>,
}

impl IntegrityReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The distinct records with a problem, as `Type/id`.
    pub fn affected(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.problems.iter().map(|p| format!("{}/{}", p.resource_type, p.id)).collect();
        ids.dedup();
        ids
    }
}

impl Records {
    /// Walks every stored version and checks it; `progress` is told how many versions are
    /// done after each page. Only storage failures end the scan early: every integrity
    /// finding is collected in the report.
    pub async fn integrity_scan(&self, progress: &mut (dyn FnMut(u64) + Send)) -> Result<IntegrityReport, RecordError> {
        let mut report = IntegrityReport::default();
        let mut cache = KeyCache::default();
        let mut after: Option<VersionKey> = None;
        // The versions of the resource being walked (rows arrive ordered by type, id, version).
        let mut chain: Vec<(i64, bool)> = Vec::new();
        loop {
            let page = self.store.scan_versions(after.as_ref(), PAGE).await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let same = after
                    .as_ref()
                    .is_some_and(|a| a.resource_type == row.stored.resource_type && a.id == row.stored.id);
                if !same {
                    if let Some(prev) = &after {
                        check_chain(prev, &chain, &mut report);
                    }
                    chain.clear();
                    report.resources += 1;
                }
                chain.push((row.stored.version, row.is_current));
                self.check_version(&mut cache, row, &mut report);
                report.versions += 1;
                after = Some(VersionKey {
                    resource_type: row.stored.resource_type.clone(),
                    id: row.stored.id.clone(),
                    version: row.stored.version,
                });
            }
            progress(report.versions);
            // Keys are cached per page only, so memory stays flat on any size of store.
            cache = KeyCache::default();
        }
        if let Some(prev) = &after {
            check_chain(prev, &chain, &mut report);
        }
        Ok(report)
    }

    fn check_version(&self, cache: &mut KeyCache, row: &ScannedVersion, report: &mut IntegrityReport) {
        let stored = &row.stored;
        let problem = |kind| IntegrityProblem {
            resource_type: stored.resource_type.clone(),
            id: stored.id.clone(),
            version: stored.version,
            kind,
        };
        if stored.key.wrapped.is_none() {
            report.shredded += 1;
            return;
        }
        let body = match self.open_version(cache, stored) {
            Ok(body) => body,
            Err(RecordError::Integrity { version: 0, .. }) => {
                return report.problems.push(problem(ProblemKind::KeyTampered));
            }
            Err(RecordError::Keys(_)) => return report.problems.push(problem(ProblemKind::KeyUnusable)),
            Err(_) => return report.problems.push(problem(ProblemKind::Tampered)),
        };
        if !meta_agrees(&body, row) {
            report.problems.push(problem(ProblemKind::MetaMismatch));
        }
        let compartment = patient_compartment(&stored.resource_type, &stored.id, &body);
        let scope = key_scope(&stored.resource_type, compartment.as_deref());
        if compartment != row.compartment || scope != stored.key.scope {
            report.problems.push(problem(ProblemKind::Misfiled));
        }
    }
}

/// The body's own type, id, version and update time match its row.
fn meta_agrees(body: &Value, row: &ScannedVersion) -> bool {
    let stored = &row.stored;
    body["resourceType"].as_str() == Some(stored.resource_type.as_str())
        && body["id"].as_str() == Some(stored.id.as_str())
        && body["meta"]["versionId"].as_str() == Some(stored.version.to_string().as_str())
        && body["meta"]["lastUpdated"].as_str() == Some(format_instant(stored.last_updated_ms).as_str())
}

/// A resource's versions, in order, must be 1..n with exactly the last one current.
fn check_chain(key: &VersionKey, chain: &[(i64, bool)], report: &mut IntegrityReport) {
    let problem =
        |kind| IntegrityProblem { resource_type: key.resource_type.clone(), id: key.id.clone(), version: 0, kind };
    if chain.iter().enumerate().any(|(i, (v, _))| *v != i as i64 + 1) {
        report.problems.push(problem(ProblemKind::VersionGap));
    }
    let current: Vec<usize> = chain.iter().enumerate().filter(|(_, (_, c))| *c).map(|(i, _)| i).collect();
    if current != [chain.len().saturating_sub(1)] {
        report.problems.push(problem(ProblemKind::CurrentFlag));
    }
}
