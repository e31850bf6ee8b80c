//! Activity review: the entries that match a query (user, patient, action, outcome, time),
//! oldest first. One definition serves `phivault audit search`, the privacy officer's API
//! and a patient's accounting of who accessed their record. It reads the trail in pages,
//! by patient through the store's index of the patients each entry names.
//!
//! Safeguards: 45 CFR 164.308(a)(1)(ii)(D) information system activity review; 164.528
//! accounting of disclosures; ONC 170.315(d)(3) audit reports.

use crate::{AuditEvent, AuditStore, Outcome};
use phivault_ports::StoreError;

/// Entries read from the store per round trip.
const PAGE: u64 = 10_000;

/// What to look for; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub patient_id: Option<String>,
    /// An exact action, or a prefix ending in `.` or `*` (`break_glass.`, `login*`).
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

impl AuditQuery {
    /// Whether `event` matches every given condition.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let action_matches = |wanted: &String| match wanted.strip_suffix('*') {
            Some(prefix) => event.action.starts_with(prefix),
            None if wanted.ends_with('.') => event.action.starts_with(wanted.as_str()),
            None => &event.action == wanted,
        };
        self.user_id.as_ref().is_none_or(|u| event.user_id.as_ref() == Some(u))
            && self.patient_id.as_ref().is_none_or(|p| event.patient_ids.contains(p))
            && self.action.as_ref().is_none_or(action_matches)
            && self.outcome.is_none_or(|o| event.outcome == o)
            && self.since_ms.is_none_or(|s| event.time_ms >= s)
            && self.until_ms.is_none_or(|u| event.time_ms < u)
    }
}

/// Up to `limit` matching entries with their sequence numbers, oldest first.
pub async fn search(
    store: &dyn AuditStore,
    query: &AuditQuery,
    limit: usize,
) -> Result<Vec<(u64, AuditEvent)>, StoreError> {
    let mut found = Vec::new();
    let mut from = 0;
    loop {
        // By patient: through the store's index when it has one (a patient's accounting
        // reads that patient's entries, not the whole trail).
        let indexed = match &query.patient_id {
            Some(patient) => store.patient_entries(patient, from, PAGE).await?,
            None => None,
        };
        let page = match indexed {
            Some(page) => page,
            None => store.audit_entries(from, PAGE).await?,
        };
        let Some(last) = page.last() else { return Ok(found) };
        from = last.seq + 1;
        for entry in &page {
            let Some(event) = AuditEvent::from_canonical(&entry.bytes) else { continue };
            if query.matches(&event) {
                found.push((entry.seq, event));
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_match_every_given_condition() {
        let mut e = AuditEvent::new(1_000, "break_glass.request", Outcome::Success, "n");
        e.user_id = Some("u1".into());
        e.patient_ids = vec!["p1".into()];
        let q = |f: &dyn Fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            q.matches(&e)
        };
        assert!(q(&|_| {}));
        assert!(q(&|q| q.action = Some("break_glass.".into())));
        assert!(q(&|q| q.action = Some("break_glass*".into())));
        assert!(!q(&|q| q.action = Some("break_glass".into())), "exact unless a prefix is asked for");
        assert!(q(&|q| q.patient_id = Some("p1".into())));
        assert!(!q(&|q| q.patient_id = Some("p2".into())));
        assert!(!q(&|q| q.user_id = Some("u2".into())));
        assert!(!q(&|q| q.outcome = Some(Outcome::Denied)));
        assert!(q(&|q| q.since_ms = Some(1_000)) && !q(&|q| q.until_ms = Some(1_000)));
    }
}
