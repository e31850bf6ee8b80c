//! Writing the scrubbed text.

use crate::span::PhiSpan;

/// What replaces an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// `[NAME]`, `[DATE]`, `[PHONE]`…: keeps the note readable and says
    /// what kind of fact was there.
    TypedPlaceholder,
    /// One `*` per character: keeps the layout (and column positions) of
    /// fixed-width text.
    Mask,
}

/// Replaces each span of `spans` (sorted, non-overlapping) in `text`.
pub(crate) fn apply(text: &str, spans: &[PhiSpan], replacement: Replacement) -> String {
    let mut out = String::with_capacity(text.len() + spans.len() * 4);
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        match replacement {
            Replacement::TypedPlaceholder => out.push_str(s.kind.placeholder()),
            Replacement::Mask => out.extend(text[s.start..s.end].chars().map(|_| '*')),
        }
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}
