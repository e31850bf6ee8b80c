//! Finding people's names: dictionary words that are names and nothing
//! else, then names that only the words around them give away.

use crate::context::{Ctx, Strength};
use crate::dictionary::{ENGLISH, FIRST, LAST, MEDICAL, PLACE, STOP};

use crate::span::PhiKind;

/// Titles that always precede a person's name.
const STRONG_TITLES: &[&str] = &[
    "DR",
    "DRS",
    "DOCTOR",
    "MR",
    "MRS",
    "MISS",
    "MISTER",
    "PROF",
    "PROFESSOR",
    "REV",
    "REVEREND",
    "RABBI",
    "FR",
    "FATHER",
    "PASTOR",
    "CHAPLAIN",
    "SISTER",
    "DRS",
];
/// Roles that often precede a name but are also ordinary nouns or
/// abbreviations ("MS" is also "mental status").
const WEAK_TITLES: &[&str] = &[
    "MS",
    "RN",
    "NP",
    "MD",
    "LPN",
    "NURSE",
    "ATTENDING",
    "RESIDENT",
    "INTERN",
    "FELLOW",
    "PCP",
    "MANAGER",
    "WORKER",
    "THERAPIST",
    "PHYSICIAN",
    "SURGEON",
    "COORDINATOR",
    "NURSES",
    "CARDIOLOGIST",
    "NEUROLOGIST",
    "ONCOLOGIST",
    "INTENSIVIST",
    "HOSPITALIST",
];
/// Credentials written after a name ("ANN SMITH, RN").
const POST_TITLES: &[&str] = &[
    "RN", "MD", "NP", "PA", "LPN", "RRT", "PHD", "CNA", "MSW", "LICSW", "LCSW", "BSN", "MSN", "CRNA", "DO", "PAC",
    "JR", "SR", "III",
];
/// Family and social relations that precede a name ("daughter Sarah").
const RELATIONS: &[&str] = &[
    "WIFE",
    "HUSBAND",
    "SPOUSE",
    "DAUGHTER",
    "DAUGHTERS",
    "DTR",
    "DAU",
    "SON",
    "SONS",
    "SISTER",
    "SISTERS",
    "SIS",
    "BROTHER",
    "BROTHERS",
    "BRO",
    "MOTHER",
    "MOM",
    "MOTHERS",
    "FATHER",
    "DAD",
    "NIECE",
    "NIECES",
    "NEPHEW",
    "NEPHEWS",
    "FRIEND",
    "FRIENDS",
    "GIRLFRIEND",
    "BOYFRIEND",
    "FIANCE",
    "FIANCEE",
    "PARTNER",
    "COUSIN",
    "AUNT",
    "UNCLE",
    "GRANDSON",
    "GRANDSONS",
    "GRANDDAUGHTER",
    "GRANDDAUGHTERS",
    "GRANDMOTHER",
    "GRANDFATHER",
    "GRANDCHILD",
    "STEPSON",
    "STEPDAUGHTER",
    "NEIGHBOR",
    "NEIGHBOUR",
    "HCP",
    "PROXY",
    "GUARDIAN",
    "DIL",
    "SIL",
    "LAW",
    "CONTACT",
    "PERSON",
    "NAMED",
    "BOTH",
    "VISITOR",
    "VISITORS",
    "CAREGIVER",
    "ROOMMATE",
];
/// English words that follow a title without being a name ("DR ORDERS").
const NOT_AFTER_TITLE: &[&str] = &[
    "ORDER",
    "ORDERS",
    "ORDERED",
    "OFFICE",
    "NOTE",
    "NOTES",
    "WANTS",
    "WANTED",
    "SAYS",
    "SAID",
    "FEELS",
    "REQUESTS",
    "REQUESTED",
    "RECOMMENDS",
    "RECOMMENDED",
    "PLANS",
    "PLANNED",
    "THINKS",
    "FELT",
    "STATES",
    "STATED",
    "WROTE",
    "WRITES",
    "SEES",
    "SAW",
    "EXAMINED",
    "EVALUATED",
    "CAME",
    "COMES",
    "WENT",
    "ASKS",
    "CONSULT",
    "CONSULTED",
    "RESPONDED",
    "REVIEWED",
    "CONTACTED",
    "OK",
    "OKAY",
    "OKD",
    "RE",
    "REGARDING",
    "ON",
    "OFFICE'S",
    "BEEPED",
    "PAGED",
    "HERE",
    "THERE",
    "STOPPED",
];

/// Words after which the next word is probably the person acted with
/// ("spoke with X", "per X", "paged X").
const VERB_CUES: &[&str] = &[
    "PER",
    "PAGED",
    "NOTIFIED",
    "INFORMED",
    "UPDATED",
    "ASKED",
    "TOLD",
    "CONTACTED",
    "PAGING",
    "CALLED",
    "CALLING",
    "PAGE",
];
/// Verbs that take a name after a preposition ("spoke WITH X", "seen BY X").
const VERB_PREP: &[(&str, &[&str])] = &[
    (
        "WITH",
        &[
            "SPOKE",
            "SPOKEN",
            "TALKED",
            "DISCUSSED",
            "MET",
            "CONSULT",
            "CONSULTED",
            "CONFERRED",
            "SPEAKING",
            "TALKING",
            "MEETING",
            "SPOKE",
            "DISCUSSION",
            "CONVERSATION",
            "CONFERENCE",
            "UPDATE",
            "CHECK",
            "CHECKED",
            "FOLLOW",
            "FU",
        ],
    ),
    (
        "TO",
        &["SPOKE", "TALKED", "SPEAK", "TALK", "REPORT", "REPORTED", "GIVEN", "EXPLAINED", "SPOKEN", "CALL", "CALLED"],
    ),
    (
        "BY",
        &[
            "SEEN",
            "EVALUATED",
            "EXAMINED",
            "VISITED",
            "FOLLOWED",
            "CALLED",
            "SIGNED",
            "WRITTEN",
            "ASSESSED",
            "PLACED",
            "DONE",
            "REVIEWED",
        ],
    ),
    ("FROM", &["CALL", "CALLS", "VISIT", "HEARD", "CALLED"]),
];
/// Words after a name that show it was a person ("X aware", "X at bedside").
const POST_CUES: &[&str] = &[
    "AWARE", "NOTIFIED", "PAGED", "CALLED", "VISITED", "UPDATED", "PRESENT", "INFORMED", "CALLS", "VISITING", "STATES",
    "STATED", "REPORTS", "REPORTED", "ASKED", "AGREES",
];

/// Runs every name rule over the note.
pub(crate) fn find(c: &mut Ctx<'_>) {
    dictionary_alone(c);
    initials(c);
    after_cues(c);
    before_cues(c);
    signature(c);
    propagate(c);
    repeat_in_note(c);
}

/// A word found as a name or place once is one everywhere in the note
/// ("Radu" after "explained to Radu by Dr..."), as long as it is not also
/// an English or medical word that might be used plainly elsewhere.
fn repeat_in_note(c: &mut Ctx<'_>) {
    use std::collections::HashMap;
    let mut seen: HashMap<&str, PhiKind> = HashMap::new();
    for (i, l) in c.labels.iter().enumerate() {
        let t = &c.toks[i];
        if let Some(k) = l
            && t.len >= 3
            && !t.has(ENGLISH | MEDICAL | STOP)
        {
            seen.entry(c.up(i)).or_insert(*k);
        }
    }
    if seen.is_empty() {
        return;
    }
    for i in 0..c.toks.len() {
        if c.labels[i].is_none()
            && let Some(k) = seen.get(c.up(i))
        {
            c.mark(i, *k);
        }
    }
}

/// Words in a name list and in no English word list are names wherever
/// they appear ("NICHOLSON"). Short ones (two letters) need context: too
/// many abbreviations are also rare surnames.
fn dictionary_alone(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len() {
        let t = &c.toks[i];
        if t.len >= 3 && c.candidate(i) && c.dict_name(i) {
            // A place that is no first name is left to the place rules.
            let kind = if t.has(PLACE) && !t.has(FIRST) && !c.capital_cue(i) && !t.has(LAST) {
                PhiKind::Location
            } else {
                PhiKind::Name
            };
            c.mark(i, kind);
        }
    }
}

/// "E. WELSH", "Q. LANDER": an initial, a period and a listed or unknown
/// word is a name even when the word is also English.
fn initials(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len().saturating_sub(1) {
        if !c.initial(i) || !matches!(c.gap_after(i), ". " | ".  ") {
            continue;
        }
        let j = i + 1;
        if c.candidate(j) && (c.cued_name(j) || c.unknown(j)) {
            c.force(i, PhiKind::Name);
            c.force(j, PhiKind::Name);
        }
    }
}

/// Names after titles, relations and verbs: "DR. X", "daughter X", "spoke with X".
fn after_cues(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for i in 0..n.saturating_sub(1) {
        if c.is(i, RELATIONS) && appositive(c, i) {
            continue;
        }
        // "MS." with its period is the title; bare "MS" is often mental status.
        let ms_title = c.is(i, &["MS"]) && c.gap_after(i).starts_with('.');
        let strength = if c.is(i, STRONG_TITLES) || ms_title {
            Strength::Strong
        } else if c.is(i, WEAK_TITLES) || c.is(i, VERB_CUES) || prep_cue(c, i) {
            Strength::Weak
        } else if c.is(i, RELATIONS) {
            Strength::Relation
        } else {
            continue;
        };
        let linked = if strength == Strength::Relation {
            c.loosely_joined(i)
        } else {
            c.joined(i) || (c.loosely_joined(i) && c.is(i, WEAK_TITLES))
        };
        if !linked {
            continue;
        }
        let j = i + 1;
        let upper_letter = c.text.as_bytes()[c.toks[j].start].is_ascii_uppercase();
        if c.initial(j) && upper_letter && strength != Strength::Relation && c.gap_after(j).starts_with('.') {
            // "Dr. J. Smith", "MS S." — initials after a title.
            c.mark(j, PhiKind::Name);
            if c.joined(j) && c.name_like(j + 1, Strength::Weak) {
                c.mark(j + 1, PhiKind::Name);
            }
            continue;
        }
        let title_word = strength == Strength::Strong
            && c.candidate(j)
            && !c.toks[j].numeric
            && !c.is(j, NOT_AFTER_TITLE)
            && c.up(j).bytes().all(|b| b.is_ascii_alphabetic() || b == b'\'');
        if !(c.name_like(j, strength) || title_word) {
            continue;
        }
        c.force(j, PhiKind::Name);
        // "daughters sarah and margie"
        if strength == Strength::Relation && c.is(j + 1, &["AND", "&"]) && c.name_like(j + 2, Strength::Relation) {
            c.force(j + 2, PhiKind::Name);
        }
    }
}

/// "DAUGHTER, DAFFY DUCK, AT BEDSIDE", "son (Ed)": one to three words set
/// off by punctuation right after a relation are its name, whatever the
/// dictionaries say. Returns whether it matched.
fn appositive(c: &mut Ctx<'_>, rel: usize) -> bool {
    let open = c.gap_after(rel).trim();
    if !matches!(open, "," | "(" | ":" | "-" | "--" | "---" | "\"") {
        return false;
    }
    let n = c.toks.len();
    let mut k = rel + 1;
    while k < n && k < rel + 4 {
        if !c.candidate(k) || c.toks[k].numeric {
            return false;
        }
        let close = c.gap_after(k).trim_start();
        // Some word must look like a name, or the pair must be shaped like
        // one: two capitalised words ("PETUNIA PIG").
        let capitalised = |m: usize| c.toks[m].case != crate::tokens::Case::Lower;
        let named = (rel + 1..=k).any(|m| c.toks[m].has(FIRST | LAST | PLACE) || c.unknown(m))
            || (k == rel + 2 && capitalised(rel + 1) && capitalised(k));
        if named && (close.starts_with([',', ')', '"', ';']) || k + 1 == n) {
            for m in rel + 1..=k {
                c.force(m, PhiKind::Name);
            }
            return true;
        }
        if !c.joined(k) {
            return false;
        }
        k += 1;
    }
    false
}

/// "WITH" after "SPOKE", "BY" after "SEEN", and so on.
fn prep_cue(c: &Ctx<'_>, i: usize) -> bool {
    VERB_PREP.iter().any(|(prep, verbs)| c.up(i) == *prep && i > 0 && c.is(i - 1, verbs) && c.joined(i - 1))
}

/// Names before credentials or telling verbs: "X, RN", "X aware".
fn before_cues(c: &mut Ctx<'_>) {
    for i in 1..c.toks.len() {
        let post_title = c.is(i, POST_TITLES) && c.loosely_joined(i - 1);
        let post_cue = c.is(i, POST_CUES) && c.joined(i - 1);
        if !(post_title || post_cue) {
            continue;
        }
        let j = i - 1;
        let ok = if post_title {
            c.name_like(j, Strength::Weak)
        } else {
            c.name_like(j, Strength::Weak) && (c.dict_name(j) || c.capital_cue(j))
        };
        if ok {
            c.force(j, PhiKind::Name);
            if j > 0 && c.joined(j - 1) && (c.name_like(j - 1, Strength::Weak) || c.initial(j - 1)) {
                c.force(j - 1, PhiKind::Name);
            }
        }
    }
}

/// A short last line made only of name-like words is a signature.
fn signature(c: &mut Ctx<'_>) {
    let Some(last) = c.toks.len().checked_sub(1) else {
        return;
    };
    let line_start = c.text[..c.toks[last].start].rfind('\n').map_or(0, |p| p + 1);
    let first = (0..=last).rev().take_while(|&k| c.toks[k].start >= line_start).last().unwrap_or(last);
    let count = last + 1 - first;
    if count > 4 {
        return;
    }
    let all = (first..=last).all(|k| c.name_like(k, Strength::Weak) || c.initial(k) || c.is(k, POST_TITLES));
    let some = (first..=last).any(|k| c.dict_name(k));
    if all && some {
        for k in first..=last {
            if !c.is(k, POST_TITLES) {
                c.force(k, PhiKind::Name);
            }
        }
    }
}

/// Spreads a name to its neighbours: "Mary HULSE" (HULSE in no list),
/// "W. MAROTTA" (an initial before a surname).
fn propagate(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for _ in 0..2 {
        let mut changed = false;
        for i in 0..n {
            if c.labels[i] != Some(PhiKind::Name) {
                continue;
            }
            if i + 1 < n && c.joined(i) && c.labels[i + 1].is_none() {
                let j = i + 1;
                // After a name, any listed surname follows, even an
                // English word ("Yosemite Pig", "Mary White").
                let surname = c.gap_after(i).trim().is_empty()
                    && c.candidate(j)
                    && c.toks[j].has(LAST)
                    && !c.is(j, NOT_AFTER_TITLE);
                if (surname || c.name_like(j, Strength::Weak)) && !c.toks[j].sentence_start {
                    changed |= c.mark(j, PhiKind::Name);
                }
            }
            if i > 0 && c.joined(i - 1) && c.labels[i - 1].is_none() {
                let j = i - 1;
                let initial = c.initial(j) && c.gap_after(j).starts_with('.');
                if initial || c.name_like(j, Strength::Weak) {
                    changed |= c.mark(j, PhiKind::Name);
                }
            }
        }
        if !changed {
            break;
        }
    }
}
