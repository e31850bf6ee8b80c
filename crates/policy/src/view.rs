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

/// One masked field: `Type.field`, `*.field`, or `Type.field[system=URI]` (only the
/// elements of a list whose `system` is `URI`).
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

    /// Removes the field from `body`; returns whether anything was there to remove.
    fn apply(&self, body: &mut serde_json::Map<String, Value>) -> bool {
        match &self.system {
            None => body.remove(&self.field).is_some(),
            Some(system) => {
                let Some(Value::Array(items)) = body.get_mut(&self.field) else { return false };
                let before = items.len();
                items.retain(|item| item.get("system").and_then(Value::as_str) != Some(system.as_str()));
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
                Some(system) => {
                    let matches = |item: &Value| item.get("system").and_then(Value::as_str) == Some(system.as_str());
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
