//! Free text inside resources: the structured record tells us some of the
//! identifiers the text may repeat (the patient's own name, MRN, phone,
//! street), which the dictionary-based scrubber alone may miss (Synthea's
//! `Bob965`, a rare surname). Both are applied.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::span::{self, PhiKind, PhiSpan};
use crate::{Replacement, Scrubber, Surrogates};

/// Shorter known values are not searched for: two-letter given names and
/// initials would hit ordinary words and abbreviations everywhere.
const MIN_KNOWN_LEN: usize = 3;

/// Identifier strings found in the structured part of the input, to be
/// searched for in its free text.
#[derive(Debug, Default)]
pub(crate) struct Known {
    values: Vec<(String, PhiKind)>,
    matcher: Option<AhoCorasick>,
}

impl Known {
    /// Collects names, telecom values, identifier values and address parts
    /// from anywhere in `v`.
    pub(crate) fn collect(v: &Value) -> Known {
        Known::collect_all(&[v])
    }

    /// [`Known::collect`] over several values.
    pub(crate) fn collect_all(values: &[&Value]) -> Known {
        let mut k = Known::default();
        for v in values {
            k.visit(v, 0);
        }
        k.values.sort();
        k.values.dedup();
        let patterns: Vec<&str> = k.values.iter().map(|(s, _)| s.as_str()).collect();
        k.matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()
            .filter(|_| !patterns.is_empty());
        k
    }

    fn add(&mut self, s: &str, kind: PhiKind) {
        let s = s.trim();
        if s.len() >= MIN_KNOWN_LEN {
            self.values.push((s.to_string(), kind));
            // The matcher ignores case for ASCII letters only: "Muñoz" in the record
            // must also find "MUÑOZ" and "Munoz" in a note.
            if !s.is_ascii() {
                self.values.push((s.to_uppercase(), kind));
                self.values.push((crate::tokens::fold_word(s), kind));
            }
        }
    }

    fn add_words(&mut self, s: &str, kind: PhiKind) {
        for w in s.split(|c: char| c.is_whitespace() || c == ',') {
            self.add(w.trim_matches('.'), kind);
        }
    }

    // Bounded by the caller's depth check: `collect` runs only on input
    // that passed it.
    fn visit(&mut self, v: &Value, depth: usize) {
        if depth > super::MAX_DEPTH {
            return;
        }
        match v {
            Value::Array(a) => a.iter().for_each(|x| self.visit(x, depth + 1)),
            Value::Object(m) => {
                for (key, val) in m {
                    match (key.as_str(), val) {
                        ("family" | "given" | "prefix" | "suffix", _)
                            if m.contains_key("family") || m.contains_key("given") =>
                        {
                            for s in strings(val) {
                                self.add_words(s, PhiKind::Name);
                            }
                        }
                        ("display", Value::String(s)) if m.contains_key("reference") => {
                            self.add_words(s, PhiKind::Name)
                        }
                        ("line" | "city" | "district" | "text", _)
                            if m.contains_key("line") || m.contains_key("city") =>
                        {
                            for s in strings(val) {
                                self.add(s, PhiKind::Location);
                            }
                        }
                        ("name", Value::String(s))
                            if m.get("resourceType")
                                .and_then(Value::as_str)
                                .is_some_and(|t| super::walk::PERSONS.contains(&t)) =>
                        {
                            self.add_words(s, PhiKind::Name)
                        }
                        ("telecom", _) => self.contact_points(val),
                        ("identifier", _) => self.identifiers(val),
                        _ => {}
                    }
                    self.visit(val, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn contact_points(&mut self, v: &Value) {
        for cp in objects(v) {
            if let Some(Value::String(s)) = cp.get("value") {
                let kind = match cp.get("system").and_then(Value::as_str) {
                    Some("email") => PhiKind::Email,
                    Some("url") => PhiKind::Url,
                    _ => PhiKind::Phone,
                };
                self.add(s, kind);
            }
        }
    }

    fn identifiers(&mut self, v: &Value) {
        for id in objects(v) {
            if let Some(Value::String(s)) = id.get("value") {
                self.add(s, PhiKind::Id);
            }
        }
    }

    /// Spans of known values in `text`, whole words only (so the name
    /// "Ann" does not hit "annual").
    fn find(&self, text: &str, out: &mut Vec<PhiSpan>) {
        let Some(m) = &self.matcher else { return };
        let b = text.as_bytes();
        for hit in m.find_iter(text) {
            let before = hit.start().checked_sub(1).and_then(|i| b.get(i));
            let after = b.get(hit.end());
            let word = |c: Option<&u8>| c.is_some_and(u8::is_ascii_alphanumeric);
            if !word(before) && !word(after) {
                let kind = self.values.get(hit.pattern().as_usize()).map_or(PhiKind::Name, |(_, k)| *k);
                out.push(PhiSpan { start: hit.start(), end: hit.end(), kind });
            }
        }
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn objects(v: &Value) -> Vec<&serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => vec![m],
        Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    }
}

/// `text` with what the scrubber finds and the known values replaced by
/// typed placeholders, or by surrogates when the profile asks for them.
pub(crate) fn scrub(scrubber: &Scrubber, known: &Known, text: &str, surrogates: Option<&Surrogates>) -> String {
    let mut spans = scrubber.find(text);
    known.find(text, &mut spans);
    let spans = span::normalize(spans);
    match surrogates {
        Some(surrogates) => surrogates.apply(text, &spans),
        None => crate::redact::apply(text, &spans, Replacement::TypedPlaceholder),
    }
}

/// A base64 `text/*` attachment, decoded, scrubbed and re-encoded, with
/// its new byte size. `None` when it is not valid base64 of UTF-8 text:
/// then nothing was scrubbed, so the caller must drop it.
pub(crate) fn scrub_base64(
    scrubber: &Scrubber,
    known: &Known,
    data: &str,
    surrogates: Option<&Surrogates>,
) -> Option<(String, usize)> {
    let bytes = STANDARD.decode(data.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let clean = scrub(scrubber, known, &text, surrogates);
    Some((STANDARD.encode(clean.as_bytes()), clean.len()))
}
