//! A seeded generator of synthetic clinical notes with planted identifiers,
//! shared by the tests and the evaluation example. The identifiers are
//! obviously fake (cartoon names, 555 numbers), so the notes are safe to
//! print, and every planted span is known exactly.

#![allow(dead_code)]

/// One planted identifier: byte range and a label for reports.
#[derive(Debug, Clone)]
pub struct Planted {
    pub start: usize,
    pub end: usize,
    pub kind: &'static str,
}

/// A note and what was planted in it.
#[derive(Debug, Clone)]
pub struct Note {
    pub text: String,
    pub planted: Vec<Planted>,
}

/// A tiny deterministic PRNG (64-bit LCG): the same seed gives the same
/// notes on every machine, with no dependency.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const FIRST: &[&str] = &["Daffy", "Bugs", "Elmer", "Porky", "Wile", "Yosemite", "Tweety", "Marvin", "Lola", "Petunia"];
const LAST: &[&str] = &["Duck", "Bunny", "Fudd", "Pig", "Coyote", "Sam", "Bird", "Martian", "Runner", "Pepper"];
const TITLES: &[&str] = &["Dr.", "Dr", "DR", "Mr.", "Mrs.", "Ms.", "MRS"];
const RELATIONS: &[&str] = &["wife", "husband", "daughter", "son", "sister", "brother", "niece"];
const STREETS: &[&str] = &["Acme", "Looney", "Carrot", "Toon", "Warner"];
const SUFFIX: &[&str] = &["Street", "St.", "Avenue", "Ave", "Road", "Lane", "Drive"];
const TOWNS: &[&str] = &["Towson", "Lansdowne", "Ellicott City", "Hagerstown", "Catonsville"];
const MONTHS: &[&str] =
    &["Jan", "January", "Feb.", "March", "Apr", "June", "Jul.", "August", "Sept", "October", "Nov", "December"];
const FILLER: &[&str] = &[
    "Pt resting comfortably, vss, afebrile.",
    "NEURO: A&OX3, MAE, PERRL.",
    "CV: NSR 70-80S, NO ECTOPY, BP 110/60.",
    "RESP: LS CLEAR, SATS 97% ON 2L NC.",
    "GI: ABD SOFT, +BS, TOL DIET.",
    "GU: FOLEY CATHETER DRAINING CLEAR YELLOW URINE.",
    "Swan Ganz catheter removed, Parkinson's meds given.",
    "Pain 5/10, medicated with tylenol at 2100.",
];

/// One planted fragment: text before, the identifier pieces (each planted
/// separately, as names are scored word by word), text after.
fn fragment(rng: &mut Rng) -> (String, Vec<(String, &'static str)>, String) {
    match rng.below(18) {
        0 => {
            let t = rng.pick(TITLES);
            (format!("Seen by {t} "), vec![(rng.pick(LAST).to_string(), "name")], " today.".into())
        }
        1 => {
            let r = rng.pick(RELATIONS);
            let f = rng.pick(FIRST).to_string();
            let l = rng.pick(LAST).to_string();
            (format!("Spoke with pt's {r}, "), vec![(f, "name"), (" ".into(), ""), (l, "name")], ", at bedside.".into())
        }
        2 => {
            let m = rng.pick(MONTHS);
            ("Admitted on ".into(), vec![(format!("{m} {}", 1 + rng.below(28)), "date")], ".".into())
        }
        3 => (
            "Last BM ".into(),
            vec![(format!("{}/{}/{}", 1 + rng.below(12), 1 + rng.below(28), 2090 + rng.below(9)), "date")],
            ".".into(),
        ),
        4 => (
            "Call daughter at ".into(),
            vec![(format!("(410) 555-{:04}", rng.below(10000)), "phone")],
            " with updates.".into(),
        ),
        5 => (
            "Pager ".into(),
            vec![(format!("617.555.{:04} x{}", rng.below(10000), 10 + rng.below(90)), "phone")],
            ".".into(),
        ),
        6 => ("MRN: ".into(), vec![(format!("{:08}", rng.below(100_000_000)), "id")], ".".into()),
        7 => (
            "Lives at ".into(),
            vec![(format!("{} {} {}", 1 + rng.below(999), rng.pick(STREETS), rng.pick(SUFFIX)), "location")],
            format!(", {}, MD.", rng.pick(TOWNS)),
        ),
        8 => (
            "Email ".into(),
            vec![(format!("{}.{}@example.com", rng.pick(FIRST), rng.pick(LAST)).to_lowercase(), "email")],
            " for records.".into(),
        ),
        9 => ("".into(), vec![(format!("{} yo", 90 + rng.below(20)), "age")], " female s/p fall.".into()),
        10 => (
            "SSN ".into(),
            vec![(format!("{:03}-{:02}-{:04}", 100 + rng.below(800), 10 + rng.below(89), rng.below(10000)), "ssn")],
            " on file.".into(),
        ),
        11 => (
            "Labs drawn ".into(),
            vec![(format!("2093-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)), "date")],
            format!("T{:02}:{:02}.", rng.below(24), rng.below(60)),
        ),
        12 => ("Mail to PO Box ".into(), vec![(format!("{}", 10 + rng.below(9990)), "location")], ".".into()),
        13 => (
            format!("Lives at {} {} Street, Apt ", 1 + rng.below(999), rng.pick(STREETS)),
            vec![(format!("{}{}", 1 + rng.below(20), rng.pick(&["A", "B", "C"])), "location")],
            ".".into(),
        ),
        14 => (
            "Pacemaker UDI ".into(),
            vec![(
                format!(
                    "(01)0064316900{:04}(17)2093{:02}(21){}X{:04}",
                    rng.below(10000),
                    1 + rng.below(12),
                    rng.pick(LAST),
                    rng.below(10000)
                ),
                "id",
            )],
            " checked.".into(),
        ),
        15 => (
            "She is ".into(),
            vec![(format!("ninety-{} years old", rng.pick(&["one", "two", "three", "five", "eight"])), "age")],
            ".".into(),
        ),
        16 => {
            let account = if rng.below(2) == 0 {
                let g = |rng: &mut Rng| format!("{:04}", rng.below(10000));
                format!("4{:03} {} {} {}", rng.below(1000), g(rng), g(rng), g(rng))
            } else {
                let bban: String = (0..18).map(|_| char::from(b'0' + rng.below(10) as u8)).collect();
                iban("DE", &bban)
            };
            ("Copay refunded to ".into(), vec![(account, "id")], " as asked.".into())
        }
        _ => ("Moved from ".into(), vec![(rng.pick(TOWNS).to_string(), "location")], " last year.".into()),
    }
}

/// An IBAN for `country` and `bban` (digits) with valid ISO 13616 check
/// digits, written in groups of four.
fn iban(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let rem = rearranged.bytes().fold(0u32, |rem, b| {
        let v = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 }
    });
    let compact = format!("{country}{:02}{bban}", 98 - rem);
    compact.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// Generates `n` notes from `seed`.
pub fn notes(seed: u64, n: usize) -> Vec<Note> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let mut text = String::new();
            let mut planted = Vec::new();
            for _ in 0..(3 + rng.below(4)) {
                text.push_str(rng.pick(FILLER));
                text.push(' ');
                let (pre, parts, post) = fragment(&mut rng);
                let upper = rng.below(2) == 0;
                let case = |s: &str| if upper { s.to_uppercase() } else { s.to_string() };
                text.push_str(&case(&pre));
                for (p, kind) in parts {
                    let start = text.len();
                    text.push_str(&case(&p));
                    if !kind.is_empty() {
                        planted.push(Planted { start, end: text.len(), kind });
                    }
                }
                text.push_str(&case(&post));
                text.push(' ');
            }
            Note { text, planted }
        })
        .collect()
}
