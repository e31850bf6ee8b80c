//! Misspellings of ordinary words. Nursing notes are typed fast
//! ("RECIEVED", "SECREATIONS", "BASLINE", "DOAPMINE"); a word in no list is
//! otherwise taken as an unknown surname whenever a cue comes near it.
//! A word one edit away from an English or medical word is far more often
//! a typo than a surname the census missed, so it loses that benefit of
//! the doubt (a title such as "Dr." still makes it a name).

use crate::dictionary::{ENGLISH, Lexicon, MEDICAL};

/// Shortest word checked: shorter words have too many neighbours
/// ("HOSTY" is one edit from "HOST", "VINNY" from "TINNY"), and short
/// surnames and nicknames are common.
pub(crate) const MIN_LEN: usize = 7;

/// Whether the upper-case ASCII word `w` is one edit (deletion, insertion,
/// substitution or swap of neighbours) from an English or medical word of
/// at least four letters. Some hundred lookups: call it only for words in
/// no list, and cache the answer.
pub(crate) fn near_word(lex: &Lexicon, w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < MIN_LEN || !b.iter().all(u8::is_ascii_uppercase) {
        return false;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(b.len() + 1);
    let hit =
        |buf: &[u8]| buf.len() >= 4 && std::str::from_utf8(buf).is_ok_and(|s| lex.flags(s) & (ENGLISH | MEDICAL) != 0);
    for i in 0..b.len() {
        // Deletion: a letter too many ("GLUCCOSE").
        buf.clear();
        buf.extend_from_slice(&b[..i]);
        buf.extend_from_slice(&b[i + 1..]);
        if hit(&buf) {
            return true;
        }
        // Swap with the next letter ("RECIEVED").
        if i + 1 < b.len() && b[i] != b[i + 1] {
            buf.clear();
            buf.extend_from_slice(b);
            buf.swap(i, i + 1);
            if hit(&buf) {
                return true;
            }
        }
        // Substitution ("PROTOCAL").
        buf.clear();
        buf.extend_from_slice(b);
        for c in b'A'..=b'Z' {
            if c != b[i] {
                buf[i] = c;
                if hit(&buf) {
                    return true;
                }
            }
        }
    }
    // Insertion: a letter missing ("BASLINE", "FETANYL").
    for i in 0..=b.len() {
        buf.clear();
        buf.extend_from_slice(&b[..i]);
        buf.push(b'A');
        buf.extend_from_slice(&b[i..]);
        for c in b'A'..=b'Z' {
            buf[i] = c;
            if hit(&buf) {
                return true;
            }
        }
    }
    false
}
