//! The word lists, embedded in the binary and compiled once.
//!
//! Single words go into one hash map from the upper-cased word to a set of
//! flags, so each token of a note costs one lookup whatever the number of
//! lists. Multi-word entries ("MIDDLE RIVER", "SWAN GANZ") go into an
//! Aho-Corasick automaton that finds all of them in one pass over the text.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, MatchKind, StartKind};

use crate::allow;
use crate::tokens::Token;

/// A first name (US Census 1990, faker-js).
pub(crate) const FIRST: u32 = 1;
/// A surname (US Census 1990, faker-js).
pub(crate) const LAST: u32 = 1 << 1;
/// A US city, town or county name (zip code data).
pub(crate) const PLACE: u32 = 1 << 2;
/// A common lower-case English word (SCOWL): needs context to be a name.
pub(crate) const ENGLISH: u32 = 1 << 3;
/// A medical term, drug, device or eponym: never a name or place alone.
pub(crate) const MEDICAL: u32 = 1 << 4;
/// A function word (articles, pronouns, modal verbs): never PHI.
pub(crate) const STOP: u32 = 1 << 5;
/// A facility name stem ("SACRED HEART", "GOOD SAMARITAN").
pub(crate) const FACILITY: u32 = 1 << 6;
/// A caller-supplied name: always redacted.
pub(crate) const DENY: u32 = 1 << 7;
/// A name common enough to be trusted with no context at all (rank within
/// [`ALONE_FIRST_RANK`] / [`ALONE_LAST_RANK`]). Rarer census surnames
/// ("BOLUS", "PACER", "LEVO") collide with clinical shorthand too often.
pub(crate) const FREQ: u32 = 1 << 8;
/// A very common name (top ranks): even when it is also an English word
/// ("CAROL", "GRACE", "SMITH") a name cue is enough.
pub(crate) const TOP: u32 = 1 << 9;

/// A word of some context-rule list ("DR", "DAUGHTER", "HOSPITAL"):
/// lets the rules skip their list scans for every other word.
pub(crate) const CUE: u32 = 1 << 10;

/// Set by the tokenizer on a word no other list knows that is in the
/// rare-word list ("MEDIASTINAL", "OSTOMY"): never an unknown surname. Not
/// in the word map, which stays small and fast.
pub(crate) const RARE: u32 = 1 << 12;

/// The first word of some multi-word entry: only there does the phrase
/// automaton need to run.
pub(crate) const PHRASE_HEAD: u32 = 1 << 11;

/// Census rank up to which a first name counts on its own.
const ALONE_FIRST_RANK: u32 = 5000;
/// Census rank up to which a surname counts on its own.
const ALONE_LAST_RANK: u32 = 20_000;
/// Census rank up to which a first name that is also a word takes a cue.
const TOP_FIRST_RANK: u32 = 1000;
/// Census rank up to which a surname that is also a word takes a cue.
const TOP_LAST_RANK: u32 = 3000;

const FIRST_NAMES: &str = include_str!("../data/first_names.txt");
const LAST_NAMES: &str = include_str!("../data/last_names.txt");
const PLACES: &str = include_str!("../data/places.txt");
const ENGLISH_WORDS: &str = include_str!("../data/english_words.txt");
/// SCOWL's larger list minus every word of the other lists: rare and
/// clinical words ("mediastinal", "ostomy") that would otherwise look like
/// unknown surnames.
const ENGLISH_RARE_WORDS: &str = include_str!("../data/english_words_rare.txt");
const MEDICAL_TERMS: &str = include_str!("../data/medical_terms.txt");
const STREET_SUFFIXES: &str = include_str!("../data/street_suffixes.txt");
const FACILITIES: &str = include_str!("../data/facilities.txt");

/// `NAME RANK` entries of a ranked list, with the flags their rank earns.
fn ranked(list: &'static str, kind: u32, alone: u32, top: u32) -> impl Iterator<Item = (&'static str, u32)> {
    entries(list).map(move |l| {
        let (name, rank) = l.split_once(' ').unwrap_or((l, "1"));
        let rank: u32 = rank.trim().parse().unwrap_or(u32::MAX);
        let mut f = kind;
        if rank <= alone {
            f |= FREQ;
        }
        if rank <= top {
            f |= TOP;
        }
        (name, f)
    })
}

/// Entries of an embedded list: one per line, `#` starts a comment line.
fn entries(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The key a caller's word is stored under: the key the tokenizer looks a
/// written word up by (upper case, accents folded), so a deny word "Peña"
/// finds "PEÑA" and "pena" in a note.
fn lookup_key(word: &str) -> String {
    let upper = word.trim().to_ascii_uppercase();
    if upper.is_ascii() { upper } else { crate::tokens::fold_word(&upper) }
}

/// FNV-1a: the keys are short words and the table is fixed at build time
/// (lookups cannot be made to collide more by the input), so the DoS
/// resistance of SipHash buys nothing here and its cost shows in profiles.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// All dictionaries, compiled.
#[derive(Debug)]
pub(crate) struct Lexicon {
    words: FastMap<&'static str, u32>,
    /// Cue-list bits of cue words (`cues::bit`).
    cue_bits: FastMap<&'static str, u64>,
    /// The caller's own allow and deny words (owned, so kept apart).
    extra: HashMap<String, u32>,
    phrases: AhoCorasick,
    phrase_flags: Vec<u32>,
    street_suffixes: Vec<&'static str>,
    /// `english_words_rare.txt`, apart from `words` so that map stays small
    /// and fast; asked only for words no other list knows.
    rare: std::collections::HashSet<&'static str, BuildHasherDefault<Fnv>>,
}

impl Lexicon {
    /// Loads and compiles every list. Takes tens of milliseconds: build one
    /// [`crate::Scrubber`] and reuse it.
    pub(crate) fn new(allow: &[String], deny: &[String]) -> Lexicon {
        let mut words: FastMap<&'static str, u32> =
            FastMap::with_capacity_and_hasher(200_000, BuildHasherDefault::default());
        let mut phrases: FastMap<&'static str, u32> = FastMap::default();
        let mut add = |e: &'static str, flag: u32| {
            let map = if e.contains(' ') { &mut phrases } else { &mut words };
            *map.entry(e).or_insert(0) |= flag;
        };
        for (e, f) in ranked(FIRST_NAMES, FIRST, ALONE_FIRST_RANK, TOP_FIRST_RANK) {
            add(e, f);
        }
        for (e, f) in ranked(LAST_NAMES, LAST, ALONE_LAST_RANK, TOP_LAST_RANK) {
            add(e, f);
        }
        for e in entries(PLACES) {
            add(e, PLACE);
        }
        for e in entries(ENGLISH_WORDS) {
            add(e, ENGLISH);
        }
        for e in entries(MEDICAL_TERMS) {
            add(e, MEDICAL);
        }
        for e in allow::STOP_WORDS {
            add(e, STOP);
        }
        let mut cue_bits: FastMap<&'static str, u64> = FastMap::default();
        for &(b, list) in crate::cues::REGISTRY {
            for e in list.iter() {
                add(e, CUE);
                *cue_bits.entry(e).or_insert(0) |= b;
            }
        }
        for e in entries(FACILITIES) {
            add(e, FACILITY);
        }
        let mut phrase_list: Vec<(&'static str, u32)> = phrases.into_iter().collect();
        phrase_list.sort_unstable();
        for (p, _) in &phrase_list {
            let head_len = p.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if head_len > 0 {
                *words.entry(&p[..head_len]).or_insert(0) |= PHRASE_HEAD;
            }
        }
        let phrases = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Anchored)
            .build(phrase_list.iter().map(|(p, _)| p))
            .expect("embedded phrase list fits the automaton");
        let mut extra: HashMap<String, u32> = HashMap::new();
        for w in allow {
            *extra.entry(lookup_key(w)).or_insert(0) |= MEDICAL;
        }
        for w in deny {
            *extra.entry(lookup_key(w)).or_insert(0) |= DENY;
        }
        Lexicon {
            words,
            cue_bits,
            extra,
            phrases,
            phrase_flags: phrase_list.into_iter().map(|(_, f)| f).collect(),
            street_suffixes: entries(STREET_SUFFIXES).collect(),
            rare: entries(ENGLISH_RARE_WORDS).collect(),
        }
    }

    /// Whether an upper-case word is in the rare-word list.
    pub(crate) fn is_rare(&self, upper_word: &str) -> bool {
        self.rare.contains(upper_word)
    }

    /// Cue-list bits of one upper-case word.
    pub(crate) fn cues(&self, upper_word: &str) -> u64 {
        self.cue_bits.get(upper_word).copied().unwrap_or(0)
    }

    /// Flags of one upper-case word (0 when it is in no list).
    pub(crate) fn flags(&self, upper_word: &str) -> u32 {
        let base = self.words.get(upper_word).copied().unwrap_or(0);
        if self.extra.is_empty() {
            return base;
        }
        base | self.extra.get(upper_word).copied().unwrap_or(0)
    }

    /// The longest multi-word entry starting at each token that can start
    /// one, when it ends on a word boundary, as `(start, end, flags)`.
    /// Anchored searches at phrase heads only: scanning the whole text with
    /// the automaton cost more than everything else in the dictionaries.
    pub(crate) fn phrases(&self, upper: &str, toks: &[Token]) -> Vec<(usize, usize, u32)> {
        let bytes = upper.as_bytes();
        let is_word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
        toks.iter()
            .filter(|t| t.has(PHRASE_HEAD))
            .filter_map(|t| {
                let input = Input::new(upper).span(t.start..upper.len()).anchored(Anchored::Yes);
                self.phrases.find(input)
            })
            .filter(|m| !is_word(m.end()))
            .map(|m| (m.start(), m.end(), self.phrase_flags[m.pattern().as_usize()]))
            .collect()
    }

    /// Street suffixes ("AVENUE", "LANE"), for the address pattern.
    pub(crate) fn street_suffixes(&self) -> &[&'static str] {
        &self.street_suffixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_words_are_known_apart_from_the_other_lists() {
        let lex = Lexicon::new(&[], &[]);
        assert!(lex.is_rare("MEDIASTINAL") && lex.is_rare("OSTOMY"));
        assert!(!lex.is_rare("QUACKENBUSH"));
    }
}
