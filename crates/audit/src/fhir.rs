//! The trail as FHIR R4 `AuditEvent` resources, after IHE BALP and the DICOM audit
//! vocabulary, for SIEMs and record systems that read FHIR rather than phivault's own
//! entries. The mapping is pure and only restates what the entry holds: an absent field
//! stays absent, nothing is looked up or guessed.
//!
//! Safeguards: 45 CFR 164.312(b) audit controls; ONC 170.315(d)(2) auditable events,
//! (d)(3) audit reports.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::{AuditEvent, Outcome};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
/// phivault's own code systems: its action names, roles and purposes are not in any
/// standard vocabulary, so they are given under phivault's namespace rather than mislabeled.
const PHIVAULT_ACTION: &str = "https://phivault.dev/audit-action";
const PHIVAULT_ROLE: &str = "https://phivault.dev/role";
const PHIVAULT_PURPOSE: &str = "https://phivault.dev/purpose-of-use";
const PHIVAULT_USER: &str = "https://phivault.dev/user";
const PHIVAULT_CLIENT: &str = "https://phivault.dev/oauth-client";

/// The FHIR `id` of entry `seq`.
pub fn resource_id(seq: u64) -> String {
    format!("audit-{seq}")
}

/// Entry `seq` as a FHIR R4 `AuditEvent`.
pub fn audit_event(seq: u64, event: &AuditEvent) -> Value {
    let interaction = interaction(&event.action);
    let mut resource = Map::new();
    resource.insert("resourceType".into(), json!("AuditEvent"));
    resource.insert("id".into(), json!(resource_id(seq)));
    resource.insert("type".into(), event_type(&event.action, interaction.is_some()));
    let mut subtype = vec![json!({"system": PHIVAULT_ACTION, "code": event.action})];
    if let Some((code, _)) = interaction {
        subtype.push(json!({"system": RESTFUL_INTERACTION, "code": code}));
    }
    resource.insert("subtype".into(), Value::Array(subtype));
    let action = interaction.map(|(_, action)| action).or_else(|| is_authentication(&event.action).then_some("E"));
    if let Some(action) = action {
        resource.insert("action".into(), json!(action));
    }
    resource.insert("recorded".into(), json!(instant(event.time_ms)));
    let outcome = match event.outcome {
        Outcome::Success => "0",
        Outcome::Denied => "4",
        Outcome::Failure => "8",
    };
    resource.insert("outcome".into(), json!(outcome));
    if let Some(reason) = &event.reason {
        resource.insert("outcomeDesc".into(), json!(reason));
    }
    if let Some(purpose) = &event.purpose_of_use {
        resource.insert("purposeOfEvent".into(), json!([{"coding": [{"system": PHIVAULT_PURPOSE, "code": purpose}]}]));
    }
    resource.insert("agent".into(), Value::Array(agents(event)));
    let (host, _) = node_parts(&event.node);
    resource.insert(
        "source".into(),
        json!({
            "site": host,
            "observer": {"display": event.node},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        }),
    );
    let entities = entities(event);
    if !entities.is_empty() {
        resource.insert("entity".into(), Value::Array(entities));
    }
    Value::Object(resource)
}

/// The FHIR restful-interaction code and the AuditEvent action code (BALP: a search is
/// an Execute) for phivault's FHIR actions; `None` for everything else.
fn interaction(action: &str) -> Option<(&'static str, &'static str)> {
    Some(match action {
        "read" => ("read", "R"),
        "vread" => ("vread", "R"),
        "search" => ("search-type", "E"),
        "history" => ("history", "R"),
        "create" => ("create", "C"),
        "update" => ("update", "U"),
        "batch" => ("batch", "E"),
        _ => return None,
    })
}

fn is_authentication(action: &str) -> bool {
    action.starts_with("login") || action == "logout"
}

fn event_type(action: &str, is_record_access: bool) -> Value {
    let (code, display) = if is_record_access {
        ("110110", "Patient Record")
    } else if is_authentication(action) {
        ("110114", "User Authentication")
    } else {
        ("110100", "Application Activity")
    };
    json!({"system": DCM, "code": code, "display": display})
}

/// The requestor first (the user, else the OAuth client acting on its own, else an
/// unauthenticated caller known only by address), then the client a user acted through.
fn agents(event: &AuditEvent) -> Vec<Value> {
    let mut requestor = Map::new();
    let client_is_requestor = event.user_id.is_none() && event.client_id.is_some();
    if let Some(user) = &event.user_id {
        requestor.insert("who".into(), json!({"identifier": {"system": PHIVAULT_USER, "value": user}}));
    } else if let Some(client) = &event.client_id {
        requestor.insert("type".into(), application_type());
        requestor.insert("who".into(), json!({"identifier": {"system": PHIVAULT_CLIENT, "value": client}}));
    }
    requestor.insert("requestor".into(), json!(true));
    if !event.roles.is_empty() {
        let roles: Vec<Value> =
            event.roles.iter().map(|r| json!({"coding": [{"system": PHIVAULT_ROLE, "code": r}]})).collect();
        requestor.insert("role".into(), Value::Array(roles));
    }
    if !event.policies.is_empty() {
        let policies: Vec<String> = event.policies.iter().map(|p| format!("urn:phivault:policy:{p}")).collect();
        requestor.insert("policy".into(), json!(policies));
    }
    if let Some(ip) = &event.source_ip {
        // Network access point type 2: IP address.
        requestor.insert("network".into(), json!({"address": ip, "type": "2"}));
    }
    let mut agents = vec![Value::Object(requestor)];
    if let (Some(client), false) = (&event.client_id, client_is_requestor) {
        agents.push(json!({
            "type": application_type(),
            "who": {"identifier": {"system": PHIVAULT_CLIENT, "value": client}},
            "requestor": false,
        }));
    }
    agents
}

fn application_type() -> Value {
    json!({"coding": [{"system": DCM, "code": "110150", "display": "Application"}]})
}

fn entities(event: &AuditEvent) -> Vec<Value> {
    let mut entities: Vec<Value> = event
        .patient_ids
        .iter()
        .map(|id| {
            json!({
                "what": {"reference": format!("Patient/{id}")},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            })
        })
        .collect();
    entities.extend(event.resource_ids.iter().map(|id| {
        json!({
            "what": {"reference": id},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        })
    }));
    let details: Vec<Value> = [
        ("resource_type", &event.resource_type),
        ("request_id", &event.request_id),
        ("grant_id", &event.grant_id),
        ("target", &event.target),
        ("user_agent", &event.user_agent),
    ]
    .into_iter()
    .filter_map(|(kind, value)| value.as_ref().map(|v| json!({"type": kind, "valueString": v})))
    .collect();
    if !details.is_empty() {
        entities.push(json!({"detail": details}));
    }
    entities
}

/// The host and process id parts of a node name (`host/pid`); the pid is `None` when
/// the name has no `/`.
pub(crate) fn node_parts(node: &str) -> (&str, Option<&str>) {
    match node.rsplit_once('/') {
        Some((host, pid)) => (host, Some(pid)),
        None => (node, None),
    }
}

/// `time_ms` as an RFC 3339 UTC instant with milliseconds (`2027-01-15T08:30:00.123Z`),
/// which is both a FHIR `instant` and an RFC 5424 timestamp.
pub(crate) fn instant(time_ms: i64) -> String {
    let days = time_ms.div_euclid(86_400_000);
    let in_day = time_ms.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-compatible low-level
    // date algorithms"): exact for every i64 day count we can meet, no calendar crate.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// One NDJSON line (without the newline): the `AuditEvent` of entry `seq`, compact.
pub fn ndjson_line(seq: u64, event: &AuditEvent) -> String {
    audit_event(seq, event).to_string()
}

/// Writes a FHIR `Bundle` of type `collection` entry by entry, so a long trail never has
/// to be held in memory. Call [`BundleWriter::finish`]: without it the JSON is unclosed.
#[derive(Debug)]
pub struct BundleWriter<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> BundleWriter<W> {
    /// Starts the bundle.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[")?;
        Ok(Self { out, count: 0 })
    }

    /// Adds entry `seq`, with `fullUrl` `AuditEvent/audit-<seq>`.
    pub fn push(&mut self, seq: u64, event: &AuditEvent) -> io::Result<()> {
        if self.count > 0 {
            self.out.write_all(b",\n")?;
        }
        let entry = json!({"fullUrl": format!("AuditEvent/{}", resource_id(seq)), "resource": audit_event(seq, event)});
        serde_json::to_writer(&mut self.out, &entry)?;
        self.count += 1;
        Ok(())
    }

    /// Closes the bundle; returns the writer and the number of entries written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.out.write_all(b"]}\n")?;
        self.out.flush()?;
        Ok((self.out, self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AuditEvent {
        let mut e = AuditEvent::new(1_800_000_000_123, "read", Outcome::Success, "vault-a/4242");
        e.reason = Some("200".into());
        e.user_id = Some("user-daffy".into());
        e.roles = vec!["physician".into(), "nurse".into()];
        e.client_id = Some("client-looney".into());
        e.source_ip = Some("192.0.2.7".into());
        e.user_agent = Some("Mozilla/5.0".into());
        e.resource_type = Some("Observation".into());
        e.resource_ids = vec!["Observation/o1".into()];
        e.patient_ids = vec!["p-daffy".into()];
        e.target = Some("user:porky".into());
        e.purpose_of_use = Some("treatment".into());
        e.policies = vec!["care-team-read".into()];
        e.grant_id = Some("grant-9".into());
        e.request_id = Some("req-1".into());
        e
    }

    #[test]
    fn a_full_read_maps_every_field() {
        let r = audit_event(17, &full());
        assert_eq!(r["resourceType"], "AuditEvent");
        assert_eq!(r["id"], "audit-17");
        assert_eq!(r["type"], json!({"system": DCM, "code": "110110", "display": "Patient Record"}));
        assert_eq!(
            r["subtype"],
            json!([{"system": PHIVAULT_ACTION, "code": "read"}, {"system": RESTFUL_INTERACTION, "code": "read"}])
        );
        assert_eq!(r["action"], "R");
        assert_eq!(r["recorded"], "2027-01-15T08:00:00.123Z");
        assert_eq!((&r["outcome"], &r["outcomeDesc"]), (&json!("0"), &json!("200")));
        assert_eq!(r["purposeOfEvent"][0]["coding"][0]["code"], "treatment");
        let user = &r["agent"][0];
        assert_eq!(user["who"]["identifier"]["value"], "user-daffy");
        assert_eq!(user["requestor"], true);
        assert_eq!(user["role"][1], json!({"coding": [{"system": PHIVAULT_ROLE, "code": "nurse"}]}));
        assert_eq!(user["network"], json!({"address": "192.0.2.7", "type": "2"}));
        assert_eq!(user["policy"], json!(["urn:phivault:policy:care-team-read"]));
        let client = &r["agent"][1];
        assert_eq!(
            (&client["who"]["identifier"]["value"], &client["requestor"]),
            (&json!("client-looney"), &json!(false))
        );
        assert_eq!(r["source"]["observer"]["display"], "vault-a/4242");
        assert_eq!(r["source"]["site"], "vault-a");
        let entity = r["entity"].as_array().expect("entities");
        assert_eq!(entity.len(), 3);
        assert_eq!(entity[0]["what"]["reference"], "Patient/p-daffy");
        assert_eq!((&entity[0]["type"]["code"], &entity[0]["role"]["code"]), (&json!("1"), &json!("1")));
        assert_eq!(entity[1]["what"]["reference"], "Observation/o1");
        assert_eq!(entity[1]["type"]["code"], "2");
        let details: Vec<(&str, &str)> = entity[2]["detail"]
            .as_array()
            .expect("details")
            .iter()
            .map(|d| (d["type"].as_str().expect("type"), d["valueString"].as_str().expect("value")))
            .collect();
        assert_eq!(
            details,
            [
                ("resource_type", "Observation"),
                ("request_id", "req-1"),
                ("grant_id", "grant-9"),
                ("target", "user:porky"),
                ("user_agent", "Mozilla/5.0")
            ]
        );
    }

    #[test]
    fn a_denied_event_is_a_minor_failure_and_nothing_is_invented() {
        let mut e = AuditEvent::new(0, "search", Outcome::Denied, "vault-a");
        e.reason = Some("403".into());
        let r = audit_event(0, &e);
        assert_eq!(r["outcome"], "4");
        assert_eq!(r["outcomeDesc"], "403");
        assert_eq!(r["subtype"][1]["code"], "search-type");
        assert_eq!(r["action"], "E");
        assert_eq!(r["recorded"], "1970-01-01T00:00:00.000Z");
        let keys: Vec<&str> = r.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "resourceType",
                "id",
                "type",
                "subtype",
                "action",
                "recorded",
                "outcome",
                "outcomeDesc",
                "agent",
                "source"
            ],
            "no purpose, no entity when the entry has none"
        );
        assert_eq!(r["agent"], json!([{"requestor": true}]), "an anonymous caller is not given an identity");
        assert_eq!(r["source"]["site"], "vault-a");
        let text = r.to_string();
        for absent in ["Patient/", "network", "policy", "role", "purposeOfEvent", "detail"] {
            assert!(!text.contains(absent), "{absent} invented: {text}");
        }
    }

    #[test]
    fn types_and_actions_follow_the_kind_of_event() {
        let kind = |action: &str, outcome| {
            let r = audit_event(1, &AuditEvent::new(1, action, outcome, "n/1"));
            (r["type"]["code"].as_str().map(str::to_owned), r.get("action").cloned(), r["outcome"].clone())
        };
        assert_eq!(kind("login.password", Outcome::Failure), (Some("110114".into()), Some(json!("E")), json!("8")));
        assert_eq!(kind("logout", Outcome::Success).0.as_deref(), Some("110114"));
        assert_eq!(kind("create", Outcome::Success), (Some("110110".into()), Some(json!("C")), json!("0")));
        assert_eq!(kind("update", Outcome::Success).1, Some(json!("U")));
        let admin = kind("admin.user.deactivate", Outcome::Success);
        assert_eq!((admin.0.as_deref(), admin.1), (Some("110100"), None), "no action code is guessed for admin work");
        let r = audit_event(1, &AuditEvent::new(1, "cli.user.add", Outcome::Success, "n/1"));
        assert_eq!(r["subtype"].as_array().map(Vec::len), Some(1), "no FHIR interaction for CLI work");
    }

    #[test]
    fn a_client_acting_alone_is_the_requestor() {
        let mut e = AuditEvent::new(1, "search", Outcome::Success, "n/1");
        e.client_id = Some("backend-looney".into());
        let r = audit_event(1, &e);
        let agents = r["agent"].as_array().expect("agents");
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0]["who"]["identifier"]["value"], "backend-looney");
        assert_eq!(agents[0]["type"]["coding"][0]["code"], "110150");
        assert_eq!(agents[0]["requestor"], true);
    }

    #[test]
    fn instants_are_utc_with_milliseconds() {
        assert_eq!(instant(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(instant(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(instant(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn bundles_and_ndjson_parse_back() {
        let mut writer = BundleWriter::new(Vec::new()).expect("start");
        writer.push(3, &full()).expect("push");
        writer.push(4, &AuditEvent::new(2, "logout", Outcome::Success, "n/1")).expect("push");
        let (bytes, count) = writer.finish().expect("finish");
        assert_eq!(count, 2);
        let bundle: Value = serde_json::from_slice(&bytes).expect("bundle is JSON");
        assert_eq!((&bundle["resourceType"], &bundle["type"]), (&json!("Bundle"), &json!("collection")));
        assert_eq!(bundle["entry"][1]["fullUrl"], "AuditEvent/audit-4");
        assert_eq!(bundle["entry"][0]["resource"], audit_event(3, &full()));
        let empty = BundleWriter::new(Vec::new()).and_then(BundleWriter::finish).expect("empty");
        assert_eq!(serde_json::from_slice::<Value>(&empty.0).expect("json")["entry"], json!([]));
        let line = ndjson_line(3, &full());
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Value>(&line).expect("line"), audit_event(3, &full()));
    }
}
