//! Splitting a note into words and numbers, each with its dictionary flags
//! and its written case, once, so every context rule works on the same view.

use crate::dictionary::Lexicon;

/// How a word was written. Upper-case notes carry no signal here, but in
/// mixed-case notes a capitalised word mid-sentence is a strong name cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// "SMITH"
    Upper,
    /// "smith"
    Lower,
    /// "Smith"
    Title,
    /// "McLaughlin", "iPad"
    Mixed,
}

/// One word or number of the note.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
    /// Whether it is a run of digits.
    pub numeric: bool,
    /// How it was written.
    pub case: Case,
    /// Dictionary flags of its upper-case form (possessive "'S" removed).
    pub flags: u32,
    /// Bits of the cue lists it is in (`cues::bit`).
    pub cues: u64,
    /// Number of letters (a cheap stand-in for "is it an initial").
    pub len: usize,
    /// Whether the token starts a sentence or line, where capitals say nothing.
    pub sentence_start: bool,
}

impl Token {
    /// Whether any of `f` is set.
    pub(crate) fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }
}

/// Byte length of the letter starting at byte `i` of `text`, or 0: ASCII
/// letters, and any other character Unicode calls alphabetic ("é", "ñ",
/// "ł", "ễ"), so that "José Muñoz" is two words, not pieces of words. Other
/// non-ASCII characters (dashes, curly quotes, spaces) separate words.
fn letter_len(text: &str, i: usize) -> usize {
    let b = text.as_bytes()[i];
    if b.is_ascii_alphabetic() {
        return 1;
    }
    if b < 0x80 || !text.is_char_boundary(i) {
        return 0;
    }
    text[i..].chars().next().filter(|c| c.is_alphabetic()).map_or(0, char::len_utf8)
}

/// Byte length of an apostrophe at `i`, straight or curly (U+2019, as word
/// processors write "O’Brien"), or 0.
fn apostrophe_len(text: &str, i: usize) -> usize {
    match text.as_bytes()[i] {
        b'\'' => 1,
        0xE2 if text[i..].starts_with('\u{2019}') => 3,
        _ => 0,
    }
}

/// The ASCII letters of an accented Latin letter ("É" → "E", "Ñ" → "N",
/// "Ł" → "L", "ß" → "SS"), so names written with accents find their entry
/// in the name lists, which are ASCII. Other letters have none.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'À'..='Å' | 'à'..='å' | 'Ā' | 'ā' | 'Ă' | 'ă' | 'Ą' | 'ą' => "A",
        'Æ' | 'æ' => "AE",
        'Ç' | 'ç' | 'Ć' | 'ć' | 'Ĉ' | 'ĉ' | 'Ċ' | 'ċ' | 'Č' | 'č' => "C",
        'Ð' | 'ð' | 'Ď' | 'ď' | 'Đ' | 'đ' => "D",
        'È'..='Ë' | 'è'..='ë' | 'Ē' | 'ē' | 'Ĕ' | 'ĕ' | 'Ė' | 'ė' | 'Ę' | 'ę' | 'Ě' | 'ě' => "E",
        'Ĝ' | 'ĝ' | 'Ğ' | 'ğ' | 'Ġ' | 'ġ' | 'Ģ' | 'ģ' => "G",
        'Ĥ' | 'ĥ' | 'Ħ' | 'ħ' => "H",
        'Ì'..='Ï' | 'ì'..='ï' | 'Ĩ' | 'ĩ' | 'Ī' | 'ī' | 'Ĭ' | 'ĭ' | 'Į' | 'į' | 'İ' | 'ı' => "I",
        'Ĵ' | 'ĵ' => "J",
        'Ķ' | 'ķ' => "K",
        'Ĺ' | 'ĺ' | 'Ļ' | 'ļ' | 'Ľ' | 'ľ' | 'Ŀ' | 'ŀ' | 'Ł' | 'ł' => "L",
        'Ñ' | 'ñ' | 'Ń' | 'ń' | 'Ņ' | 'ņ' | 'Ň' | 'ň' => "N",
        'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' | 'Ō' | 'ō' | 'Ŏ' | 'ŏ' | 'Ő' | 'ő' => "O",
        'Œ' | 'œ' => "OE",
        'Ŕ' | 'ŕ' | 'Ŗ' | 'ŗ' | 'Ř' | 'ř' => "R",
        'Ś' | 'ś' | 'Ŝ' | 'ŝ' | 'Ş' | 'ş' | 'Š' | 'š' => "S",
        'ß' => "SS",
        'Ţ' | 'ţ' | 'Ť' | 'ť' | 'Ŧ' | 'ŧ' => "T",
        'Þ' | 'þ' => "TH",
        'Ù'..='Ü' | 'ù'..='ü' | 'Ũ' | 'ũ' | 'Ū' | 'ū' | 'Ŭ' | 'ŭ' | 'Ů' | 'ů' | 'Ű' | 'ű' | 'Ų' | 'ų' => {
            "U"
        }
        'Ŵ' | 'ŵ' => "W",
        'Ý' | 'ý' | 'ÿ' | 'Ŷ' | 'ŷ' | 'Ÿ' => "Y",
        'Ź' | 'ź' | 'Ż' | 'ż' | 'Ž' | 'ž' => "Z",
        _ => return None,
    })
}

/// The upper-case ASCII key a non-ASCII word is looked up by: accents
/// folded, curly apostrophes straightened; letters with no ASCII form kept
/// (upper-cased), so such a word is simply in no list.
pub(crate) fn fold_word(word: &str) -> String {
    let mut key = String::with_capacity(word.len());
    for c in word.chars() {
        match fold(c) {
            Some(a) => key.push_str(a),
            None if c == '\u{2019}' => key.push('\''),
            None => key.extend(c.to_uppercase()),
        }
    }
    key
}

/// Splits `text` (and its ASCII upper-case copy `upper`, same byte offsets)
/// into tokens. Words are letter runs joined by inner apostrophes
/// ("O'BRIEN", "MARY'S"); hyphens split ("KESSLER-ADVENTIST" is two words).
pub(crate) fn tokenize(text: &str, upper: &str, lex: &Lexicon) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() / 5);
    let mut i = 0;
    let mut key = String::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Token {
                start: s,
                end: i,
                numeric: true,
                case: Case::Lower,
                flags: 0,
                cues: 0,
                len: i - s,
                sentence_start: false,
            });
            continue;
        }
        if letter_len(text, i) == 0 {
            i += if c < 0x80 { 1 } else { text[i..].chars().next().map_or(1, char::len_utf8) };
            continue;
        }
        let s = i;
        loop {
            while i < b.len() {
                let n = letter_len(text, i);
                if n == 0 {
                    break;
                }
                i += n;
            }
            // An apostrophe between letters stays inside the word.
            let a = if i < b.len() { apostrophe_len(text, i) } else { 0 };
            if a > 0 && i + a < b.len() && letter_len(text, i + a) > 0 {
                i += a;
                continue;
            }
            break;
        }
        let folded;
        let word = if upper[s..i].is_ascii() {
            &upper[s..i]
        } else {
            folded = fold_word(&upper[s..i]);
            folded.as_str()
        };
        let flags = if let Some(q) = word.find('\'').filter(|&q| !is_name_apostrophe(word, q)) {
            // Contractions ("I'M", "DON'T") are never names; possessives
            // look up their base ("MARY'S").
            let base = word.strip_suffix("'S").filter(|b| !b.contains('\''));
            match base {
                Some(b) if q + 2 == word.len() => lex.flags(b),
                _ => crate::dictionary::STOP,
            }
        } else if word.contains('\'') {
            let base = word.strip_suffix("'S").unwrap_or(word);
            key.clear();
            key.extend(base.chars().filter(|&ch| ch != '\''));
            lex.flags(&key) | lex.flags(base)
        } else {
            let f = lex.flags(word);
            if f != 0 {
                f
            } else if drug_stem(word) || clinical_ending(word) {
                crate::dictionary::MEDICAL
            } else if lex.is_rare(word) {
                crate::dictionary::RARE
            } else {
                0
            }
        };
        let cues = if flags & crate::dictionary::CUE != 0 { lex.cues(word) } else { 0 };
        let case = case_of(&text[s..i]);
        let sentence_start = starts_sentence(b, s);
        let len = if upper[s..i].is_ascii() { i - s } else { text[s..i].chars().count() };
        out.push(Token { start: s, end: i, numeric: false, case, flags, cues, len, sentence_start });
    }
    out
}

/// Endings of drug names (USAN stems: "-MYCIN", "-OLOL", "-PRAZOLE").
/// A word in no list with one of these endings is a drug, not an unknown
/// surname or town: no list of drugs can keep up with new ones, and these
/// endings almost never end a name.
#[rustfmt::skip]
const DRUG_STEMS: &[&str] = &[
    "MYCIN", "MICIN", "CILLIN", "CYCLINE", "OXACIN", "AZOLE", "AZOLAM", "AZEPAM", "OLOL",
    "PRIL", "PRILAT", "SARTAN", "STATIN", "TIDINE", "PARIN", "FUNGIN", "OXETINE", "TRIPTYLINE",
    "DIPINE", "ISONE", "ASONE", "OLONE", "CODONE", "MORPHONE", "CAINE", "CURONIUM", "SEMIDE",
    "THIAZIDE", "PENEM", "ALAZINE", "AZINE", "PAMIL", "TEPLASE", "IRUDIN", "GLIPTIN", "GLIFLOZIN",
    "ZOLAMIDE", "LUKAST", "TEROL", "VUDINE", "CICLOVIR", "NAVIR", "TEGRAVIR", "BARBITAL",
    "ZOSIN", "TRIPTAN", "DRONATE", "PROFEN", "OXICAM", "SETRON", "PRAMINE", "PERIDOL",
    "APINE", "IDONE", "ZODONE", "GLITAZONE", "FIBRATE", "XABAN", "GATRAN", "GREL", "NIDAZOLE",
];

/// Whether an upper-case word of at least six letters ends in a drug stem.
fn drug_stem(word: &str) -> bool {
    word.len() >= 6 && DRUG_STEMS.iter().any(|s| word.ends_with(s))
}

/// Greek and Latin endings of clinical terms ("TACHYPNEA", "COLECTOMY",
/// "HYPOXEMIA"). Like the drug stems, they cover the terms no list holds;
/// none ends a surname of the census list except "-EMIA" (two of seven
/// letters, below the length floor). "-ITIS" is left out: it ends 22
/// census surnames ("-AITIS" is Lithuanian, "-ANITIS" Greek), and a real
/// surname was lost to it on the development half.
#[rustfmt::skip]
const CLINICAL_ENDINGS: &[&str] = &[
    "PNEA", "PNEIC", "EMIA", "EMIC", "OSIS", "OTIC", "ECTOMY", "OTOMY", "OSTOMY", "PLASTY",
    "ALGIA", "URIA", "CARDIA", "PENIA", "SCOPY", "LYSIS", "TROPHY", "PLEGIA", "PARESIS", "RRHEA",
    "RRHAGE", "ODYNIA", "MEGALY", "PATHY", "CENTESIS", "GRAPHY", "ECTASIS",
];

/// Whether an upper-case word of at least eight letters ends like a clinical term.
fn clinical_ending(word: &str) -> bool {
    word.len() >= 8 && CLINICAL_ENDINGS.iter().any(|s| word.ends_with(s))
}

/// "O'BRIEN", "D'ANGELO": an apostrophe after a one-letter prefix and
/// before at least three letters is part of a surname.
fn is_name_apostrophe(word: &str, q: usize) -> bool {
    q == 1 && word.len() >= 5 && matches!(word.as_bytes()[0], b'O' | b'D' | b'L')
}

fn case_of(w: &str) -> Case {
    let letters = || w.chars().filter(|c| c.is_alphabetic());
    let upper = letters().filter(|c| c.is_uppercase()).count();
    let total = letters().count();
    if upper == total {
        Case::Upper
    } else if upper == 0 {
        Case::Lower
    } else if w.chars().next().is_some_and(char::is_uppercase) && upper == 1 {
        Case::Title
    } else {
        Case::Mixed
    }
}

/// True after start of text, a line break, or sentence punctuation.
fn starts_sentence(b: &[u8], s: usize) -> bool {
    let mut j = s;
    while j > 0 {
        j -= 1;
        match b[j] {
            b' ' | b'\t' | b'"' | b'(' | b'-' | b'*' => continue,
            b'\n' | b'\r' | b'.' | b':' | b'!' | b'?' | b';' => return true,
            _ => return false,
        }
    }
    true
}

/// Whether the text is written in mixed case: mostly lower case but with
/// capitals (at least 3% of letters). Only then do capitals carry
/// information; all-upper and all-lower notes say nothing by case.
/// Counts letters up to a bound so huge inputs stay cheap.
pub(crate) fn is_mixed_case(text: &str) -> bool {
    let (mut lower, mut total) = (0usize, 0usize);
    for &c in text.as_bytes().iter().take(1 << 16) {
        if c.is_ascii_alphabetic() {
            total += 1;
            if c.is_ascii_lowercase() {
                lower += 1;
            }
        }
    }
    let upper = total - lower;
    total > 0 && lower * 3 > total && upper * 100 >= total * 3
}
