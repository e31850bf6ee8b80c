//! The generic walk over a resource. Rules are keyed on element names and
//! on FHIR datatype shapes (a `HumanName` has `family` or `given`, an
//! `Attachment` has `contentType` or `data`, a date has the date shape),
//! not on resource types, so an identifier is caught wherever the resource
//! model (or an extension, or a contained resource) puts it.

use serde_json::{Map, Value};

use super::address;
use super::dates::{self, FhirDate};
use super::profile::{DateRule, IdentifierRule};
use super::shapes::{cap_age, is_address, is_contact_point, is_years, looks_like_url_or_ip, patient_id};
use super::text::{self, Known};
use super::{Deidentifier, MAX_DEPTH};

/// The walk's own recursion bound. Input depth is checked before the walk
/// (without recursion); the walk takes up to three frames per JSON level,
/// so this only backs that check up.
const WALK_LIMIT: usize = 3 * MAX_DEPTH + 8;
use crate::DeidError;

/// Elements removed wherever they occur, whatever their content:
/// telecom (items (D)–(F)), photos (Q), device identifiers and serial
/// numbers (M), lot numbers, geocodes (B), free-text authors (A),
/// insurance member ids (I), signatures, and the transaction plumbing of
/// bundles that repeats identifiers and server URLs.
const DROP: &[&str] = &[
    "telecom",
    "photo",
    "udiCarrier",
    "serialNumber",
    "lotNumber",
    "distinctIdentifier",
    "position",
    "authorString",
    "subscriberId",
    "signature",
    "response",
    "ifNoneExist",
    "ifMatch",
    "ifNoneMatch",
    "ifModifiedSince",
];

/// String elements that hold codes, code systems or canonical URLs:
/// vocabulary, not facts about a person, and mangled by the scrubber
/// (a 9-digit SNOMED code looks like a record number).
const VERBATIM: &[&str] = &[
    "resourceType",
    "status",
    "code",
    "system",
    "version",
    "unit",
    "use",
    "gender",
    "language",
    "contentType",
    "intent",
    "priority",
    "mode",
    "method",
    "comparator",
    "currency",
    "kind",
    "profile",
    "valueCode",
    "relation",
    "fhirVersion",
    "type",
    "display",
    "linkId",
    "instantiatesCanonical",
    "valueSet",
    "targetProfile",
    "questionnaire",
    "severity",
    "criticality",
    "category",
];

/// Resources whose `name` is a person's name (elsewhere it can be a
/// string naming an organisation, a location or a group).
pub(crate) const PERSONS: &[&str] = &["Patient", "Practitioner", "RelatedPerson", "Person"];

/// The state of one resource's walk.
pub(crate) struct Walk<'a> {
    pub(crate) d: &'a Deidentifier,
    pub(crate) known: &'a Known,
    /// The patient's date shift, when the profile shifts dates and the
    /// resource names its patient.
    shift: Option<i64>,
}

impl<'a> Walk<'a> {
    /// A walk over one top-level input.
    pub(crate) fn new(d: &'a Deidentifier, known: &'a Known) -> Walk<'a> {
        Walk { d, known, shift: None }
    }

    /// A resource: the walk with this resource's date shift, then `meta`.
    pub(crate) fn resource(&self, map: &Map<String, Value>, depth: usize) -> Result<Value, DeidError> {
        let shift = match self.d.profile.dates {
            DateRule::Shift => patient_id(map).map(|p| self.d.keyed.shift_days(&p)),
            _ => None,
        };
        let inner = Walk { d: self.d, known: self.known, shift };
        let mut out = inner.fields(map, depth, false)?;
        // Inserting over an existing key keeps its place in the output.
        let meta = out.get("meta").and_then(Value::as_object).cloned();
        out.insert("meta".into(), Value::Object(self.d.meta(meta)));
        Ok(Value::Object(out))
    }

    fn fields(
        &self,
        map: &Map<String, Value>,
        depth: usize,
        in_extension: bool,
    ) -> Result<Map<String, Value>, DeidError> {
        if depth > WALK_LIMIT {
            return Err(DeidError::TooDeep { limit: MAX_DEPTH });
        }
        let reference_like = !map.contains_key("code") && !map.contains_key("system");
        let resource_type = map.get("resourceType").and_then(Value::as_str);
        let person = resource_type.is_some_and(|t| PERSONS.contains(&t));
        let mut out = Map::new();
        for (key, v) in map {
            let k = key.as_str();
            // `_birthDate` and friends hold primitives' extensions (a
            // birth time, for one); they are dropped with the rest.
            if k.starts_with('_') || DROP.contains(&k) {
                continue;
            }
            let kept = match k {
                "extension" | "modifierExtension" => self.extensions(k, v, depth)?,
                "identifier" | "masterIdentifier" => self.identifiers(v, depth)?,
                _ if k.ends_with("Identifier") => self.identifiers(v, depth)?,
                "url" if in_extension => Some(v.clone()),
                "url" if map.contains_key("method") => v.as_str().map(|u| Value::String(self.request_url(u))),
                // Attachment, Endpoint and Bundle.link URLs (item (N)).
                "url" => None,
                "id" => v.as_str().map(|s| Value::String(self.d.keyed.id(s))),
                "reference" => v.as_str().map(|s| Value::String(self.d.reference(s))),
                "fullUrl" => v.as_str().map(|s| Value::String(self.d.full_url(s))),
                // A Reference's display is the referenced person's name.
                "display" if reference_like => None,
                // A Narrative: the resource as prose, names and all (and,
                // when malformed, whatever it holds).
                "text" if v.is_object() || resource_type.is_some() => None,
                // A person's name in any form, even a bare string.
                "name" if person => None,
                // Endpoint.address is a URL; Address objects are handled by shape.
                "address" if v.is_string() => None,
                _ => self.value(k, v, depth + 1)?,
            };
            if let Some(kept) = kept {
                out.insert(key.clone(), kept);
            }
        }
        Ok(out)
    }

    /// Any element. `None` drops it.
    fn value(&self, key: &str, v: &Value, depth: usize) -> Result<Option<Value>, DeidError> {
        if depth > WALK_LIMIT {
            return Err(DeidError::TooDeep { limit: MAX_DEPTH });
        }
        Ok(match v {
            Value::String(s) => self.string(key, s).map(Value::String),
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    if let Some(y) = self.value(key, x, depth + 1)? {
                        out.push(y);
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            Value::Object(m) => self.object(key, m, depth + 1)?,
            other => Some(other.clone()),
        })
    }

    fn object(&self, key: &str, m: &Map<String, Value>, depth: usize) -> Result<Option<Value>, DeidError> {
        if m.get("resourceType").is_some_and(Value::is_string) {
            return self.resource(m, depth).map(Some);
        }
        // HumanName (item (A)), ContactPoint (D)–(F) wherever they appear.
        let name = key == "name" || key.ends_with("HumanName") || m.contains_key("family") || m.contains_key("given");
        if name || key.ends_with("ContactPoint") || is_contact_point(m) {
            return Ok(None);
        }
        if key == "address" || key.ends_with("Address") || is_address(m) {
            let Some(mut a) = address::address(m, self.d.profile.addresses, &self.d.zip3) else {
                return Ok(None);
            };
            // What the rule kept is released as is (a town name must not
            // be scrubbed into "[LOCATION]" in a limited data set); only
            // the period still has dates to treat.
            if let Some(p) = a.remove("period")
                && let Some(p) = self.value("period", &p, depth + 1)?
            {
                a.insert("period".into(), p);
            }
            return Ok(Some(Value::Object(a)));
        }
        if m.contains_key("contentType") || m.contains_key("data") {
            return self.attachment(m, depth);
        }
        if self.d.profile.cap_ages && is_years(m) {
            return self.nonempty(&cap_age(m), depth);
        }
        self.nonempty(m, depth)
    }

    fn nonempty(&self, m: &Map<String, Value>, depth: usize) -> Result<Option<Value>, DeidError> {
        let out = self.fields(m, depth, false)?;
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }

    fn string(&self, key: &str, s: &str) -> Option<String> {
        if key == "birthDate" {
            return self.birth_date(s);
        }
        if VERBATIM.contains(&key) {
            return Some(s.to_string());
        }
        if let Some(d) = dates::parse(s) {
            return Some(self.date(key, s, &d));
        }
        if looks_like_url_or_ip(s) {
            return None;
        }
        Some(text::scrub(&self.d.scrubber, self.known, s, self.d.surrogates.as_ref()))
    }

    fn date(&self, key: &str, original: &str, d: &FhirDate<'_>) -> String {
        match (self.d.profile.dates, self.shift) {
            (DateRule::Keep, _) => original.to_string(),
            (DateRule::Shift, Some(days)) => d.shifted(days),
            // A resource with no patient has no offset; the year is the
            // safe fallback.
            (DateRule::Shift, None) | (DateRule::Year, _) => d.year_only(key),
        }
    }

    /// A birth date. Over 89 at the export date, it becomes the birth year
    /// of someone who turns 90 that year, the one value shared by everyone
    /// in the "90 or older" group (item (C)).
    fn birth_date(&self, s: &str) -> Option<String> {
        let d = dates::parse(s)?;
        if self.d.profile.cap_ages && d.max_age_at(self.d.as_of) >= 90 {
            return Some(format!("{:04}", self.d.as_of.0 - 90));
        }
        Some(self.date("birthDate", s, &d))
    }

    fn extensions(&self, key: &str, v: &Value, depth: usize) -> Result<Option<Value>, DeidError> {
        let Value::Array(items) = v else { return Ok(None) };
        let mut out = Vec::new();
        for x in items {
            let Some(m) = x.as_object() else { continue };
            let url = m.get("url").and_then(Value::as_str).unwrap_or("");
            if !self.d.profile.extension_allow.iter().any(|a| a == url) {
                // A modifier extension changes the meaning of the resource;
                // dropping it would publish a different (wrong) fact.
                if key == "modifierExtension" {
                    return Err(DeidError::ModifierExtension(url.to_string()));
                }
                continue;
            }
            let kept = self.allowed_extension(m, depth + 1)?;
            if !kept.is_empty() {
                out.push(Value::Object(kept));
            }
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    }

    /// An allowed extension and, inside it, its sub-extensions, whose
    /// relative URLs (`ombCategory`) belong to the allowed parent.
    fn allowed_extension(&self, m: &Map<String, Value>, depth: usize) -> Result<Map<String, Value>, DeidError> {
        if depth > WALK_LIMIT {
            return Err(DeidError::TooDeep { limit: MAX_DEPTH });
        }
        let mut rest = m.clone();
        let subs = rest.remove("extension");
        let mut out = self.fields(&rest, depth, true)?;
        if let Some(Value::Array(subs)) = subs {
            let mut kept = Vec::new();
            for s in subs.iter().filter_map(Value::as_object) {
                let e = self.allowed_extension(s, depth + 1)?;
                if !e.is_empty() {
                    kept.push(Value::Object(e));
                }
            }
            if !kept.is_empty() {
                out.insert("extension".into(), Value::Array(kept));
            }
        }
        Ok(out)
    }

    fn identifiers(&self, v: &Value, depth: usize) -> Result<Option<Value>, DeidError> {
        if self.d.profile.identifiers == IdentifierRule::Remove {
            return Ok(None);
        }
        let one = |m: &Map<String, Value>| -> Result<Option<Value>, DeidError> {
            let Some(value) = m.get("value").and_then(Value::as_str) else { return Ok(None) };
            let system = m.get("system").and_then(Value::as_str).unwrap_or("");
            let mut out = Map::new();
            for k in ["use", "type", "system"] {
                if let Some(x) = m.get(k)
                    && let Some(x) = self.value(k, x, depth + 1)?
                {
                    out.insert(k.into(), x);
                }
            }
            out.insert("value".into(), Value::String(self.d.keyed.identifier(system, value)));
            Ok(Some(Value::Object(out)))
        };
        match v {
            Value::Object(m) => one(m),
            Value::Array(a) => {
                let mut out = Vec::new();
                for m in a.iter().filter_map(Value::as_object) {
                    out.extend(one(m)?);
                }
                Ok((!out.is_empty()).then_some(Value::Array(out)))
            }
            _ => Ok(None),
        }
    }

    /// An `Attachment`. Text is decoded, scrubbed and re-encoded (items
    /// (A)–(R) in prose); anything else (PDF, images: (Q)) loses its
    /// content, keeping only its type. URLs and hashes always go: a URL can
    /// name the patient, and the hash would fingerprint the original.
    fn attachment(&self, m: &Map<String, Value>, depth: usize) -> Result<Option<Value>, DeidError> {
        let ctype = m.get("contentType").and_then(Value::as_str).unwrap_or("");
        let mut out = Map::new();
        for k in ["contentType", "language", "title", "creation"] {
            if let Some(x) = m.get(k)
                && let Some(x) = self.value(k, x, depth + 1)?
            {
                out.insert(k.into(), x);
            }
        }
        if ctype.to_ascii_lowercase().starts_with("text/")
            && let Some(data) = m.get("data").and_then(Value::as_str)
            && let Some((clean, size)) =
                text::scrub_base64(&self.d.scrubber, self.known, data, self.d.surrogates.as_ref())
        {
            out.insert("data".into(), Value::String(clean));
            out.insert("size".into(), Value::from(size));
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }

    /// `Bundle.entry.request.url`: `Patient/abc` keeps its type and gets
    /// the pseudonym; a search (`Patient?identifier=…`) keeps only the type.
    fn request_url(&self, u: &str) -> String {
        let (path, _query) = u.split_once('?').unwrap_or((u, ""));
        match path.split_once('/') {
            Some((ty, id)) => format!("{ty}/{}", self.d.keyed.id(id.split('/').next().unwrap_or(id))),
            None => path.to_string(),
        }
    }
}
