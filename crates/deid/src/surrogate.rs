//! Surrogates: fake but consistent values in place of the identifiers found, so that a
//! de-identified note still reads as a story ("DR COYOTE CALLED MRS QUILL'S DAUGHTER") while
//! none of its facts survive.
//!
//! Each surrogate is chosen by HMAC-SHA-256 under a project key from the kind and the
//! original (compared without case): the same person, place or number gets the same
//! surrogate everywhere in a project, unrelated ones under another key, and the key cannot be
//! recovered from the output. Surrogates are drawn from plainly fictional material: invented
//! names and towns, 555-01xx telephone numbers, 999- Social Security numbers (never issued),
//! example.org addresses, TEST-NET IP addresses. Dates keep their shape with a made-up month
//! and day; four-digit years stay (Safe Harbor keeps years), and intervals between dates are
//! not preserved: use the structured date shift (`fhir`) where intervals matter.

use aws_lc_rs::hmac;

use crate::PhiKind;

const DOMAIN: &[u8] = b"phivault-deid/surrogate/v1";

const GIVEN: &[&str] = &[
    "Abner",
    "Bertha",
    "Cletus",
    "Dorinda",
    "Elmo",
    "Fenella",
    "Gus",
    "Hortense",
    "Ichabod",
    "Jolene",
    "Kermit",
    "Lulabelle",
    "Mortimer",
    "Nellie",
    "Orville",
    "Petunia",
    "Quincy",
    "Rosalind",
    "Sylvester",
    "Tilda",
    "Ulysses",
    "Velma",
    "Wilbur",
    "Xenia",
    "Yolanda",
    "Zeke",
];

/// Family names are built from two parts, 288 in all, so that two people rarely share one.
const FAMILY_HEADS: &[&str] = &[
    "Apple", "Bramble", "Cogs", "Dingle", "Ever", "Fiddle", "Gumble", "Huffle", "Ink", "Jumble", "Kettle", "Lolly",
    "Muddle", "Nutter", "Odd", "Puddle", "Quill", "Rumble", "Snicker", "Thistle", "Under", "Vinegar", "Wobble",
    "Yarrow",
];
const FAMILY_TAILS: &[&str] =
    &["white", "bush", "worth", "hopper", "green", "wick", "ton", "by", "foot", "wood", "stone", "combe"];

const PLACES: &[&str] = &[
    "Acorn Hollow",
    "Briar Glen",
    "Cobble Creek",
    "Dewdrop Vale",
    "Elderberry Falls",
    "Foxglove Heights",
    "Gumdrop Junction",
    "Hazelnut Harbor",
    "Ivybridge Flats",
    "Juniper Knoll",
    "Kettle Pond",
    "Lilac Ridge",
    "Maple Hollow",
    "Nettle Bend",
    "Oakmoss Crossing",
    "Pinecone Point",
    "Quartz Meadow",
    "Rosehip Grove",
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The project key, ready to choose surrogates.
pub struct Surrogates {
    key: hmac::Key,
}

impl std::fmt::Debug for Surrogates {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Surrogates(..)")
    }
}

impl Surrogates {
    /// Surrogates keyed on `project_key`: the same key gives the same surrogates.
    pub fn new(project_key: &[u8]) -> Surrogates {
        Surrogates { key: hmac::Key::new(hmac::HMAC_SHA256, project_key) }
    }

    /// 32 pseudo-random bytes for `original` of `kind`.
    fn draw(&self, kind: PhiKind, original: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(kind.placeholder().as_bytes());
        ctx.update(&[0]);
        ctx.update(original.trim().to_lowercase().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The surrogate for `original`, a span of `kind`.
    pub fn surrogate(&self, kind: PhiKind, original: &str) -> String {
        let r = self.draw(kind, original);
        let pick = |list: &[&'static str], at: usize| list[usize::from(r[at % 32]) % list.len()];
        let n = |at: usize| u32::from(r[at % 32]);
        match kind {
            PhiKind::Name => {
                // Word by word, so that "Daffy Duck" and a later "Mr. Duck" agree.
                let words: Vec<&str> = original.split_whitespace().collect();
                let count = words.iter().filter(|w| w.chars().any(char::is_alphabetic)).count();
                let mut out = Vec::with_capacity(words.len());
                let mut seen = 0;
                for word in &words {
                    if !word.chars().any(char::is_alphabetic) {
                        out.push((*word).to_owned());
                        continue;
                    }
                    seen += 1;
                    let core: String = word.chars().filter(|c| c.is_alphabetic()).collect();
                    let w = self.draw(PhiKind::Name, &core);
                    // Initials stay initials; the last word of several is a family name.
                    let fake = if core.chars().count() == 1 {
                        let letter = char::from(b'A' + w[0] % 26);
                        format!("{letter}{}", if word.ends_with('.') { "." } else { "" })
                    } else if seen == count {
                        let head = FAMILY_HEADS[usize::from(w[0]) % FAMILY_HEADS.len()];
                        format!("{head}{}", FAMILY_TAILS[usize::from(w[1]) % FAMILY_TAILS.len()])
                    } else {
                        GIVEN[usize::from(w[0]) % GIVEN.len()].to_owned()
                    };
                    out.push(match_case(word, &fake));
                }
                out.join(" ")
            }
            PhiKind::Location => match_case(original, pick(PLACES, 0)),
            PhiKind::Date => fake_date(original, &r),
            PhiKind::Phone => format!("555-01{:02}", n(1) % 100),
            PhiKind::Ssn => format!("999-{:02}-{:04}", 10 + n(1) % 90, ((n(2) << 8) | n(3)) % 10_000),
            PhiKind::Id => {
                // Same length and layout: every digit and letter redrawn.
                original
                    .chars()
                    .enumerate()
                    .map(|(i, c)| {
                        let b = r[(i + 4) % 32];
                        if c.is_ascii_digit() {
                            char::from(b'0' + b % 10)
                        } else if c.is_ascii_uppercase() {
                            char::from(b'A' + b % 26)
                        } else if c.is_ascii_lowercase() {
                            char::from(b'a' + b % 26)
                        } else {
                            c
                        }
                    })
                    .collect()
            }
            PhiKind::Age => "90+".to_owned(),
            PhiKind::Email => format!("{}{}@example.org", pick(GIVEN, 0).to_lowercase(), n(1) % 100),
            PhiKind::Url => format!("https://example.org/{:04x}", (n(1) << 8) | n(2)),
            PhiKind::Ip => format!("192.0.2.{}", 1 + n(1) % 254),
        }
    }

    /// [`Surrogates::surrogate`], never equal to the original: a real value that happens to
    /// be drawn (a patient who is really called "Quincy", a real 555-01 number) is moved on.
    fn distinct(&self, kind: PhiKind, original: &str) -> String {
        let fake = self.surrogate(kind, original);
        if !fake.eq_ignore_ascii_case(original.trim()) || kind == PhiKind::Age {
            return fake;
        }
        // Change the last digit, or append a letter to a name or place.
        let mut chars: Vec<char> = fake.chars().collect();
        match chars.iter().rposition(char::is_ascii_digit) {
            Some(i) => {
                let d = chars[i].to_digit(10).unwrap_or(0);
                chars[i] = char::from_digit((d + 1) % 10, 10).unwrap_or('0');
                chars.into_iter().collect()
            }
            None => format!("{fake}e"),
        }
    }

    /// `text` with each span (sorted, non-overlapping) replaced by its surrogate.
    pub(crate) fn apply(&self, text: &str, spans: &[crate::PhiSpan]) -> String {
        let mut out = String::with_capacity(text.len() + spans.len() * 4);
        let mut at = 0;
        for s in spans {
            out.push_str(&text[at..s.start]);
            out.push_str(&self.distinct(s.kind, &text[s.start..s.end]));
            at = s.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// `fake` written the way `like` is: all upper case, all lower case, or as given.
fn match_case(like: &str, fake: &str) -> String {
    let letters: Vec<char> = like.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        fake.to_uppercase()
    } else if !letters.is_empty() && letters.iter().all(|c| c.is_lowercase()) {
        fake.to_lowercase()
    } else {
        fake.to_owned()
    }
}

/// A date of the same shape: month names become a made-up month, numbers a made-up month
/// or day (1-12 stays a month, 13-31 a day up to 28), two-digit years are redrawn and
/// four-digit years kept.
fn fake_date(original: &str, r: &[u8; 32]) -> String {
    let mut out = String::with_capacity(original.len());
    let mut draw = 0usize;
    let mut next = || {
        draw += 1;
        u32::from(r[draw % 32])
    };
    let chars: Vec<char> = original.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let value: u32 = digits.parse().unwrap_or(0);
            // Every component but a four-digit year differs from the original's.
            let fake = match (digits.len(), value) {
                (4, _) => digits.clone(),
                (2, 32..) => format!("{:02}", (value + 1 + next() % 99) % 100),
                (_, 1..=12) => ((value + next() % 11) % 12 + 1).to_string(),
                _ => {
                    let day = 1 + next() % 28;
                    (if day == value { day % 28 + 1 } else { day }).to_string()
                }
            };
            let fake = if digits.len() == 2 && fake.len() == 1 { format!("0{fake}") } else { fake };
            out.push_str(&fake);
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let is_month = MONTHS.iter().any(|m| m.to_lowercase().starts_with(&word.to_lowercase()) && word.len() >= 3);
            if is_month {
                let month = MONTHS[(next() % 12) as usize];
                let month = if word.len() == 3 || word.ends_with('.') { &month[..3] } else { month };
                out.push_str(&match_case(&word, month));
            } else {
                // Ordinal suffixes, "of", weekday names: kept as written.
                out.push_str(&word);
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogates_are_consistent_per_key_and_fictional() {
        let a = Surrogates::new(b"project a");
        let b = Surrogates::new(b"project b");
        // The same person whatever the case the note writes them in (the case is kept).
        assert_eq!(a.surrogate(PhiKind::Name, "Daffy Duck").to_uppercase(), a.surrogate(PhiKind::Name, "DAFFY DUCK"));
        let last = |s: String| s.split_whitespace().last().map(str::to_owned);
        assert_eq!(last(a.surrogate(PhiKind::Name, "Daffy Duck")), last(a.surrogate(PhiKind::Name, "Mr. Duck")));
        let differs = ["Daffy Duck", "Porky Pig", "Elmer Fudd", "Tweety Bird"]
            .iter()
            .any(|n| a.surrogate(PhiKind::Name, n) != b.surrogate(PhiKind::Name, n));
        assert!(differs, "another key, other surrogates");
        assert!(a.surrogate(PhiKind::Phone, "(555) 867-5309").starts_with("555-01"));
        assert!(a.surrogate(PhiKind::Ssn, "123-45-6789").starts_with("999-"));
        assert!(a.surrogate(PhiKind::Email, "daffy@looney.example").ends_with("@example.org"));
        assert!(a.surrogate(PhiKind::Ip, "10.1.2.3").starts_with("192.0.2."));
        assert_eq!(a.surrogate(PhiKind::Age, "97"), "90+");
        let mrn = a.surrogate(PhiKind::Id, "MRN A123456789");
        assert_eq!(mrn.len(), "MRN A123456789".len());
        assert_ne!(mrn, "MRN A123456789");
    }

    #[test]
    fn names_keep_case_initials_and_places_are_invented() {
        let s = Surrogates::new(b"k");
        let upper = s.surrogate(PhiKind::Name, "DAFFY DUCK");
        assert_eq!(upper, upper.to_uppercase());
        assert!(!upper.contains("DAFFY") && !upper.contains("DUCK"));
        let initial = s.surrogate(PhiKind::Name, "W.");
        assert_eq!(initial.len(), 2);
        assert!(initial.ends_with('.'));
        let place = s.surrogate(PhiKind::Location, "Burbank");
        assert!(PLACES.contains(&place.as_str()), "{place}");
    }

    #[test]
    fn dates_keep_their_shape_and_their_year() {
        let s = Surrogates::new(b"k");
        let separators = |t: &str| t.chars().filter(|c| !c.is_alphanumeric()).collect::<String>();
        for original in ["3/24/17", "04/17/1937", "March 24th", "12-01-2020"] {
            let fake = s.surrogate(PhiKind::Date, original);
            assert_eq!(separators(&fake), separators(original), "{original} -> {fake}");
            assert_eq!(fake, s.surrogate(PhiKind::Date, original), "consistent");
        }
        assert!(s.surrogate(PhiKind::Date, "04/17/1937").ends_with("/1937"), "the year stays");
        let month = s.surrogate(PhiKind::Date, "March 24th");
        assert!(month.ends_with("th") && MONTHS.iter().any(|m| month.starts_with(m)), "{month}");
        let day = s.surrogate(PhiKind::Date, "3/24/17");
        let parts: Vec<u32> = day.split('/').map(|p| p.parse().expect("number")).collect();
        assert!((1..=12).contains(&parts[0]) && (1..=28).contains(&parts[1]), "{day}");
    }
}
