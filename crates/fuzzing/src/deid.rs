//! De-identification input: free text and FHIR resources.

use std::sync::OnceLock;

use phivault_deid::fhir::{Deidentifier, Profile};
use phivault_deid::{Replacement, Scrubber, ScrubberConfig};
use serde_json::Value;

fn scrubber() -> &'static Scrubber {
    static SCRUBBER: OnceLock<Scrubber> = OnceLock::new();
    SCRUBBER.get_or_init(|| Scrubber::new(ScrubberConfig { deny: vec!["Daffy".into()], ..ScrubberConfig::default() }))
}

/// Free text: spans sorted, disjoint, inside the text and on character boundaries; the
/// mask keeps the text's length in characters; bytes that are not UTF-8 are refused.
pub fn deid_text(data: &[u8]) {
    let scrubber = scrubber();
    let _ = scrubber.scrub_bytes(data, Replacement::TypedPlaceholder);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let spans = scrubber.find(text);
    let mut end = 0;
    for span in &spans {
        assert!(span.start >= end && span.start < span.end && span.end <= text.len(), "{spans:?}");
        assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        end = span.end;
    }
    let masked = scrubber.redact(text, Replacement::Mask);
    assert_eq!(masked.chars().count(), text.chars().count(), "the mask changed the layout");
    let _ = scrubber.redact(text, Replacement::TypedPlaceholder);
}

/// A FHIR resource through the Safe Harbor profile: an error or a resource, never a panic;
/// a de-identified Patient keeps no name.
pub fn deid_resource(data: &[u8]) {
    static DEID: OnceLock<Deidentifier> = OnceLock::new();
    let deid =
        DEID.get_or_init(|| Deidentifier::new(Profile::safe_harbor(), b"fuzz project key").with_as_of(2026, 12, 3));
    let Ok(resource) = serde_json::from_slice::<Value>(data) else { return };
    if let Ok(out) = deid.deidentify(&resource)
        && out.get("resourceType").and_then(Value::as_str) == Some("Patient")
    {
        assert!(out.get("name").is_none(), "a de-identified Patient kept its name");
    }
}
