//! Second looks at pattern matches. A shape alone says "date", "phone" or
//! "address"; the words around it often say "pain score", "range of
//! readings" or "given per Dr.". Each check here answers one such doubt.

use crate::cues::bit;
use crate::dictionary::{LAST, Lexicon, MEDICAL, STOP};

/// Which second look a pattern's matches get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// None: the shape is enough.
    None,
    /// A slash date without a year ("5/10"): `dates::plausible_short_date`.
    ShortDate,
    /// "the 11th": not when a noun follows ("the 4th ventricle").
    DayOrdinal,
    /// A long number, a grouped card number or an IBAN: the IBAN (the
    /// match with letters) only when its ISO 13616 check digits hold.
    AccountNumber,
    /// A phone in a free grouping: 6 to 15 digits in all (ITU E.164 allows
    /// 15), and no reading's time or dose shape.
    PhoneDigits,
    /// "on 7-8 for": a day only before a function word or a past verb,
    /// never before a unit ("on 2-4 L", "from 2-4 units/hr").
    HyphenDay,
    /// "CVA 74'": not feet or degrees ("HOB 30'", "ambulated 30'").
    ApostropheYear,
    /// "555-0199": not a range of readings ("SVR 871-1207", "BP 112-1398/47").
    LocalPhone,
    /// "#A1234567": not a size, a count or a range ("#18FR", "PA# 58-66/24").
    HashCode,
    /// "19 Clover St.": not a dose or a clause ending in "DR" or "CT"
    /// ("1800 PER DR RONAYNE", "500 ML HESPAN. CT").
    Address,
}

impl Check {
    /// Whether the match `text[start..end]` survives its second look.
    pub(crate) fn passes(self, text: &str, start: usize, end: usize, lex: &Lexicon) -> bool {
        match self {
            Check::None => true,
            Check::ShortDate => crate::dates::plausible_short_date(text, start, end),
            Check::DayOrdinal => !ORDINAL_NOUNS.contains(&word_after(text, end).as_str()),
            Check::HyphenDay => hyphen_day(text, end, lex),
            Check::AccountNumber => {
                let s = &text[start..end];
                !s.bytes().any(|b| b.is_ascii_alphabetic()) || iban_checksum(s)
            }
            Check::PhoneDigits => (6..=15).contains(&text[start..end].bytes().filter(u8::is_ascii_digit).count()),
            Check::ApostropheYear => !DISTANCE_WORDS.contains(&word_before(text, start).as_str()),
            Check::LocalPhone => local_phone(text, start, end),
            Check::HashCode => hash_code(text, start, end),
            Check::Address => address(text, start, end, lex),
        }
    }
}

/// Whether the word after "on 7-8" makes it a day: a blank, then a
/// function word ("for", "at", "and") or a verb in the past ("grew"
/// is irregular, so a few are listed), never a unit.
fn hyphen_day(text: &str, end: usize, lex: &Lexicon) -> bool {
    if !text[end..].starts_with([' ', '\t']) {
        return false;
    }
    let word = word_after(text, end);
    let up = word.to_ascii_uppercase();
    if word.is_empty() || lex.cues(&up) & bit::DOSE_UNITS != 0 {
        return false;
    }
    let function_word = lex.flags(&up) & STOP != 0;
    let past = (word.len() > 4 && word.ends_with("ed")) || matches!(word.as_str(), "grew" | "showed" | "was" | "were");
    function_word || past
}

/// ISO 13616: the country code and check digits moved to the end, letters
/// read as 10..35, the whole number modulo 97 is 1. Upper-case letters
/// only, 15 to 34 characters.
fn iban_checksum(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) || !compact.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for &b in tail.iter().chain(head) {
        let v = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// Nouns that make "the 4th" an ordinal, not a day of the month.
#[rustfmt::skip]
const ORDINAL_NOUNS: &[&str] = &[
    "ventricle", "rib", "ribs", "ics", "intercostal", "degree", "dose", "doses", "time", "times",
    "day", "days", "nerve", "cranial", "finger", "toe", "digit", "attempt", "unit", "units",
    "floor", "grade", "stage", "line", "lumbar", "cervical", "thoracic", "vertebra", "percentile",
    "hour", "week", "liter", "bag", "one",
];

/// Words before a number with an apostrophe that make it feet or degrees.
#[rustfmt::skip]
const DISTANCE_WORDS: &[&str] = &[
    "hob", "x", "ambulated", "ambulate", "ambulating", "amb", "walked", "walk", "walking",
    "feet", "ft", "degrees", "elevated", "up", "about", "approx", "approximately",
];

/// Labels of readings that come as ranges ("HR 100-112", "SVR 871-1207").
#[rustfmt::skip]
const READING_LABELS: &[&str] = &[
    "hr", "svr", "svri", "pvr", "pvri", "bp", "sbp", "dbp", "map", "co", "ci", "rr", "plt",
    "plts", "platelets", "wbc", "uo", "o", "cvp", "pap", "pas", "tv", "vt", "vol", "volumes",
    "fs", "bs", "fsbs", "bg", "glucose", "ck", "cpk", "ldh", "voiding", "output", "intake", "is",
    "ml", "cc", "cco", "sv", "svo", "ldl", "rate", "rates", "between", "of",
];

/// The lower-case word right after byte `end`, blanks skipped.
fn word_after(text: &str, end: usize) -> String {
    text[end..]
        .trim_start_matches([' ', '\t'])
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The lower-case word right before byte `start`, blanks skipped.
fn word_before(text: &str, start: usize) -> String {
    words_before(text, start, 1).pop().unwrap_or_default()
}

/// Up to `n` lower-case words before byte `start`, nearest last, looking
/// back at most 40 bytes.
fn words_before(text: &str, start: usize, n: usize) -> Vec<String> {
    let mut a = start.saturating_sub(40);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut words: Vec<String> = text[a..start]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let keep = words.len().saturating_sub(n);
    words.drain(..keep);
    words
}

/// A 3-4 phone that is really a range of readings: the second number is
/// the larger, and a reading's label comes just before it or a slash and
/// another range just after it.
fn local_phone(text: &str, start: usize, end: usize) -> bool {
    let digits: String = text[start..end].chars().filter(char::is_ascii_digit).collect();
    let (a, b) = digits.split_at(3);
    let (a, b): (u32, u32) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
    if text[end..].trim_start().starts_with('/') {
        return false;
    }
    let rising = b > a;
    !(rising && words_before(text, start, 2).iter().any(|w| READING_LABELS.contains(&w.as_str())))
}

/// A code after "#" that starts with a digit must hold four digits and be
/// no range of readings ("PA# 34-40/24-30").
fn hash_code(text: &str, start: usize, end: usize) -> bool {
    let code = &text[start..end];
    if !code.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    let digits = code.bytes().filter(u8::is_ascii_digit).count();
    let range = code.split_once('-').is_some_and(|(x, y)| {
        x.len() <= 3 && y.len() <= 3 && x.bytes().all(|c| c.is_ascii_digit()) && y.bytes().all(|c| c.is_ascii_digit())
    });
    digits >= 4 && !range && !text[end..].starts_with('/')
}

/// A street address whose inner words are street-name words: no function
/// word, dose unit, drug or misspelling ("4.0 KCL NOT GIVEN DR", "4 MG
/// SQ", "3 EPSIODES ST"), not a decimal's tail, and no "DR" that is the
/// title of the name after it.
fn address(text: &str, start: usize, end: usize, lex: &Lexicon) -> bool {
    let b = text.as_bytes();
    if start >= 2 && b[start - 1] == b'.' && b[start - 2].is_ascii_digit() {
        return false;
    }
    // "10/3 PERSANTINE...", "V1-5 WO ACUTE ST": the number ends a fraction
    // or a range; a house number starts its own word.
    if start >= 1 && matches!(b[start - 1], b'/' | b'-') {
        return false;
    }
    let words: Vec<&str> = text[start..end].split_whitespace().collect();
    // "4U REG SQ": units of insulin, not an apartment letter.
    if words[0].ends_with(['U', 'u']) {
        return false;
    }
    let Some((suffix, inner)) = words[1..].split_last() else {
        return true;
    };
    for (k, w) in inner.iter().enumerate() {
        let up = w.trim_end_matches('.').to_ascii_uppercase();
        // "3 UPRBCS. CT": a sentence ends inside; only an abbreviation
        // ("Mt.", "N.") carries a period within an address.
        if w.ends_with('.') && up.len() > 3 {
            return false;
        }
        if k == 0 && matches!(up.as_str(), "ST" | "ND" | "RD" | "TH") {
            return false;
        }
        if up.len() == 1 && k == 0 {
            continue; // a compass point ("N. Calvert St")
        }
        let f = lex.flags(&up);
        // A capitalised street name may be spelt like no dictionary word
        // ("Endeavour Lane"); the misspelling test is for shouted shorthand.
        let titled = w.chars().next().is_some_and(char::is_uppercase) && w.chars().skip(1).all(|c| !c.is_uppercase());
        if f & STOP != 0
            || (f & MEDICAL != 0 && f & LAST == 0)
            || lex.cues(&up) & bit::DOSE_UNITS != 0
            || (!titled && crate::typos::near_word(lex, &up))
        {
            return false;
        }
    }
    let doctor = suffix.trim_end_matches('.').eq_ignore_ascii_case("DR")
        && text[end..].trim_start_matches([' ', '.']).starts_with(|c: char| c.is_ascii_alphabetic())
        && !text[end..].starts_with('\n');
    !doctor
}
