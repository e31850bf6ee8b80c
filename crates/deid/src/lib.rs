//! phivault-deid: finds and redacts HIPAA Safe Harbor identifiers
//! (45 CFR 164.514(b)(2)) in free-text clinical notes.
//!
//! The engine combines three kinds of evidence, because none is enough
//! alone in upper-case ICU shorthand:
//! 1. patterns for identifiers with a shape (dates, phones, e-mail, URLs,
//!    IPs, SSNs, record numbers, zip codes, ages over 89) — `patterns.rs`;
//! 2. dictionaries of first names, surnames, US towns and facility names,
//!    minus common English words and a medical allow-list — `dictionary.rs`;
//! 3. context rules (titles, relations, "spoke with", "transferred to",
//!    credentials, signatures) that vouch for words the lists miss or that
//!    are ambiguous — `names.rs`, `places.rs`.
//!
//! The [`fhir`] module applies the same rules to structured FHIR R4
//! resources by profile (Safe Harbor, limited data set, custom), with keyed
//! pseudonyms for ids and references and a k-anonymity release check.
//!
//! It is a pure library: no IO, no threads, no global state. Build one
//! [`Scrubber`] (tens of milliseconds: it compiles the dictionaries) and
//! share it; [`Scrubber::find`] takes `&self`.
//!
//! ```
//! use phivault_deid::{Replacement, Scrubber, ScrubberConfig};
//! let s = Scrubber::new(ScrubberConfig::default());
//! let out = s.redact("Seen by Dr. Nicholson on 7/22/2093, call 410-555-0199.", Replacement::TypedPlaceholder);
//! assert_eq!(out, "Seen by Dr. [NAME] on [DATE], call [PHONE].");
//! ```

mod allow;
mod checks;
mod context;
mod cues;
mod dates;
mod dictionary;
pub mod fhir;
mod names;
mod patterns;
mod places;
mod redact;
mod span;
mod surrogate;
mod tokens;
mod typos;

pub use redact::Replacement;
pub use span::{PhiKind, PhiSpan};
pub use surrogate::Surrogates;

use dictionary::Lexicon;
use patterns::Patterns;

/// Inputs are processed in windows of about this many bytes, cut at a line
/// break, so memory stays bounded however large the input is. Notes are
/// far shorter; only a bulk export would ever be split.
const WINDOW: usize = 256 * 1024;

/// Errors of the byte-level entry point and of FHIR de-identification.
/// Every error means nothing was released.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeidError {
    /// The input is not UTF-8; nothing was scrubbed, so nothing may be
    /// released. Re-encode the source (it is often Latin-1) and retry.
    #[error("input is not valid UTF-8 (first bad byte at offset {valid_up_to}); nothing was scrubbed")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The FHIR input is nested deeper than the limit: malformed or
    /// hostile, and refused rather than walked.
    #[error("input is nested deeper than {limit} levels")]
    TooDeep {
        /// The limit, [`fhir::MAX_DEPTH`].
        limit: usize,
    },
    /// The FHIR input is not a JSON object with a string `resourceType`.
    #[error("input is not a FHIR resource (a JSON object with a resourceType)")]
    NotAResource,
    /// A profile name that is neither built in nor known.
    #[error("unknown de-identification profile {0:?} (known: safe-harbor, limited-data-set)")]
    UnknownProfile(String),
    /// A custom profile that does not parse or has a bad value.
    #[error("invalid de-identification profile: {0}")]
    InvalidProfile(String),
    /// A modifier extension that the profile does not allow: dropping it
    /// would change what the resource means, so the resource is refused.
    #[error("modifier extension {0:?} is not allowed by the profile; the resource cannot be de-identified safely")]
    ModifierExtension(String),
    /// A k-anonymity check failed: some equivalence class is smaller than
    /// k, so the data set must not be released as it is.
    #[error("not {}-anonymous: smallest class has {} record(s); {} class(es) with {} record(s) below k", .0.k, .0.smallest_class, .0.classes_below_k, .0.records_below_k)]
    BelowK(Box<fhir::KAnonymityReport>),
}

/// Site-specific tuning. The default finds every kind with the built-in
/// lists only.
#[derive(Debug, Clone, Default)]
pub struct ScrubberConfig {
    /// Extra words never to redact (local drug brands, ward jargon), any case.
    pub allow: Vec<String>,
    /// Extra words always redacted as names, any case: typically the
    /// patient's and relatives' names from the structured record, which
    /// make the free text far safer to scrub.
    pub deny: Vec<String>,
    /// Kinds not to report (for example [`PhiKind::Location`] when facility
    /// names must stay). Empty means report everything.
    pub skip: Vec<PhiKind>,
}

/// The compiled de-identification engine.
#[derive(Debug)]
pub struct Scrubber {
    lex: Lexicon,
    patterns: Patterns,
    skip: Vec<PhiKind>,
}

impl Scrubber {
    /// Compiles the patterns and dictionaries.
    pub fn new(config: ScrubberConfig) -> Scrubber {
        let lex = Lexicon::new(&config.allow, &config.deny);
        let patterns = Patterns::new(lex.street_suffixes());
        Scrubber { lex, patterns, skip: config.skip }
    }

    /// The identifiers in `text`: sorted, non-overlapping byte ranges.
    /// Linear in the input; memory bounded by a window of [`WINDOW`] bytes
    /// plus the result.
    pub fn find(&self, text: &str) -> Vec<PhiSpan> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < text.len() {
            let end = window_end(text, start);
            self.find_window(&text[start..end], start, &mut out);
            start = end;
        }
        out
    }

    fn find_window(&self, text: &str, offset: usize, out: &mut Vec<PhiSpan>) {
        let upper = text.to_ascii_uppercase();
        let mut spans = Vec::new();
        self.patterns.find(text, &upper, &self.lex, &mut spans);
        let toks = tokens::tokenize(text, &upper, &self.lex);
        let mut ctx = context::Ctx::new(text, &upper, &toks, tokens::is_mixed_case(text), &self.lex);
        let phrases = self.lex.phrases(&upper, &toks);
        // Medical phrases block their words before any rule looks at them.
        places::find(&mut ctx, &phrases);
        names::find(&mut ctx);
        places::region_words(&mut ctx);
        places::town_suffixes(&mut ctx);
        for (t, label) in toks.iter().zip(&ctx.labels) {
            if t.has(dictionary::DENY) {
                spans.push(PhiSpan { start: t.start, end: t.end, kind: PhiKind::Name });
            } else if let Some(kind) = label {
                spans.push(PhiSpan { start: t.start, end: t.end, kind: *kind });
            }
        }
        spans.retain(|s| !self.skip.contains(&s.kind));
        out.extend(span::normalize(spans).into_iter().map(|s| PhiSpan {
            start: s.start + offset,
            end: s.end + offset,
            kind: s.kind,
        }));
    }

    /// `text` with every identifier replaced.
    pub fn redact(&self, text: &str, replacement: Replacement) -> String {
        redact::apply(text, &self.find(text), replacement)
    }

    /// `text` with every identifier replaced by a fake but consistent surrogate (see
    /// [`Surrogates`]): the same person, place or number reads the same throughout.
    pub fn redact_with_surrogates(&self, text: &str, surrogates: &Surrogates) -> String {
        surrogates.apply(text, &self.find(text))
    }

    /// [`Scrubber::redact`] for raw bytes: refuses input that is not UTF-8
    /// rather than guessing an encoding and missing identifiers in it.
    pub fn scrub_bytes(&self, bytes: &[u8], replacement: Replacement) -> Result<String, DeidError> {
        let text = std::str::from_utf8(bytes).map_err(|e| DeidError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
        Ok(self.redact(text, replacement))
    }
}

/// End of the window that starts at `start`: the last line break before
/// `start + WINDOW`, else the last blank, else a char boundary.
fn window_end(text: &str, start: usize) -> usize {
    let hard = start + WINDOW;
    if hard >= text.len() {
        return text.len();
    }
    let mut cut = hard;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let slice = &text.as_bytes()[start..cut];
    let half = slice.len() / 2;
    if let Some(p) = slice.iter().rposition(|&b| b == b'\n').filter(|&p| p > half) {
        return start + p + 1;
    }
    if let Some(p) = slice.iter().rposition(|&b| b == b' ').filter(|&p| p > half) {
        return start + p + 1;
    }
    cut
}
