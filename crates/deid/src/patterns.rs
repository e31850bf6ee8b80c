//! Identifiers with a shape: dates, phone numbers, e-mail, web and IP
//! addresses, SSNs, record numbers, zip codes and ages over 89.
//!
//! Rust's `regex` runs in time linear in the input, so no pattern here can
//! blow up on hostile text. Word boundaries are the ASCII kind (`(?-u:\b)`)
//! because the Unicode kind forces the slow engine on non-ASCII text.

use regex::Regex;

use crate::checks::Check;
use crate::dictionary::Lexicon;
use crate::span::{PhiKind, PhiSpan};

/// Month names and their usual abbreviations.
const MONTH: &str = r"(?:JAN(?:UARY)?|FEB(?:RUARY)?|MAR(?:CH)?|APR(?:IL)?|MAY|JUNE?|JULY?|AUG(?:UST)?|SEP(?:T(?:EMBER)?)?|OCT(?:OBER)?|NOV(?:EMBER)?|DEC(?:EMBER)?)";
/// A day of the month, with an optional ordinal suffix ("22nd").
const DAY: &str = r"(?:3[01]|[12][0-9]|0?[1-9])(?:ST|ND|RD|TH)?";
/// US state names and postal abbreviations. States are not PHI, but a zip
/// code or a city right before one is.
#[rustfmt::skip]
pub(crate) const STATE_LIST: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO",
    "CONNECTICUT", "DELAWARE", "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA",
    "IOWA", "KANSAS", "KENTUCKY", "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN",
    "MINNESOTA", "MISSISSIPPI", "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA", "NEW HAMPSHIRE",
    "NEW JERSEY", "NEW MEXICO", "NEW YORK", "NORTH CAROLINA", "NORTH DAKOTA", "OHIO", "OKLAHOMA",
    "OREGON", "PENNSYLVANIA", "RHODE ISLAND", "SOUTH CAROLINA", "SOUTH DAKOTA", "TENNESSEE",
    "TEXAS", "UTAH", "VERMONT", "VIRGINIA", "WASHINGTON", "WEST VIRGINIA", "WISCONSIN", "WYOMING",
];

/// Whether an upper-case word is a US state name or postal abbreviation.
pub(crate) fn is_state(upper_word: &str) -> bool {
    STATE_LIST.contains(&upper_word)
}

/// One compiled pattern: the regex, what it finds, and which capture group
/// is the identifier (0 = the whole match; context words stay visible).
#[derive(Debug)]
struct Pattern {
    re: Regex,
    kind: PhiKind,
    group: usize,
    /// The second look a match gets before it counts (`checks.rs`):
    /// slash dates without a year collide with pain scores, addresses
    /// with "GIVEN PER DR", local phones with ranges of readings.
    check: Check,
    /// Words at least one of which every match contains (upper case): a
    /// note holding none of them is skipped without a regex pass, which
    /// keeps rare label patterns nearly free.
    needles: &'static [&'static str],
}

/// The compiled pattern set, built once by [`crate::Scrubber::new`].
#[derive(Debug)]
pub(crate) struct Patterns {
    list: Vec<Pattern>,
}

fn pat(src: &str, kind: PhiKind, group: usize) -> Pattern {
    Pattern {
        // The sources are constants of this file, so a failure is a bug
        // caught by every test, not a runtime condition.
        re: Regex::new(&format!("(?i){src}")).expect("built-in pattern compiles"),
        kind,
        group,
        check: Check::None,
        needles: &[],
    }
}

impl Patterns {
    /// Compiles every pattern. `street_suffixes` come from the dictionary so
    /// the address pattern and the word lists agree.
    pub(crate) fn new(street_suffixes: &[&str]) -> Patterns {
        let b = r"(?-u:\b)";
        let states = format!("(?:{})", STATE_LIST.join("|"));
        let mut list = vec![
            // --- dates
            Pattern {
                check: Check::ShortDate,
                ..pat(
                    r"(?:^|[^0-9/.]|[A-Z]\.)((?:1[0-2]|0?[1-9])/(?:3[01]|[12][0-9]|0?[1-9])(?:/(?:[0-9]{4}|[0-9]{2}))?)(?:[^0-9]|$)",
                    PhiKind::Date,
                    1,
                )
            },
            // Month and two-digit year ("AVR 8/88"): the month is PHI.
            Pattern {
                check: Check::ShortDate,
                ..pat(
                    r"(?:^|[^0-9/.]|[A-Z]\.)((?:1[0-2]|0?[1-9])/(?:3[2-9]|[4-9][0-9]|0[0-9]))(?:[^0-9/%]|$)",
                    PhiKind::Date,
                    1,
                )
            },
            // "the 11th": a day of the month on its own.
            Pattern {
                check: Check::DayOrdinal,
                ..pat(&format!(r"{b}THE[ \t]+((?:3[01]|[12][0-9]|0?[1-9])(?:ST|ND|RD|TH)){b}"), PhiKind::Date, 1)
            },
            // "3-24-17", "3.24.17": one separator throughout, and not the
            // tail of a decimal ("7.22-72" is a blood gas, "3.6-2.58" a
            // chain of readings).
            pat(
                &format!(
                    r"(?:^|[^0-9.])((?:1[0-2]|0?[1-9])-(?:3[01]|[12][0-9]|0?[1-9])-(?:[0-9]{{4}}|[0-9]{{2}})|(?:1[0-2]|0?[1-9])\.(?:3[01]|[12][0-9]|0?[1-9])\.(?:[0-9]{{4}}|[0-9]{{2}})){b}"
                ),
                PhiKind::Date,
                1,
            ),
            // "returned to OR on 7-8 for coiling": a month and a day joined by a
            // hyphen, no year, after a preposition of time. Most such pairs are
            // ranges ("on 2-4 L", "from 2-4 units"), so the check wants a
            // function word or a verb in the past right after it.
            Pattern {
                check: Check::HyphenDay,
                ..pat(
                    &format!(
                        r"{b}(?:ON|SINCE|FROM|UNTIL|THRU|THROUGH)[ \t]+((?:1[0-2]|0?[1-9])-(?:3[01]|[12][0-9]|0?[1-9])){b}"
                    ),
                    PhiKind::Date,
                    1,
                )
            },
            // ISO 8601, also as the date of a timestamp ("2093-04-17T10:30", as
            // systems write it into notes).
            pat(
                &format!(r"{b}((?:19|20)[0-9]{{2}}[-/.](?:1[0-2]|0?[1-9])[-/.](?:3[01]|[12][0-9]|0?[1-9]))(?:{b}|T)"),
                PhiKind::Date,
                1,
            ),
            // "July 22", "Jul. 22nd", "MAY 16, 2015", "Nov 1-2"
            pat(
                &format!(
                    r"{b}{MONTH}\.?[ \t]*(?:THE[ \t]+)?{DAY}{b}(?:[ \t]*(?:-+>?|TO|THRU)[ \t]*{DAY}{b})?(?:,?[ \t]*(?:[0-9]{{4}}|'[0-9]{{2}}){b})?"
                ),
                PhiKind::Date,
                0,
            ),
            // "22 Jul 2093", "22nd of July", "21 Apr, 93", and a range of days
            // ("1->2 Nov", "3 to 5 Dec"): the first day is as telling.
            pat(
                &format!(
                    r"{b}(?:{DAY}[ \t]*(?:-+>?|TO|THRU)[ \t]*)?{DAY}[ \t]*(?:OF[ \t]+)?-?{MONTH}{b}\.?(?:(?:,[ \t]*[0-9]{{2}}|,?[ \t-]*(?:[0-9]{{4}}|'[0-9]{{2}})){b})?"
                ),
                PhiKind::Date,
                0,
            ),
            // "July 2093", "Jul '93", "March of 1993": the month is a date
            // element finer than a year.
            pat(
                &format!(r"{b}{MONTH}\.?,?[ \t]*(?:OF[ \t]+)?(?:(?:19|20)[0-9]{{2}}|'[0-9]{{2}}){b}"),
                PhiKind::Date,
                0,
            ),
            // A month name on its own ("in July", "in sept."). MAY, MARCH
            // and AUGUST need "in": as words they are far more common.
            pat(
                &format!(
                    r"{b}(?:JANUARY|FEBRUARY|APRIL|JUNE|JULY|SEPTEMBER|SEPT|OCTOBER|NOVEMBER|DECEMBER|(?:IN|OF|SINCE|UNTIL|EARLY|LATE|MID)[ \t]+(?:MAY|MARCH|AUGUST|SEPT|JAN|FEB|MAR|APR|JUN|JUL|AUG|SEP|OCT|NOV|DEC)\.?){b}"
                ),
                PhiKind::Date,
                0,
            ),
            pat(
                &format!(
                    r"{b}(?:CHRISTMAS(?:[ \t]+EVE)?|THANKSGIVING|EASTER|HALLOWEEN|NEW[ \t]+YEAR'?S(?:[ \t]+(?:EVE|DAY))?|(?:MEMORIAL|LABOR|INDEPENDENCE|VALENTINE'?S|MOTHER'?S|FATHER'?S)[ \t]+DAY|FOURTH[ \t]+OF[ \t]+JULY){b}"
                ),
                PhiKind::Date,
                0,
            ),
            // "CVA 74'", "REPAIR IN 14'": a two-digit year with its
            // apostrophe after it (feet are one digit; "40'S" is a decade).
            Pattern {
                check: Check::ApostropheYear,
                ..pat(r"(?:^|[^0-9'./-])([0-9]{2})'(?:[^0-9A-Z'\x22]|$)", PhiKind::Date, 1)
            },
            // --- contact details and network addresses
            pat(r"[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}", PhiKind::Email, 0),
            pat(
                &format!(
                    r"(?:{b}(?:HTTPS?|FTP)://|{b}WWW\.)[^\s<>\x22']+|{b}[A-Z0-9-]+(?:\.[A-Z0-9-]+)*\.(?:COM|ORG|NET|EDU|GOV|IO|INFO|BIZ|US){b}(?:/[^\s<>\x22']*)?"
                ),
                PhiKind::Url,
                0,
            ),
            pat(
                &format!(
                    r"{b}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){{3}}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]){b}"
                ),
                PhiKind::Ip,
                0,
            ),
            pat(
                &format!(
                    r"{b}((?:[0-9A-F]{{1,4}}:){{7}}[0-9A-F]{{1,4}}|(?:[0-9A-F]{{1,4}}:){{1,6}}:(?:[0-9A-F]{{1,4}}(?::[0-9A-F]{{1,4}}){{0,5}})?)(?:[^0-9A-F:]|$)"
                ),
                PhiKind::Ip,
                // The address only: the character after it stays ("::1 logged").
                1,
            ),
            pat(r"(?:^|[^0-9])([0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})(?:[^0-9]|$)", PhiKind::Ssn, 1),
            pat(
                &format!(r"{b}(?:SSN|SOCIAL SECURITY(?: NUMBER| NO\.?)?)[ \t:#]*([0-9][0-9 -]{{7,10}}[0-9])"),
                PhiKind::Ssn,
                1,
            ),
            // Phones: 10 digits in any grouping, an optional extension.
            pat(
                r"(?:^|[^0-9])((?:\+?1[ .-]?)?\(?[0-9]{3}\)?[ \t]?[./-]?[ \t]?[0-9]{3}[ \t]?[./-]?[ \t]?[0-9]{4}(?:[ \t]*(?:X|EXT\.?|EXTENSION)[ \t]*[0-9]{1,5})?)(?:[^0-9]|$)",
                PhiKind::Phone,
                1,
            ),
            // 7-digit local numbers need the hyphen: bare 7-digit runs are IDs.
            Pattern {
                check: Check::LocalPhone,
                ..pat(r"(?:^|[^0-9-]|[A-Z]-)([0-9]{3}[ \t]?-[ \t]?[0-9]{4})(?:[^0-9-]|$)", PhiKind::Phone, 1)
            },
            pat(
                &format!(
                    r"{b}(?:PAGER|BEEPER|BEEP|PGR|PG|CELL|PHONE|TEL|FAX|EXT|EXTENSION|CALL BACK)[ \t]*(?:#|NO\.?|NUMBER|NUM|IS|AT|:)*[ \t]*#?([0-9]{{4,7}}){b}"
                ),
                PhiKind::Phone,
                1,
            ),
            // International numbers: a "+", a country code and groups of digits
            // ("+41 (0)39 910 43 06", "+44 20 7946 0958"); 8 to 15 digits in all,
            // so "+2 edema" and "+1 pulses" stay.
            Pattern {
                check: Check::PhoneDigits,
                needles: &["+"],
                ..pat(
                    r"(?:^|[^0-9A-Z+])(\+[0-9]{1,3}(?:[ .-]?\(0\))?(?:[ .-]?\(?[0-9]{1,5}\)?){2,6})",
                    PhiKind::Phone,
                    1,
                )
            },
            // A number after a word that announces one ("call me on 96 198448",
            // "messages to 089 72 63 41", "Phone: 446 6421") or before its kind
            // ("032 803 90 31 office", "(07700) 452 632 mobile"): any grouping, 6
            // to 15 digits in two or more groups.
            Pattern {
                check: Check::PhoneDigits,
                needles: &[
                    "CALL",
                    "REACH",
                    "ANSWERING",
                    "MESSAGE",
                    "PHONE",
                    "MOBILE",
                    "CELL",
                    "TEL",
                    "FAX",
                    "NUMBER",
                    "REGISTERED",
                ],
                ..pat(
                    &format!(
                        r"{b}(?:CALL(?:ED)?(?:[ \t]+(?:ME|HIM|HER|US|THEM))?(?:[ \t]+(?:ON|AT))?|REACH(?:ED)?[ \t]+(?:ME|HIM|HER|US|THEM)[ \t]+(?:ON|AT)|ANSWERING[ \t]+AT|MESSAGES?[ \t]+TO|(?:PHONE|MOBILE|CELL|TEL|TELEPHONE|FAX)(?:[ \t]+(?:NUMBER|NO\.?|#))?[ \t]*(?:IS|:)?|NUMBER[ \t]+IS|REGISTERED)[ \t]*(\(?[0-9]{{2,5}}\)?(?:[ .-]?\(?[0-9]{{2,5}}\)?){{1,4}}){b}"
                    ),
                    PhiKind::Phone,
                    1,
                )
            },
            Pattern {
                check: Check::PhoneDigits,
                needles: &["OFFICE", "FAX", "MOBILE", "CELL", "PHONE"],
                ..pat(
                    &format!(
                        r"(?:^|[^0-9/.:])(\(?[0-9]{{2,5}}\)?(?:[ .-]?\(?[0-9]{{2,5}}\)?){{1,4}})[ \t]*-?[ \t]*(?:OFFICE|FAX|MOBILE|CELL|HOME PHONE|WORK PHONE){b}"
                    ),
                    PhiKind::Phone,
                    1,
                )
            },
            // --- record, account and other numbers, found by their label
            pat(
                &format!(
                    r"{b}(?:MRN|MR|MEDICAL RECORD(?: NUMBER| NO)?|UNIT NO|ACCOUNT|ACCT|ID|PATIENT ID|MEMBER ID|POLICY|LICEN[CS]E|LIC|DEA|NPI|SERIAL|REF|REFERENCE|CLAIM|CERTIFICATE|CERT|VIN|PLATE|DEVICE|HICN|MEDICARE|MEDICAID|INSURANCE)\.?[ \t]*(?:#|NO\.?|NUMBER|NUM|:)*[ \t]*#?([A-Z]{{0,4}}-?[0-9][A-Z0-9-]{{3,}}){b}"
                ),
                PhiKind::Id,
                1,
            ),
            // A device's UDI in GS1 form: the device identifier and every
            // application identifier after it (expiry, lot, serial).
            Pattern { needles: &["(01)"], ..pat(r"\(01\)[0-9]{14}(?:\([0-9]{2,4}\)[A-Z0-9-]+)*", PhiKind::Id, 0) },
            // "#RG17": any number sign before a code of 4+ characters.
            Pattern {
                check: Check::HashCode,
                ..pat(r"#[ \t]?([A-Z]{1,4}[0-9][A-Z0-9-]+|[0-9][A-Z0-9-]{3,})", PhiKind::Id, 1)
            },
            // Account numbers: long bare numbers (nothing clinical has 7+
            // digits in a row), payment card numbers in groups ("4111 1111 1111
            // 1111", "3782-822463-10005"; no reading is written so), and
            // international bank account numbers, with or without spaces, when
            // their check digits hold ("DE89 3704 0044 0532 0130 00"). One
            // pattern, so one pass over the text.
            Pattern {
                check: Check::AccountNumber,
                ..pat(
                    &format!(
                        r"{b}(?:[0-9]{{7,}}|[0-9]{{4}}(?: [0-9]{{4}}){{2}} [0-9]{{1,7}}|[0-9]{{4}}(?:-[0-9]{{4}}){{2}}-[0-9]{{1,7}}|[0-9]{{4}}[ -][0-9]{{6}}[ -][0-9]{{4,5}}|(?-i:[A-Z]{{2}})[0-9]{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?){b}"
                    ),
                    PhiKind::Id,
                    0,
                )
            },
            // --- geography
            pat(&format!(r"{b}{states}\.?,?[ \t]+([0-9]{{5}}(?:-[0-9]{{4}})?){b}"), PhiKind::Location, 1),
            pat(&format!(r"{b}ZIP(?:[ \t]*CODE)?[ \t:#]*([0-9]{{5}}(?:-[0-9]{{4}})?){b}"), PhiKind::Location, 1),
            // Post-office boxes and apartments are parts of an address.
            Pattern {
                needles: &["BOX"],
                ..pat(&format!(r"{b}(P\.?[ \t]?O\.?[ \t]*BOX[ \t]*#?[ \t]*[0-9]+){b}"), PhiKind::Location, 1)
            },
            Pattern {
                needles: &["APT", "SUITE", "STE ", "STE."],
                ..pat(
                    &format!(r"{b}(?:APT|APARTMENT|SUITE|STE)\.?[ \t]*#?[ \t]*([0-9]+[A-Z]?|[A-Z][0-9]+){b}"),
                    PhiKind::Location,
                    1,
                )
            },
            // Regions named by a compass word ("the Eastern Shore", "North
            // Campus"): no town list has them, and they locate a person.
            pat(
                &format!(
                    r"{b}(?:NORTH|SOUTH|EAST|WEST|NORTHERN|SOUTHERN|EASTERN|WESTERN|NORTHEAST|NORTHWEST|SOUTHEAST|SOUTHWEST)[ \t]+(?:SHORE|COAST|CAMPUS|VALLEY|HILLS){b}"
                ),
                PhiKind::Location,
                0,
            ),
            // --- ages over 89
            pat(
                &format!(r"{b}((?:9[0-9]|1[0-2][0-9])[ \t-]*(?:YO|Y/O|Y\.O\.?|YRS?|YEARS?|Y\.?R?\.?[ \t-]*O\.?)){b}"),
                PhiKind::Age,
                1,
            ),
            pat(&format!(r"{b}(?:AGE|AGED|AGES)[ \t:]*((?:9[0-9]|1[0-2][0-9])){b}"), PhiKind::Age, 1),
            // Spelled out: "ninety-one years old", "one hundred and two yo".
            Pattern {
                needles: &["NINETY", "HUNDRED"],
                ..pat(
                    &format!(
                        r"{b}((?:NINETY(?:[ \t-]+(?:ONE|TWO|THREE|FOUR|FIVE|SIX|SEVEN|EIGHT|NINE))?|(?:ONE[ \t]+)?HUNDRED(?:[ \t-]+(?:AND[ \t]+)?[A-Z]+)?)[ \t-]*(?:YEARS?[ \t-]*OLD|YRS?[ \t-]*OLD|YO|Y/O)){b}"
                    ),
                    PhiKind::Age,
                    1,
                )
            },
        ];
        // Street addresses: a house number, 1-3 capitalised words, a
        // suffix. Case-sensitive on purpose: "4 LARGE THICK GREEN" and
        // "5 today, tolerating well" end in words that are also suffixes.
        let alt = street_suffix_alternation(street_suffixes);
        list.push(Pattern {
            re: Regex::new(&format!(
                r"{b}[0-9]{{1,6}}[A-Z]?[ \t]+(?:[NSEW]\.?[ \t]+)?(?:[A-Z][A-Za-z'.-]*[ \t]+){{1,3}}(?:{alt}){b}\.?"
            ))
            .expect("built-in pattern compiles"),
            kind: PhiKind::Location,
            group: 0,
            check: Check::Address,
            needles: &[],
        });
        Patterns { list }
    }

    /// Every pattern match in `text`, unsorted and possibly overlapping.
    pub(crate) fn find(&self, text: &str, upper: &str, lex: &Lexicon, out: &mut Vec<PhiSpan>) {
        for p in &self.list {
            if !p.needles.is_empty() && !p.needles.iter().any(|n| upper.contains(n)) {
                continue;
            }
            if p.group == 0 {
                // No capture group needed: the faster search.
                for m in p.re.find_iter(text) {
                    if !p.check.passes(text, m.start(), m.end(), lex) {
                        continue;
                    }
                    if p.kind == PhiKind::Phone && is_round_range(m.as_str()) {
                        continue;
                    }
                    out.push(PhiSpan { start: m.start(), end: m.end(), kind: p.kind });
                }
                continue;
            }
            for caps in p.re.captures_iter(text) {
                let Some(m) = caps.get(p.group) else { continue };
                if !p.check.passes(text, m.start(), m.end(), lex) {
                    continue;
                }
                if p.kind == PhiKind::Phone && is_round_range(m.as_str()) {
                    continue;
                }
                out.push(PhiSpan { start: m.start(), end: m.end(), kind: p.kind });
            }
        }
    }
}

/// Unambiguous street suffixes, each as written in upper and title case.
/// Only suffixes that are rarely plain words in notes are used ("WELL",
/// "GREEN", "RUN" and "VIEW" are suffixes too, but far more often words).
fn street_suffix_alternation(dictionary: &[&str]) -> String {
    #[rustfmt::skip]
    const SAFE: &[&str] = &[
        "STREET", "AVENUE", "ROAD", "BOULEVARD", "DRIVE", "LANE", "COURT", "TERRACE", "PARKWAY",
        "HIGHWAY", "CIRCLE", "PLACE", "SQUARE", "PIKE", "TURNPIKE", "TRAIL", "ALLEY", "EXPRESSWAY",
        "FREEWAY", "BYPASS", "PLAZA", "CRESCENT", "CAUSEWAY",
    ];
    const ABBREVIATIONS: &[&str] =
        &["ST", "AVE", "AV", "RD", "BLVD", "DR", "LN", "CT", "TER", "PKWY", "HWY", "CIR", "PL", "SQ", "TRL"];
    let mut out: Vec<String> = Vec::new();
    for s in dictionary.iter().filter(|s| SAFE.contains(s)).chain(ABBREVIATIONS) {
        out.push((*s).to_string());
        let mut title = s.to_ascii_lowercase();
        title[..1].make_ascii_uppercase();
        out.push(title);
    }
    // Suffixes that are everyday words ("on its way", "in a row") count only
    // capitalised, after a capitalised street name ("42 Wallaby Way").
    for s in ["Way", "Path", "Walk", "Row", "Loop", "Crossing", "Grove", "Ridge"] {
        out.push(s.to_owned());
    }
    out.join("|")
}

/// "800-1000", "500-1000": a range of round volumes, not a phone number.
fn is_round_range(s: &str) -> bool {
    match s.split_once('-') {
        Some((a, b)) => a.trim().ends_with('0') && b.trim().ends_with("00") && !s.contains(' '),
        None => false,
    }
}
