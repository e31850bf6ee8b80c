//! One audit entry, after ASTM E2147 and IHE BALP: who did what to which records, when,
//! from where, and with what outcome. Ids only: PHI values never enter the trail.

use serde::{Deserialize, Serialize};

/// The outcome of the audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Refused by authentication or access policy.
    Denied,
    /// Attempted and failed (bad input, conflict, server error).
    Failure,
}

/// An audit entry. The serialized field order is fixed (struct order), so the JSON bytes
/// are canonical: they are what is hashed into the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// UTC, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What was done: `read`, `vread`, `search`, `history`, `create`, `update`, `batch`,
    /// `login`, `logout`, `user.deactivate`, ... (see docs/AUDIT.md).
    pub action: String,
    pub outcome: Outcome,
    /// HTTP status or another short, PHI-free reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Resource type of the request, e.g. `Patient` (for type-level actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Resources touched, as `Type/id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
    /// Patients whose records were touched (Patient ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patient_ids: Vec<String>,
    /// The account or client an administrative action was applied to (`user:<id>`,
    /// `client:<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose_of_use: Option<String>,
    /// The access policies that determined the decision (their `@id`s), or
    /// `default-deny` when nothing permitted it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The sign-in or OAuth grant the request ran under (never the token itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The server process that wrote the entry.
    pub node: String,
}

impl AuditEvent {
    /// A new event at `time_ms` with everything else empty.
    pub fn new(time_ms: i64, action: &str, outcome: Outcome, node: &str) -> Self {
        Self {
            time_ms,
            action: action.to_owned(),
            outcome,
            reason: None,
            user_id: None,
            roles: Vec::new(),
            client_id: None,
            source_ip: None,
            user_agent: None,
            resource_type: None,
            resource_ids: Vec::new(),
            patient_ids: Vec::new(),
            target: None,
            purpose_of_use: None,
            policies: Vec::new(),
            grant_id: None,
            request_id: None,
            node: node.to_owned(),
        }
    }

    /// The canonical bytes that are hashed and stored.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing a plain struct of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses stored bytes, refusing anything that is not exactly canonical.
    pub fn from_canonical(bytes: &[u8]) -> Option<Self> {
        let event: AuditEvent = serde_json::from_slice(bytes).ok()?;
        (event.canonical_bytes() == bytes).then_some(event)
    }
}

/// Shortens free client text (a user agent) so that it cannot carry much, and strips
/// control characters.
pub fn clip(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_round_trip_and_reject_variants() {
        let mut e = AuditEvent::new(1_800_000_000_123, "read", Outcome::Success, "node-a");
        e.user_id = Some("user-1".into());
        e.resource_ids = vec!["Patient/p1".into()];
        let bytes = e.canonical_bytes();
        assert_eq!(AuditEvent::from_canonical(&bytes), Some(e.clone()));
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.starts_with("{\"time_ms\":1800000000123,\"action\":\"read\",\"outcome\":\"success\""), "{text}");
        let spaced = text.replace(',', ", ");
        assert_eq!(AuditEvent::from_canonical(spaced.as_bytes()), None, "non-canonical bytes are refused");
        assert_eq!(AuditEvent::from_canonical(b"{\"time_ms\":1}"), None);
        assert_eq!(clip("Mozilla\n\u{7}/5.0", 5), "Mozil");
    }
}
