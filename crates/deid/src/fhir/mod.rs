//! Structured de-identification of FHIR R4 resources by profile: HIPAA
//! Safe Harbor (45 CFR 164.514(b)(2)) and the limited data set
//! (164.514(e)).
//!
//! Resources are plain `serde_json::Value`s; no FHIR model is needed,
//! because the rules key on element names and datatype shapes. The
//! output is a new value; the input is never changed.
//!
//! ```
//! use phivault_deid::fhir::{Deidentifier, Profile};
//! let d = Deidentifier::new(Profile::safe_harbor(), b"project key");
//! let patient = serde_json::json!({
//!     "resourceType": "Patient", "id": "abc",
//!     "name": [{"family": "Duck", "given": ["Daffy"]}],
//!     "birthDate": "1937-04-17",
//!     "address": [{"line": ["1 Looney Tunes Lane"], "city": "Burbank", "state": "CA", "postalCode": "91521"}],
//! });
//! let out = d.deidentify(&patient).expect("a resource");
//! assert!(out.get("name").is_none());
//! assert_eq!(out["address"][0]["postalCode"], "915");
//! ```

mod address;
mod dates;
mod kanon;
mod profile;
mod pseudonym;
mod shapes;
mod text;
mod walk;

pub use kanon::{KAnonymity, KAnonymityReport, QuasiIdentifiers};
pub use profile::{AddressRule, DateRule, IdentifierRule, Profile};

use serde_json::{Map, Value};

use crate::{DeidError, Scrubber, ScrubberConfig};

/// The deepest JSON nesting accepted. Real resources stay under 15
/// (a Claim's item.detail.subDetail is among the deepest); anything far
/// deeper is malformed or hostile, and refusing it keeps recursion bounded.
pub const MAX_DEPTH: usize = 64;

/// The code system of the `meta.security` label added to every output.
const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// A compiled profile with its project key. Build once (it compiles the
/// free-text scrubber, tens of milliseconds) and share: `deidentify`
/// takes `&self`.
#[derive(Debug)]
pub struct Deidentifier {
    profile: Profile,
    keyed: pseudonym::Keyed,
    scrubber: Scrubber,
    /// Set when the profile asks for surrogates in free text.
    surrogates: Option<crate::Surrogates>,
    zip3: address::Zip3,
    /// The export date (year, month, day) for the over-89 rule.
    as_of: (i64, u32, u32),
}

impl Deidentifier {
    /// A de-identifier for `profile`. Pseudonyms and date shifts are keyed
    /// on `project_key`: the same key gives the same pseudonyms in every
    /// export, a different key unrelated ones. Keep the key secret; anyone
    /// holding it can test guesses of the original ids.
    pub fn new(profile: Profile, project_key: &[u8]) -> Deidentifier {
        Deidentifier {
            surrogates: profile.free_text_surrogates.then(|| crate::Surrogates::new(project_key)),
            profile,
            keyed: pseudonym::Keyed::new(project_key),
            scrubber: Scrubber::new(ScrubberConfig::default()),
            zip3: address::Zip3::new(),
            as_of: dates::today(),
        }
    }

    /// Sets the export date used to decide who is over 89 (default: today,
    /// UTC). Exports that must be reproducible fix it.
    pub fn with_as_of(mut self, year: i64, month: u32, day: u32) -> Deidentifier {
        self.as_of = (year, month, day);
        self
    }

    /// The profile in force.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// A de-identified copy of `resource` (any resource type, including a
    /// Bundle, whose entries are each de-identified). Names, telecom,
    /// identifier values and addresses found anywhere in the input are also
    /// searched for in its free text, so de-identify a patient's Bundle
    /// whole rather than resource by resource when you can.
    ///
    /// Errors: input nested deeper than [`MAX_DEPTH`], input that is not a
    /// JSON object with a `resourceType`, and unknown modifier extensions.
    pub fn deidentify(&self, resource: &Value) -> Result<Value, DeidError> {
        check_depth(resource)?;
        let Some(map) = resource.as_object().filter(|m| m.get("resourceType").is_some_and(Value::is_string)) else {
            return Err(DeidError::NotAResource);
        };
        let known = text::Known::collect(resource);
        walk::Walk::new(self, &known).resource(map, 0)
    }

    /// [`Deidentifier::deidentify`], also scrubbing from the free text the names,
    /// telecom, identifier values and address parts found in `context` (the record's
    /// Patient, when the resource is de-identified on its own, as in a bulk export by type).
    /// Nothing from `context` is output.
    pub fn deidentify_knowing(&self, resource: &Value, context: &[&Value]) -> Result<Value, DeidError> {
        check_depth(resource)?;
        for c in context {
            check_depth(c)?;
        }
        let Some(map) = resource.as_object().filter(|m| m.get("resourceType").is_some_and(Value::is_string)) else {
            return Err(DeidError::NotAResource);
        };
        let mut sources = vec![resource];
        sources.extend_from_slice(context);
        let known = text::Known::collect_all(&sources);
        walk::Walk::new(self, &known).resource(map, 0)
    }

    /// The pseudonymised form of a reference: `Patient/abc` →
    /// `Patient/<pseudonym of abc>` (equal to that Patient's new id),
    /// `urn:uuid:abc` → `urn:uuid:<pseudonym of abc>`, `#abc` →
    /// `#<pseudonym>`. Server base URLs and `_history` are dropped. A
    /// conditional reference (`Practitioner?identifier=…`) keeps its type and
    /// gets a pseudonym of the whole query, so equal searches still match.
    pub fn reference(&self, r: &str) -> String {
        if r == "#" {
            return r.to_string();
        }
        if let Some(local) = r.strip_prefix('#') {
            return format!("#{}", self.keyed.id(local));
        }
        if let Some(u) = r.strip_prefix("urn:uuid:") {
            return format!("urn:uuid:{}", self.keyed.id(u));
        }
        if let Some((path, query)) = r.split_once('?') {
            let ty = path.rsplit('/').next().unwrap_or(path);
            if is_type(ty) {
                return format!("{ty}/{}", self.keyed.id(query));
            }
        }
        let path = r.split("/_history").next().unwrap_or(r);
        let mut parts = path.rsplit('/');
        if let (Some(id), Some(ty)) = (parts.next(), parts.next())
            && is_type(ty)
            && !id.is_empty()
        {
            return format!("{ty}/{}", self.keyed.id(id));
        }
        format!("urn:uuid:{}", self.keyed.id(r))
    }

    /// The pseudonym of a resource id (the new `id` of that resource).
    pub fn pseudonym(&self, id: &str) -> String {
        self.keyed.id(id)
    }

    /// `Bundle.entry.fullUrl`: always a `urn:uuid:` of the entry's
    /// pseudonymous id, since a server URL is itself an identifier.
    fn full_url(&self, u: &str) -> String {
        let id = u.strip_prefix("urn:uuid:").unwrap_or_else(|| u.rsplit('/').next().unwrap_or(u));
        format!("urn:uuid:{}", self.keyed.id(id))
    }

    /// The output `meta`: profiles, security labels, tags and the (already
    /// de-identified) lastUpdated stay; `source` (a system URL) and
    /// `versionId` (a server counter) go; the profile's label is added.
    fn meta(&self, walked: Option<Map<String, Value>>) -> Map<String, Value> {
        let mut meta: Map<String, Value> = walked
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| matches!(k.as_str(), "profile" | "security" | "tag" | "lastUpdated"))
            .collect();
        let label = serde_json::json!({"system": OBSERVATION_VALUE, "code": self.profile.security_label});
        let mut security = match meta.remove("security") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        if !security.contains(&label) {
            security.push(label);
        }
        meta.insert("security".into(), Value::Array(security));
        meta
    }
}

/// A resource type name: `Patient`, `MedicationRequest`.
fn is_type(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Refuses input nested deeper than [`MAX_DEPTH`], without recursion, so
/// even a value built in memory (which serde_json's parser limit never
/// saw) cannot overflow the stack here or in the walk after it.
fn check_depth(v: &Value) -> Result<(), DeidError> {
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if d > MAX_DEPTH {
            return Err(DeidError::TooDeep { limit: MAX_DEPTH });
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    Ok(())
}
