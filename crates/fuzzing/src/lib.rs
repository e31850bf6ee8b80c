//! The bodies of phivault's fuzz targets: every parser that takes outside input, each as a
//! function of arbitrary bytes that must never panic, hang or grow without bound, and that
//! asserts what must hold of any input (a forged assertion never verifies, a sealed cursor
//! opens only unaltered, spans lie inside the text…).
//!
//! `fuzz/` (a cargo-fuzz project, nightly) calls these from libFuzzer; `tests/replay.rs`
//! runs them over the committed corpora on the stable toolchain, so CI replays every input
//! a run ever kept, and every crash found becomes a file in `fuzz/regressions/<target>/`.

mod audit;
mod deid;
mod fhir;
mod keys;
mod oauth;
mod records;

pub use audit::{audit_trail, honest_trail};
pub use deid::{deid_resource, deid_text};
pub use fhir::{fhir_resource, search_query};
pub use keys::key_file;
pub use oauth::{jwt_assertion, oauth_form};
pub use records::{fhir_bundle, page_cursor};

/// A fuzz target's body: any bytes in, a panic only for a defect.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and the corpus folders name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("audit_trail", audit_trail),
    ("deid_resource", deid_resource),
    ("deid_text", deid_text),
    ("fhir_bundle", fhir_bundle),
    ("fhir_resource", fhir_resource),
    ("jwt_assertion", jwt_assertion),
    ("key_file", key_file),
    ("oauth_form", oauth_form),
    ("page_cursor", page_cursor),
    ("search_query", search_query),
];

/// The input split at its first NUL: two texts for targets that take two (a token and a
/// key set, a log and a witness file).
fn split_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}
