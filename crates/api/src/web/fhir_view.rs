//! Reading FHIR resources for people: the words a clinician reads (a code's display text,
//! a name, a dose with its unit, a date) from the JSON, never the JSON itself. Every
//! function returns plain text; the page escapes it.

use serde_json::Value;

/// A CodeableConcept's words: its text, else the first coding's display, else its code.
pub fn concept(value: Option<&Value>) -> String {
    let Some(value) = value else { return String::new() };
    if let Some(text) = value.get("text").and_then(Value::as_str) {
        return text.to_owned();
    }
    let codings = value.get("coding").and_then(Value::as_array);
    codings
        .and_then(|c| {
            c.iter()
                .find_map(|c| c.get("display").and_then(Value::as_str))
                .or_else(|| c.iter().find_map(|c| c.get("code").and_then(Value::as_str)))
        })
        .unwrap_or_default()
        .to_owned()
}

/// `text`, or `otherwise` when it is blank: what a page shows for a nameless entry.
pub fn non_empty(text: String, otherwise: &str) -> String {
    if text.trim().is_empty() { otherwise.to_owned() } else { text }
}

/// Role names as people say them (`front_desk` → front desk).
pub fn role_words(roles: &[String]) -> String {
    let words: Vec<String> = roles
        .iter()
        .map(|r| match r.as_str() {
            "admin" => "administrator".to_owned(),
            other => other.replace('_', " "),
        })
        .collect();
    words.join(", ")
}

/// The first coding's code in `system` (a LOINC code for an Observation).
pub fn code_in(value: Option<&Value>, system: &str) -> Option<String> {
    value?
        .get("coding")?
        .as_array()?
        .iter()
        .find(|c| c.get("system").and_then(Value::as_str) == Some(system))
        .and_then(|c| c.get("code").and_then(Value::as_str))
        .map(str::to_owned)
}

/// A person's name as usually written: the official (or first) name's given names and
/// family name, or its text.
pub fn person_name(resource: &Value) -> String {
    let Some(names) = resource.get("name").and_then(Value::as_array) else { return String::new() };
    let name =
        names.iter().find(|n| n.get("use").and_then(Value::as_str) == Some("official")).or_else(|| names.first());
    let Some(name) = name else { return String::new() };
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return text.to_owned();
    }
    let given: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let family = name.get("family").and_then(Value::as_str).unwrap_or("");
    let mut out = given.join(" ");
    if !family.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(family);
    }
    out
}

/// The family name, for sorting a list of patients.
pub fn family_name(resource: &Value) -> String {
    resource.pointer("/name/0/family").and_then(Value::as_str).unwrap_or("").to_lowercase()
}

/// The medical record number: the identifier typed `MR`, else one whose system names an
/// MRN.
pub fn mrn(patient: &Value) -> Option<String> {
    let identifiers = patient.get("identifier")?.as_array()?;
    identifiers
        .iter()
        .find(|i| code_in(i.get("type"), "http://terminology.hl7.org/CodeSystem/v2-0203").as_deref() == Some("MR"))
        .or_else(|| {
            identifiers.iter().find(|i| {
                i.get("system").and_then(Value::as_str).is_some_and(|s| s.to_ascii_lowercase().contains("mrn"))
            })
        })
        .and_then(|i| i.get("value").and_then(Value::as_str))
        .map(str::to_owned)
}

/// The date part (`YYYY-MM-DD`) of the first of `fields` present: a dateTime, a Period's
/// start, or a plain date.
pub fn date_of(resource: &Value, fields: &[&str]) -> String {
    for field in fields {
        let Some(value) = resource.get(*field) else { continue };
        let text = match value {
            Value::String(s) => Some(s.as_str()),
            Value::Object(_) => value.get("start").and_then(Value::as_str),
            _ => None,
        };
        if let Some(text) = text {
            return text.chars().take(10).collect();
        }
    }
    String::new()
}

/// A Quantity as read aloud: `120 mmHg`.
pub fn quantity(value: Option<&Value>) -> Option<(f64, String)> {
    let value = value?;
    let number = value.get("value")?.as_f64()?;
    let unit = value.get("unit").or_else(|| value.get("code")).and_then(Value::as_str).unwrap_or("");
    Some((number, unit.to_owned()))
}

/// A number without a trailing `.0`, as people write it.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{n:.0}") } else { format!("{}", (n * 100.0).round() / 100.0) }
}

/// An Observation's value as text: a quantity with its unit, a blood pressure's two
/// components, a concept or a string.
pub fn observation_value(observation: &Value) -> String {
    if let Some((n, unit)) = quantity(observation.get("valueQuantity")) {
        return format!("{} {unit}", number(n)).trim().to_owned();
    }
    if let Some(components) = observation.get("component").and_then(Value::as_array) {
        let parts: Vec<String> =
            components.iter().filter_map(|c| quantity(c.get("valueQuantity")).map(|(n, _)| number(n))).collect();
        if !parts.is_empty() {
            let unit = components.first().and_then(|c| quantity(c.get("valueQuantity"))).map(|q| q.1);
            return format!("{} {}", parts.join("/"), unit.unwrap_or_default()).trim().to_owned();
        }
    }
    if let Some(v) = observation.get("valueCodeableConcept") {
        return concept(Some(v));
    }
    observation.get("valueString").and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Whether an Observation is in `category` (`vital-signs`, `laboratory`).
pub fn in_category(observation: &Value, category: &str) -> bool {
    observation
        .get("category")
        .and_then(Value::as_array)
        .is_some_and(|cats| cats.iter().any(|c| code_in(Some(c), OBSERVATION_CATEGORY).as_deref() == Some(category)))
}

pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const LOINC: &str = "http://loinc.org";

/// A note's text: its first plain-text attachment, decoded (Base64), at most `max` chars.
pub fn note_text(document: &Value, max: usize) -> Option<String> {
    use base64::Engine as _;
    let contents = document.get("content")?.as_array()?;
    contents.iter().find_map(|c| {
        let attachment = c.get("attachment")?;
        let plain = attachment.get("contentType").and_then(Value::as_str).is_some_and(|t| t.starts_with("text/plain"));
        let data = attachment.get("data").and_then(Value::as_str)?;
        if !plain {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        Some(text.chars().take(max).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_a_clinician_reads() {
        let daffy = json!({"name": [{"use": "nickname", "given": ["Duckie"]}, {"use": "official", "family": "Duck", "given": ["Daffy", "D."]}],
            "identifier": [{"system": "urn:other", "value": "x"}, {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "value": "123456789"}]});
        assert_eq!(person_name(&daffy), "Daffy D. Duck");
        assert_eq!(mrn(&daffy).as_deref(), Some("123456789"));
        let bp = json!({"component": [{"valueQuantity": {"value": 120.0, "unit": "mm[Hg]"}}, {"valueQuantity": {"value": 80, "unit": "mm[Hg]"}}]});
        assert_eq!(observation_value(&bp), "120/80 mm[Hg]");
        assert_eq!(observation_value(&json!({"valueQuantity": {"value": 36.65, "unit": "Cel"}})), "36.65 Cel");
        assert_eq!(concept(Some(&json!({"coding": [{"code": "x"}, {"display": "Peanut allergy"}]}))), "Peanut allergy");
        assert_eq!(
            date_of(&json!({"period": {"start": "2026-11-02T10:00:00Z"}}), &["onsetDateTime", "period"]),
            "2026-11-02"
        );
        let note =
            json!({"content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": "UXVhY2s="}}]});
        assert_eq!(note_text(&note, 100).as_deref(), Some("Quack"));
    }
}
