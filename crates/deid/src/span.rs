//! What the engine finds: typed byte ranges, and the one place that decides
//! what happens when two detectors claim overlapping text.

use std::fmt;

/// The kind of identifier a span holds. Several Safe Harbor categories share
/// one kind because a reader of the redacted note needs the gist ("a number
/// was here"), not the legal category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhiKind {
    /// A person's name: patient, relative, clinician or anyone else.
    Name,
    /// Any date element finer than a year (day, month, day of month).
    Date,
    /// A telephone, fax or pager number.
    Phone,
    /// Geography smaller than a state: street, city, county, zip code,
    /// and the names of hospitals, wards and employers.
    Location,
    /// An account, record, licence, device or other unique number.
    Id,
    /// A Social Security number.
    Ssn,
    /// An age over 89.
    Age,
    /// An e-mail address.
    Email,
    /// A web address.
    Url,
    /// An IPv4 or IPv6 address.
    Ip,
}

impl PhiKind {
    /// The placeholder written by [`crate::Replacement::TypedPlaceholder`].
    pub fn placeholder(self) -> &'static str {
        match self {
            PhiKind::Name => "[NAME]",
            PhiKind::Date => "[DATE]",
            PhiKind::Phone => "[PHONE]",
            PhiKind::Location => "[LOCATION]",
            PhiKind::Id => "[ID]",
            PhiKind::Ssn => "[SSN]",
            PhiKind::Age => "[AGE]",
            PhiKind::Email => "[EMAIL]",
            PhiKind::Url => "[URL]",
            PhiKind::Ip => "[IP]",
        }
    }

    /// Which kind wins when two detectors overlap: the more specific,
    /// pattern-based kinds beat the dictionary-based ones, because a pattern
    /// that matched a whole e-mail address knows more than a name list that
    /// matched one word of it.
    fn priority(self) -> u8 {
        match self {
            PhiKind::Email | PhiKind::Url | PhiKind::Ip => 9,
            PhiKind::Ssn => 8,
            PhiKind::Phone => 7,
            PhiKind::Id => 6,
            PhiKind::Date => 5,
            PhiKind::Age => 4,
            PhiKind::Location => 3,
            PhiKind::Name => 2,
        }
    }
}

impl fmt::Display for PhiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.placeholder();
        f.write_str(&s[1..s.len() - 1])
    }
}

/// One identifier found in a text: `text[start..end]` (byte offsets, always
/// on `char` boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhiSpan {
    /// First byte of the identifier.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What the identifier is.
    pub kind: PhiKind,
}

/// Sorts spans and merges overlapping or touching-by-overlap ones into one,
/// so callers get a sorted, non-overlapping list and `redact` never writes a
/// placeholder inside another. The merged span takes the highest-priority kind.
pub(crate) fn normalize(mut spans: Vec<PhiSpan>) -> Vec<PhiSpan> {
    spans.retain(|s| s.start < s.end);
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut out: Vec<PhiSpan> = Vec::with_capacity(spans.len());
    for s in spans {
        if let Some(last) = out.last_mut()
            && s.start < last.end
        {
            // Overlap: extend and keep the more specific kind.
            if s.end > last.end {
                last.end = s.end;
            }
            if s.kind.priority() > last.kind.priority() {
                last.kind = s.kind;
            }
            continue;
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(start: usize, end: usize, kind: PhiKind) -> PhiSpan {
        PhiSpan { start, end, kind }
    }

    #[test]
    fn merges_overlaps_and_keeps_specific_kind() {
        let got = normalize(vec![
            sp(10, 20, PhiKind::Name),
            sp(0, 3, PhiKind::Date),
            sp(15, 30, PhiKind::Email),
            sp(30, 31, PhiKind::Name),
            sp(5, 5, PhiKind::Name),
        ]);
        assert_eq!(got, vec![sp(0, 3, PhiKind::Date), sp(10, 30, PhiKind::Email), sp(30, 31, PhiKind::Name)]);
    }
}
