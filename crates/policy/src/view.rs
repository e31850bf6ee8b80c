//! Minimum-necessary views: named field masks that a permit policy attaches to the access
//! it grants (`@view("front_desk")`). The server removes the masked fields before a
//! resource leaves it, in reads, searches, histories and bundles alike, and labels what it
//! masked with the `REDACTED` security label.
//!
//! Safeguard: 45 CFR 164.502(b) and 164.514(d) minimum necessary.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::PolicyError;

/// The `meta.security` coding added to a resource with masked fields.
pub const REDACTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
/// Its code.
pub const REDACTED_CODE: &str = "REDACTED";

/// The spellings of the US Social Security number's identifier system: HL7's URI and its
/// OID (compared after [`normalise_system`]).
const SSN_SYSTEMS: [&str; 2] = ["http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1"];

/// A system URI as compared: trimmed, lower case, without a trailing slash.
pub fn normalise_system(system: &str) -> String {
    system.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether `system` names the US SSN, however it is spelled.
pub fn is_ssn_system(system: &str) -> bool {
    SSN_SYSTEMS.contains(&normalise_system(system).as_str())
}

/// Whether an identifier (or any element with `system` and `type`) holds an SSN by what it
/// means: a known SSN system in any spelling, or identifier type `SS` (HL7 v2 table 0203:
/// Social Security number) under any system, or a type text that says so.
fn means_ssn(item: &Value) -> bool {
    if item.get("system").and_then(Value::as_str).is_some_and(is_ssn_system) {
        return true;
    }
    let Some(kind) = item.get("type") else { return false };
    let coded_ss = kind.get("coding").and_then(Value::as_array).is_some_and(|codes| {
        codes
            .iter()
            .any(|c| c.get("code").and_then(Value::as_str).is_some_and(|code| code.trim().eq_ignore_ascii_case("SS")))
    });
    let text_says = kind.get("text").and_then(Value::as_str).is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("social security") || t.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "ssn")
    });
    coded_ss || text_says
}

/// One masked field: `Type.field`, `*.field`, or `Type.field[system=URI]` (only the
/// elements of a list whose `system` is `URI`, compared case-insensitively and without a
/// trailing slash; for the SSN's system, every element that *means* an SSN, whatever
/// system string or identifier type spells it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Removal {
    /// `None` for every type (`*`).
    pub resource_type: Option<String>,
    pub field: String,
    pub system: Option<String>,
}

impl Removal {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::Config(format!("`{text}` is not a field such as Patient.identifier or *.text"));
        let (path, system) = match text.split_once('[') {
            Some((path, rest)) => {
                let inner = rest.strip_suffix(']').ok_or_else(bad)?;
                let system = inner.strip_prefix("system=").ok_or_else(bad)?;
                if system.is_empty() {
                    return Err(bad());
                }
                (path, Some(system.to_owned()))
            }
            None => (text, None),
        };
        let (resource_type, field) = path.split_once('.').ok_or_else(bad)?;
        let is_name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_name(field) || !(resource_type == "*" || is_name(resource_type)) {
            return Err(bad());
        }
        if matches!(field, "resourceType" | "id" | "meta") {
            return Err(PolicyError::Config(format!("`{text}`: resourceType, id and meta cannot be masked")));
        }
        Ok(Self {
            resource_type: (resource_type != "*").then(|| resource_type.to_owned()),
            field: field.to_owned(),
            system,
        })
    }

    fn applies_to(&self, resource_type: &str) -> bool {
        self.resource_type.as_deref().is_none_or(|t| t == resource_type)
    }

    /// Whether this removal takes `item`, an element of its (list) field.
    fn selects(&self, item: &Value) -> bool {
        let Some(system) = &self.system else { return true };
        if is_ssn_system(system) {
            return means_ssn(item);
        }
        item.get("system").and_then(Value::as_str).is_some_and(|s| normalise_system(s) == normalise_system(system))
    }

    /// Whether a search on `field` of `resource_type` for a token with `system` (`None`: a
    /// value under any system) could match what this removal hides: a role must not search
    /// by what it may not see, or a match would confirm the hidden value.
    pub fn hides_search(&self, resource_type: &str, field: &str, system: Option<&str>) -> bool {
        if !self.applies_to(resource_type) || self.field != field {
            return false;
        }
        match (&self.system, system) {
            (None, _) | (Some(_), None) => true,
            (Some(hidden), Some(asked)) if is_ssn_system(hidden) => is_ssn_system(asked),
            (Some(hidden), Some(asked)) => normalise_system(hidden) == normalise_system(asked),
        }
    }

    /// Removes the field from `body`; returns whether anything was there to remove.
    fn apply(&self, body: &mut serde_json::Map<String, Value>) -> bool {
        match &self.system {
            None => body.remove(&self.field).is_some(),
            Some(_) => {
                let Some(Value::Array(items)) = body.get_mut(&self.field) else { return false };
                let before = items.len();
                items.retain(|item| !self.selects(item));
                let removed = items.len() != before;
                if items.is_empty() {
                    body.remove(&self.field);
                }
                removed
            }
        }
    }
}

impl std::fmt::Display for Removal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.resource_type.as_deref().unwrap_or("*"), self.field)?;
        if let Some(system) = &self.system {
            write!(f, "[system={system}]")?;
        }
        Ok(())
    }
}

/// A field mask. The empty mask shows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMask {
    /// The view names it came from (for the explanation), sorted.
    pub views: Vec<String>,
    pub removals: Vec<Removal>,
}

impl FieldMask {
    /// Whether the mask removes nothing.
    pub fn is_empty(&self) -> bool {
        self.removals.is_empty()
    }

    /// What two permits grant together: a field stays masked only if both mask it.
    pub fn intersect(&self, other: &FieldMask) -> FieldMask {
        let removals: Vec<Removal> = self.removals.iter().filter(|r| other.removals.contains(r)).cloned().collect();
        let mut views: Vec<String> = self.views.iter().chain(&other.views).cloned().collect();
        views.sort();
        views.dedup();
        FieldMask { views: if removals.is_empty() { Vec::new() } else { views }, removals }
    }

    /// Removes the masked fields of a `resource_type` resource in place and, if anything
    /// was removed, adds the REDACTED security label. Contained resources are masked too.
    /// Returns whether anything was removed.
    pub fn apply(&self, resource_type: &str, resource: &mut Value) -> bool {
        let Value::Object(body) = resource else { return false };
        let mut removed = false;
        for removal in self.removals.iter().filter(|r| r.applies_to(resource_type)) {
            removed |= removal.apply(body);
        }
        if let Some(Value::Array(contained)) = body.get_mut("contained") {
            for inner in contained.iter_mut() {
                let inner_type = inner.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
                removed |= self.apply(&inner_type, inner);
            }
        }
        if removed {
            label_redacted(body);
        }
        removed
    }
}

impl FieldMask {
    /// Puts back into `new` (an update from a caller under this mask) the masked fields of
    /// `current` (the stored version), and drops any the caller tried to set: a caller
    /// cannot see them, so cannot knowingly change them, and a masked read followed by an
    /// update must lose nothing. Top-level fields only (views mask `*.contained` whole).
    pub fn restore(&self, resource_type: &str, new: &mut Value, current: &Value) {
        let (Value::Object(new), Value::Object(current)) = (new, current) else { return };
        for removal in self.removals.iter().filter(|r| r.applies_to(resource_type)) {
            let field = removal.field.as_str();
            match &removal.system {
                None => match current.get(field) {
                    Some(value) => {
                        new.insert(field.to_owned(), value.clone());
                    }
                    None => {
                        new.remove(field);
                    }
                },
                Some(_) => {
                    let matches = |item: &Value| removal.selects(item);
                    let kept: Vec<Value> = current
                        .get(field)
                        .and_then(Value::as_array)
                        .map(|items| items.iter().filter(|i| matches(i)).cloned().collect())
                        .unwrap_or_default();
                    let mut items = match new.remove(field) {
                        Some(Value::Array(items)) => items,
                        _ => Vec::new(),
                    };
                    items.retain(|i| !matches(i));
                    items.extend(kept);
                    if !items.is_empty() {
                        new.insert(field.to_owned(), Value::Array(items));
                    }
                }
            }
        }
    }
}

fn label_redacted(body: &mut serde_json::Map<String, Value>) {
    let meta = body.entry("meta").or_insert_with(|| json!({}));
    let Value::Object(meta) = meta else { return };
    let security = meta.entry("security").or_insert_with(|| json!([]));
    let Value::Array(security) = security else { return };
    let present = security.iter().any(|c| c.get("code").and_then(Value::as_str) == Some(REDACTED_CODE));
    if !present {
        security.push(json!({"system": REDACTED_SYSTEM, "code": REDACTED_CODE, "display": "redacted"}));
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewFile {
    about: String,
    remove: Vec<String>,
}

/// The named views of a policy set, read from `views.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Views {
    views: BTreeMap<String, (String, FieldMask)>,
}

impl Views {
    /// Parses `views.toml`: one table per view with `about` and `remove`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let files: BTreeMap<String, ViewFile> =
            toml::from_str(text).map_err(|e| PolicyError::Config(format!("views.toml: {}", e.message())))?;
        let mut views = BTreeMap::new();
        for (name, file) in files {
            let mut removals = file.remove.iter().map(|r| Removal::parse(r)).collect::<Result<Vec<_>, _>>()?;
            removals.sort();
            removals.dedup();
            views.insert(name.clone(), (file.about, FieldMask { views: vec![name], removals }));
        }
        Ok(Self { views })
    }

    /// The mask of a named view.
    pub fn get(&self, name: &str) -> Option<&FieldMask> {
        self.views.get(name).map(|(_, mask)| mask)
    }

    /// Every view: name, description, mask.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &FieldMask)> {
        self.views.iter().map(|(name, (about, mask))| (name.as_str(), about.as_str(), mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";

    fn mask(removals: &[&str]) -> FieldMask {
        FieldMask {
            views: vec!["v".into()],
            removals: removals.iter().map(|r| Removal::parse(r).expect("removal")).collect(),
        }
    }

    #[test]
    fn masks_fields_and_labels_the_result() {
        let mut daffy = json!({
            "resourceType": "Patient", "id": "p1",
            "name": [{"family": "Duck", "given": ["Daffy"]}],
            "identifier": [{"system": SSN, "value": "999-00-1234"}, {"system": "urn:mrn", "value": "123456789"}],
            "text": {"status": "generated", "div": "<div>Daffy Duck</div>"},
            "contained": [{"resourceType": "Observation", "note": [{"text": "quacks"}]}]
        });
        let m = mask(&[&format!("Patient.identifier[system={SSN}]"), "*.text", "*.note"]);
        assert!(m.apply("Patient", &mut daffy));
        let text = daffy.to_string();
        assert!(!text.contains("999-00-1234") && !text.contains("<div>") && !text.contains("quacks"), "{text}");
        assert!(text.contains("123456789"), "other identifiers stay");
        assert_eq!(daffy["meta"]["security"][0]["code"], REDACTED_CODE);
        // Nothing to remove: no label.
        let mut plain = json!({"resourceType": "Patient", "id": "p2"});
        assert!(!m.apply("Patient", &mut plain));
        assert!(plain.get("meta").is_none());
    }

    #[test]
    fn an_update_under_a_mask_keeps_the_hidden_fields() {
        let m = mask(&[&format!("Patient.identifier[system={SSN}]"), "*.text"]);
        let stored = json!({
            "resourceType": "Patient", "id": "p1",
            "identifier": [{"system": SSN, "value": "999-00-1234"}, {"system": "urn:mrn", "value": "123456789"}],
            "text": {"status": "generated", "div": "<div>x</div>"}
        });
        let mut shown = stored.clone();
        m.apply("Patient", &mut shown);
        // The caller edits what they saw, and tries to plant an SSN of their own.
        let mut update = shown.clone();
        update["identifier"].as_array_mut().expect("list").push(json!({"system": SSN, "value": "000-00-0000"}));
        m.restore("Patient", &mut update, &stored);
        let text = update.to_string();
        assert!(text.contains("999-00-1234") && !text.contains("000-00-0000"), "{text}");
        assert!(text.contains("123456789") && text.contains("<div>x</div>"));
    }

    /// The review found the front desk's mask matched one exact system string: SSNs under
    /// HL7's OID, under type `SS` with another system, or spelled in another case or with a
    /// trailing slash were shown. Every spelling is masked now, and nothing else is.
    #[test]
    fn the_ssn_mask_holds_for_every_spelling() {
        let m = mask(&[&format!("Patient.identifier[system={SSN}]")]);
        let spellings = [
            json!({"system": SSN, "value": "999-00-0001"}),
            json!({"system": "urn:oid:2.16.840.1.113883.4.1", "value": "999-00-0002"}),
            json!({"system": "HTTP://HL7.ORG/FHIR/SID/US-SSN/", "value": "999-00-0003"}),
            json!({"system": " http://hl7.org/fhir/sid/us-ssn ", "value": "999-00-0004"}),
            json!({"system": "urn:example:local", "value": "999-00-0005",
                   "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]}}),
            json!({"value": "999-00-0006", "type": {"coding": [{"code": "ss"}]}}),
            json!({"value": "999-00-0007", "type": {"text": "Social Security Number"}}),
            json!({"value": "999-00-0008", "type": {"text": "SSN"}}),
        ];
        let mut items: Vec<Value> = spellings.to_vec();
        items.push(json!({"system": "urn:mrn", "value": "123456789", "type": {"coding": [{"code": "MR"}]}}));
        items.push(json!({"system": "urn:example:passport", "value": "P-1", "type": {"text": "passport"}}));
        let mut daffy = json!({"resourceType": "Patient", "id": "p1", "identifier": items});
        assert!(m.apply("Patient", &mut daffy));
        let text = daffy.to_string();
        for n in 1..=8 {
            assert!(!text.contains(&format!("999-00-000{n}")), "spelling {n} shown: {text}");
        }
        assert!(text.contains("123456789") && text.contains("P-1"), "other identifiers stay: {text}");
        // Searching by it is refused in any spelling, and so is a value under any system.
        let removal = &m.removals[0];
        assert!(removal.hides_search("Patient", "identifier", Some("urn:oid:2.16.840.1.113883.4.1")));
        assert!(removal.hides_search("Patient", "identifier", Some("http://hl7.org/fhir/sid/us-ssn/")));
        assert!(removal.hides_search("Patient", "identifier", None));
        assert!(!removal.hides_search("Patient", "identifier", Some("urn:mrn")));
        assert!(!removal.hides_search("Patient", "name", None));
    }

    #[test]
    fn a_field_stays_masked_only_when_every_permit_masks_it() {
        let a = mask(&["*.text", "Patient.photo"]);
        let b = mask(&["*.text"]);
        assert_eq!(a.intersect(&b).removals, b.removals);
        assert!(a.intersect(&FieldMask::default()).is_empty());
    }

    #[test]
    fn bad_view_definitions_are_refused() {
        for bad in ["Patient", "Patient.", "Patient.id", "*.meta", "Pa tient.name", "Patient.identifier[sys=x]"] {
            assert!(Removal::parse(bad).is_err(), "{bad}");
        }
        assert!(Views::parse("[v]\nabout = 'x'\nremove = ['Patient.photo']\nextra = 1").is_err());
        let views = Views::parse("[v]\nabout = 'x'\nremove = ['Patient.photo', '*.text']").expect("views");
        assert_eq!(views.get("v").map(|m| m.removals.len()), Some(2));
    }
}
