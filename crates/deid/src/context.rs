//! The shared view the context rules work on: the tokens of one note, their
//! labels so far, and small predicates ("is this word name-like here?").
//!
//! The rules themselves live in `names.rs` and `places.rs`. They never look
//! at a word alone when the word is ambiguous: a census surname that is also
//! an English word ("WARD", "HOPE") becomes a name only when the words
//! around it say so.

use std::cell::Cell;

use crate::dictionary::{ENGLISH, FACILITY, FIRST, FREQ, LAST, Lexicon, MEDICAL, PLACE, RARE, STOP, TOP};
use crate::span::PhiKind;
use crate::tokens::{Case, Token};

/// One note being scanned.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    /// The original text.
    pub text: &'a str,
    /// Its ASCII upper-case copy (same byte offsets).
    pub upper: &'a str,
    /// Its tokens.
    pub toks: &'a [Token],
    /// Whether capitals carry information in this note.
    pub mixed: bool,
    /// What each token has been found to be so far.
    pub labels: Vec<Option<PhiKind>>,
    /// Tokens inside a medical phrase ("SWAN GANZ"): never PHI.
    pub blocked: Vec<bool>,
    /// The word lists, for the typo check.
    lex: &'a Lexicon,
    /// Per token: 0 not checked yet, 1 no typo, 2 a typo of a listed word.
    typo: Vec<Cell<u8>>,
}

impl<'a> Ctx<'a> {
    /// A fresh view with nothing labelled.
    pub(crate) fn new(text: &'a str, upper: &'a str, toks: &'a [Token], mixed: bool, lex: &'a Lexicon) -> Self {
        let n = toks.len();
        Ctx {
            text,
            upper,
            toks,
            mixed,
            labels: vec![None; n],
            blocked: vec![false; n],
            lex,
            typo: vec![Cell::new(0); n],
        }
    }

    /// Whether token `i` (a word in no list) is a misspelt English or
    /// medical word. Computed once per token, and only when asked.
    pub(crate) fn typo(&self, i: usize) -> bool {
        let cell = &self.typo[i];
        if cell.get() == 0 {
            let t = &self.toks[i];
            let yes = t.len >= crate::typos::MIN_LEN && crate::typos::near_word(self.lex, self.up(i));
            cell.set(if yes { 2 } else { 1 });
        }
        cell.get() == 2
    }

    /// The upper-case text of token `i`.
    pub(crate) fn up(&self, i: usize) -> &'a str {
        let t = &self.toks[i];
        &self.upper[t.start..t.end]
    }

    /// Whether token `i` is in the cue list of bit `list` (`cues::bit`).
    pub(crate) fn is(&self, i: usize, list: u64) -> bool {
        i < self.toks.len() && self.toks[i].cues & list != 0
    }

    /// The text between token `i` and token `i + 1`.
    pub(crate) fn gap_after(&self, i: usize) -> &'a str {
        let end = self.toks.get(i + 1).map_or(self.text.len(), |t| t.start);
        &self.text[self.toks[i].end..end]
    }

    /// Whether tokens `i` and `i + 1` are in the same phrase: separated only
    /// by blanks, a period after an initial or title, or a hyphen.
    pub(crate) fn joined(&self, i: usize) -> bool {
        if i + 1 >= self.toks.len() {
            return false;
        }
        let g = self.gap_after(i);
        !g.is_empty()
            && g.len() <= 3
            && g.bytes().all(|c| matches!(c, b' ' | b'\t' | b'.' | b'-'))
            && g.bytes().filter(|&c| c == b'.').count() <= 1
    }

    /// Whether the gap after token `i` is short punctuation that may sit
    /// between a cue word and a name ("son, Ed", "DAUGHTER-KRISSY", "RN (Ann").
    pub(crate) fn loosely_joined(&self, i: usize) -> bool {
        if i + 1 >= self.toks.len() {
            return false;
        }
        let g = self.gap_after(i);
        g.len() <= 4
            && g.bytes()
                .all(|c| matches!(c, b' ' | b'\t' | b'.' | b'-' | b',' | b':' | b'(' | b'"' | b'\'' | b'/' | b'='))
    }

    /// Set label `k` on token `i` unless it already has one or is blocked.
    pub(crate) fn mark(&mut self, i: usize, k: PhiKind) -> bool {
        if i < self.labels.len() && self.labels[i].is_none() && !self.blocked[i] {
            self.labels[i] = Some(k);
            return true;
        }
        false
    }

    /// Set label `k` on token `i` even over a weaker guess: a context cue
    /// ("Dr.") knows better than a dictionary that also lists the word as
    /// a town.
    pub(crate) fn force(&mut self, i: usize, k: PhiKind) {
        if i < self.labels.len() && !self.blocked[i] {
            self.labels[i] = Some(k);
        }
    }

    /// A word that could be part of a name at all: not a number, not a
    /// function word, not a medical term.
    pub(crate) fn candidate(&self, i: usize) -> bool {
        let t = &self.toks[i];
        !t.numeric && t.len >= 2 && !t.has(STOP | MEDICAL) && !self.blocked[i]
    }

    /// In a mixed-case note, a capitalised word inside lower-case prose
    /// ("spoke with Carol"): a strong hint of a proper noun. Headers
    /// ("Resp Care Note") are capitalised throughout and give no such hint.
    pub(crate) fn capital_cue(&self, i: usize) -> bool {
        let t = &self.toks[i];
        self.mixed
            && t.case == Case::Title
            && !t.sentence_start
            && i > 0
            && self.toks[i - 1].case == Case::Lower
            && !self.toks[i - 1].numeric
    }

    /// A name common enough to stand alone: a frequent listed name that is
    /// not an English word (or is capitalised mid-sentence).
    pub(crate) fn dict_name(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.has(FREQ) && !t.has(ENGLISH)
    }

    /// A listed name of any rank that a context cue may vouch for: English
    /// words only when they are very common names ("CAROL") or capitalised.
    pub(crate) fn cued_name(&self, i: usize) -> bool {
        let t = &self.toks[i];
        // In a mixed-case note a name is capitalised: a lower-case English
        // word ("asked good questions") is the word, however common a name.
        let lower_word = self.mixed && t.case == Case::Lower;
        t.has(FIRST | LAST) && (!t.has(ENGLISH) || (t.has(TOP) && !lower_word) || self.capital_cue(i))
    }

    /// A word in no list at all: a surname the census missed, a foreign
    /// place name, or a typo. Taken as a name only in a name context.
    pub(crate) fn unknown(&self, i: usize) -> bool {
        self.unknown_raw(i) && !self.typo(i)
    }

    /// [`Ctx::unknown`] without the typo check, for rules whose structure
    /// says enough ("X campus", a ward and its number): "MUSKRAB" is one
    /// edit from "MACKEREL" and still a building.
    pub(crate) fn unknown_raw(&self, i: usize) -> bool {
        let t = &self.toks[i];
        !t.numeric
            && t.len >= 3
            && !t.has(FIRST | LAST | PLACE | ENGLISH | RARE | MEDICAL | STOP | FACILITY)
            && !self.blocked[i]
            && self.up(i).chars().all(|c| c.is_alphabetic() || c == '\'' || c == '\u{2019}')
    }

    /// Name-like under a cue: how strict depends on how strong the cue is.
    pub(crate) fn name_like(&self, i: usize, strength: Strength) -> bool {
        if i >= self.toks.len() || !self.candidate(i) {
            return false;
        }
        let t = &self.toks[i];
        match strength {
            // "Dr. X", "Mrs. X": any listed name, even an English word.
            Strength::Strong => t.has(FIRST | LAST) || self.unknown(i),
            // "daughter X": first names that are words ("Grace") too.
            // A town name that is no English word may be a person's name
            // too ("daughter Florence"): the relation decides.
            // "with wife Petunia", "Wife Petunia called": in mixed-case prose a
            // word capitalised right after a relation (lower-case, or capitalised
            // only because it starts the sentence) is a proper noun, whatever it
            // means as a word.
            Strength::Relation => {
                let relation = i.checked_sub(1).map(|r| &self.toks[r]);
                let capitalised_after = self.mixed
                    && t.case == Case::Title
                    && !t.sentence_start
                    && relation.is_some_and(|r| r.case == Case::Lower || (r.case == Case::Title && r.sentence_start));
                self.cued_name(i)
                    || (t.has(FIRST) && t.has(FREQ))
                    || (t.has(PLACE) && !t.has(ENGLISH))
                    || self.unknown(i)
                    || capitalised_after
            }
            Strength::Weak => self.cued_name(i) || self.unknown(i),
        }
    }

    /// "H.O.", "V.O.", "P.T.": letter, period, letter is an abbreviation
    /// (house officer, verbal order, physical therapy), not an initial.
    pub(crate) fn dotted_abbreviation(&self, i: usize) -> bool {
        self.gap_after(i) == "."
            && self.toks.get(i + 1).is_some_and(|t| t.len == 1 && !t.numeric)
            && self.toks[i].len == 1
    }

    /// A single letter standing alone as an initial ("W. QUACKENBUSH"): not
    /// the "S" of "90'S", the "O" of "I&O" or "U/O", the "A" of "A+OX3".
    pub(crate) fn initial(&self, i: usize) -> bool {
        let t = &self.toks[i];
        if t.numeric || t.len != 1 || !self.up(i).as_bytes()[0].is_ascii_alphabetic() {
            return false;
        }
        let b = self.text.as_bytes();
        // "CARAFATE-W. QUACKENBUSH": a hyphen glued to a word may precede one.
        let glued = t.start >= 2 && b[t.start - 1] == b'-' && b[t.start - 2].is_ascii_alphabetic();
        let before_ok = t.start == 0 || matches!(b[t.start - 1], b' ' | b'\t' | b'\n' | b'(' | b',') || glued;
        let after_ok = b.get(t.end).is_none_or(|c| matches!(c, b'.' | b' ' | b'\n' | b','));
        before_ok && after_ok
    }
}

/// How much a context cue vouches for the word after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strength {
    /// A personal title.
    Strong,
    /// A family relation.
    Relation,
    /// A verb or role ("spoke with", "RN").
    Weak,
}
