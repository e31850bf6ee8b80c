//! Finding geography smaller than a state: towns and counties from the
//! zip-code lists, and the names of hospitals, wards and employers, which
//! identify where a patient is or was as surely as a town does.

use crate::context::Ctx;
use crate::cues::bit;
use crate::dictionary::{ENGLISH, FACILITY, FIRST, LAST, MEDICAL, PLACE};
use crate::span::PhiKind;

/// "Greater Baltimore": a region word before a place is part of its name.
/// Runs after the name rules, which may have taken the place for a
/// surname.
pub(crate) fn region_words(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len().saturating_sub(1) {
        if c.is(i, bit::REGION_WORDS) && c.joined(i) && c.labels[i + 1].is_some() && c.toks[i + 1].has(PLACE) {
            c.force(i, PhiKind::Location);
        }
    }
}

/// "MILFORD MILL", "Chester River": a word that ends many town names, right
/// after a word the lists know as a town and the rules found, is part of
/// that town's name.
pub(crate) fn town_suffixes(c: &mut Ctx<'_>) {
    #[rustfmt::skip]
    const SUFFIXES: &[&str] = &[
        "MILL", "MILLS", "SPRINGS", "HEIGHTS", "PARK", "CREEK", "RIVER", "VALLEY", "HILL", "HILLS",
        "BEACH", "HARBOR", "HARBOUR", "LAKE", "LAKES", "FALLS", "JUNCTION", "CITY", "VILLAGE",
        "POINT", "GROVE", "FORGE", "CROSSING", "LANDING", "STATION", "GLEN", "RIDGE", "WOODS",
    ];
    for i in 0..c.toks.len().saturating_sub(1) {
        let j = i + 1;
        if c.labels[i].is_some()
            && c.toks[i].has(PLACE)
            && c.joined(i)
            && c.gap_after(i).trim().is_empty()
            && c.labels[j].is_none()
            && SUFFIXES.contains(&c.up(j))
        {
            c.mark(j, PhiKind::Location);
        }
    }
}

/// "TRANSFERRED TO THE ZAGARIA CAMPUS", "bed on mackerer campus": the word
/// before "campus" names it, unless it is an English word ("main campus").
fn campuses(c: &mut Ctx<'_>) {
    for j in 1..c.toks.len() {
        let p = j - 1;
        if c.up(j) != "CAMPUS" || !c.joined(p) || c.labels[p].is_some() || !c.candidate(p) {
            continue;
        }
        let t = &c.toks[p];
        let english = t.has(ENGLISH) && !c.capital_cue(p);
        if !english
            && !c.is(p, bit::GENERIC_FACILITY_WORDS)
            && (t.has(PLACE | FACILITY | FIRST | LAST) || c.unknown_raw(p))
        {
            c.mark(p, PhiKind::Location);
        }
    }
}

/// Runs every place rule over the note.
pub(crate) fn find(c: &mut Ctx<'_>, phrases: &[(usize, usize, u32)]) {
    phrase_matches(c, phrases);
    towns(c);
    unlisted_towns(c);
    facilities(c);
    universities(c);
    saints(c);
    movements(c);
    acronym_before_unit(c);
    campuses(c);
    wards(c);
    employers(c);
}

/// Index range of the tokens inside bytes `start..end`.
fn token_range(c: &Ctx<'_>, start: usize, end: usize) -> std::ops::Range<usize> {
    let a = c.toks.partition_point(|t| t.start < start);
    let b = c.toks.partition_point(|t| t.start < end);
    a..b
}

/// Multi-word entries: medical phrases block their words ("SWAN GANZ"),
/// facility stems and towns mark them ("SACRED HEART", "MIDDLE RIVER").
fn phrase_matches(c: &mut Ctx<'_>, phrases: &[(usize, usize, u32)]) {
    for &(s, e, f) in phrases {
        if f & MEDICAL != 0 {
            for k in token_range(c, s, e) {
                c.blocked[k] = true;
                c.labels[k] = None;
            }
        }
    }
    for &(s, e, f) in phrases {
        let r = token_range(c, s, e);
        if r.is_empty() || r.clone().any(|k| c.blocked[k]) {
            continue;
        }
        let strange = r.clone().any(|k| !c.toks[k].has(ENGLISH | MEDICAL));
        // "returned to New Haven today": in mixed-case prose a listed town of
        // two or more capitalised words mid-sentence is the town, though
        // each word alone is English.
        let capitalised = c.mixed
            && r.len() >= 2
            && !c.toks[r.start].sentence_start
            && r.clone().all(|k| c.toks[k].case == crate::tokens::Case::Title);
        let placed =
            f & FACILITY != 0 || (f & PLACE != 0 && (strange || capitalised || geo_context(c, r.start, r.end - 1)));
        if placed {
            for k in r {
                c.force(k, PhiKind::Location);
            }
        }
    }
}

/// Whether tokens `a..=b` sit where a place is expected: after "lives in",
/// or before ", MD" / ", Maryland".
fn geo_context(c: &Ctx<'_>, a: usize, b: usize) -> bool {
    let prep = a >= 2 && c.is(a - 1, bit::GEO_PREPS);
    // Words that are also English ("EARLY", "TRANSFER" are towns too)
    // only after "lives in"-style verbs, not after verbs of moving.
    let english = (a..=b).all(|k| c.toks[k].has(ENGLISH));
    let verb = |k: usize| c.is(k, bit::HOME_CUES) || (!english && c.is(k, bit::MOVES));
    let before = prep && (verb(a - 2) || (!english && a >= 3 && verb(a - 3) && c.toks[a - 2].has(ENGLISH)));
    // "Kessler Medical Center in Lochearn": a facility is in a town.
    let facility_in = a >= 2 && !english && c.up(a - 1) == "IN" && c.is(a - 2, bit::FACILITY_KEYWORDS);
    // A postal abbreviation needs the comma and capitals ("Towson, MD"):
    // "IN", "OR", "ME" are words too. A full state name needs neither.
    let after = c.toks.get(b + 1).is_some_and(|t| {
        let g = c.gap_after(b);
        let w = &c.upper[t.start..t.end];
        let written = &c.text[t.start..t.end];
        !t.numeric
            && crate::patterns::is_state(w)
            && ((w.len() > 2 && (g == " " || g.starts_with(',')))
                || ((g == ", " || g == ",") && written.bytes().all(|x| x.is_ascii_uppercase())))
    });
    before || after || facility_in
}

/// One-word towns and counties: alone when the word is nothing else,
/// with a place cue when it is also an English word ("HOPE").
fn towns(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len() {
        let t = &c.toks[i];
        if !t.has(PLACE) || t.len < 3 || !c.candidate(i) || c.labels[i].is_some() {
            continue;
        }
        // A town that is also a rare surname ("TOWSON") is still a town;
        // common names were already taken by the name rules.
        // A state is no smaller than a state ("son went back to
        // California"), whatever towns share its name.
        if crate::patterns::is_state(c.up(i)) {
            continue;
        }
        let plain = !t.has(ENGLISH | FIRST) && !t.has(crate::dictionary::FREQ);
        // In a mixed-case note a town is capitalised: "destin lotion".
        let lower = c.mixed && t.case == crate::tokens::Case::Lower;
        // "is Nancy Cetrone": a first name before a surname-like word is
        // a person; the name rules take it.
        let person = t.has(FIRST)
            && c.joined(i)
            && (c.unknown_raw(i + 1) || (c.toks[i + 1].has(LAST) && !c.toks[i + 1].has(ENGLISH)));
        if (plain && !lower) || geo_context(c, i, i) || (c.capital_cue(i) && !t.has(ENGLISH) && !person) {
            c.mark(i, PhiKind::Location);
        }
    }
}

/// "from Toontown, NJ": in a mixed-case note, a capitalised word in no list
/// followed by a state (a postal code after a comma, in capitals) is a town
/// the lists do not know. Upper-case notes give no such hint ("PRECAUTIONS,
/// MD AWARE"), so they are left to the lists.
fn unlisted_towns(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len() {
        let t = &c.toks[i];
        if !c.mixed || t.case != crate::tokens::Case::Title || c.labels[i].is_some() || !c.unknown(i) {
            continue;
        }
        if geo_context(c, i, i) {
            c.mark(i, PhiKind::Location);
        }
    }
}

/// "CALVERT HOSPITAL", "FREDERICK MEMORIAL", "KESSLER-ADVENTIST REHAB":
/// up to three words before a facility keyword name the facility.
fn facilities(c: &mut Ctx<'_>) {
    for k in 1..c.toks.len() {
        if !c.is(k, bit::FACILITY_KEYWORDS) {
            continue;
        }
        let short = c.is(k, bit::ER_WORDS);
        let mut j = k;
        let mut found = 0;
        while j > 0 && found < 3 && c.joined(j - 1) {
            let p = j - 1;
            let t = &c.toks[p];
            if c.labels[p] == Some(PhiKind::Location) {
                // Already a place ("SACRED HEART" + "MEMORIAL").
                found += 1;
                j = p;
                continue;
            }
            // "MEMORIAL HOSPITAL", "GENERAL HOSPITAL": the keyword is the name.
            if j == k && c.is(p, bit::NAME_KEYWORDS) && !c.is(k, bit::NAME_KEYWORDS) {
                c.force(p, PhiKind::Location);
                found += 1;
                j = p;
                continue;
            }
            let generic = c.is(p, bit::GENERIC_FACILITY_WORDS) || c.is(p, bit::FACILITY_KEYWORDS);
            if t.numeric || generic || !c.candidate(p) {
                break;
            }
            // Before "ER" only a hospital acronym or a known name counts;
            // elsewhere English words ("PAIN MEDICAL") are no names.
            let nameish = t.has(PLACE | FACILITY | FIRST | LAST) || c.unknown_raw(p) || c.capital_cue(p);
            if (short && !(acronym(c, p) || t.has(PLACE | FACILITY | LAST)))
                || (t.has(ENGLISH) && !t.has(PLACE | FACILITY) && !c.capital_cue(p))
                || !nameish
            {
                break;
            }
            c.force(p, PhiKind::Location);
            found += 1;
            j = p;
        }
        if found > 0 && c.is(k, bit::NAME_KEYWORDS) {
            c.force(k, PhiKind::Location);
        }
    }
}

/// "ST. AGNES", "SAINT JOSEPH'S": a saint's name is a facility; "ST
/// ELEVATION" and "ST TACH" are not, because those are medical words.
fn saints(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len().saturating_sub(1) {
        if !c.is(i, bit::SAINT_WORDS) || !c.joined(i) {
            continue;
        }
        let j = i + 1;
        let t = &c.toks[j];
        if c.candidate(j) && t.has(FIRST | LAST | PLACE | FACILITY) && !t.has(ENGLISH) {
            c.force(i, PhiKind::Location);
            c.force(j, PhiKind::Location);
        }
    }
}

/// "University of Maryland", "U of MD", "U Maryland": a named university
/// (and its hospital) locates a person within a state.
fn universities(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for i in 0..n.saturating_sub(1) {
        if !c.is(i, bit::UNIVERSITY_WORDS) || !c.joined(i) {
            continue;
        }
        let mut j = i + 1;
        if c.is(j, bit::OF_WORD) && c.joined(j) {
            j += 1;
        }
        let short = c.up(i) == "U";
        // "F/U IN 2 DAYS": a follow-up, not the University of Indiana
        // ("U of MD" keeps its state, though "MD" is a stop word too).
        let after_slash = c.toks[i].start > 0 && c.text.as_bytes()[c.toks[i].start - 1] == b'/';
        if short
            && (c.text.as_bytes()[c.toks[i].start] != b'U'
                || c.gap_after(i) != " "
                || after_slash
                || (j == i + 1 && c.toks[j].has(crate::dictionary::STOP)))
        {
            continue;
        }
        let state = j < n && !c.toks[j].numeric && crate::patterns::is_state(c.up(j));
        let town = j < n && !short && c.candidate(j) && c.toks[j].has(PLACE);
        if state || town {
            if c.up(j).len() == 2 && !c.text[c.toks[j].start..c.toks[j].end].bytes().all(|b| b.is_ascii_uppercase()) {
                continue;
            }
            for k in i..=j {
                c.force(k, PhiKind::Location);
            }
        }
    }
}

/// A hospital acronym: "GH", "MGH", "GBMC", "VAMC", in the place a
/// hospital goes ("to GH", "GH ER").
fn acronym(c: &Ctx<'_>, i: usize) -> bool {
    let w = c.up(i);
    let t = &c.toks[i];
    let written = &c.text[t.start..t.end];
    let same_case = written.bytes().all(|b| b.is_ascii_uppercase())
        || (!c.mixed && written.bytes().all(|b| b.is_ascii_lowercase()));
    !t.numeric
        && (2..=5).contains(&w.len())
        && !t.has(MEDICAL | crate::dictionary::STOP | ENGLISH)
        && (w.ends_with('H') || w.ends_with("MC") || w.ends_with("HC"))
        && (same_case || written.bytes().all(|b| b.is_ascii_uppercase()))
}

/// Where a patient was moved: "transferred to X", "from GH", "on X 6".
fn movements(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for i in 0..n.saturating_sub(1) {
        if !c.is(i, bit::MOVE_PREPS) || !c.joined(i) {
            continue;
        }
        let j = i + 1;
        if !c.candidate(j) || c.labels[j].is_some() {
            continue;
        }
        // The verb must be in the same phrase: "CX SENT. STARTED ON X" is
        // no movement.
        let moved = i > 0
            && c.joined(i - 1)
            && (c.is(i - 1, bit::MOVES) || (i > 1 && c.is(i - 2, bit::MOVES) && c.joined(i - 2)));
        // "QUARTERMAIN 2" but not "PSV 13/5", "KEFZOL 1GM" or "PREDNISONE
        // 60 MG": a ward number stands alone.
        let ward_number = j + 1 < n && c.toks[j + 1].numeric && c.toks[j + 1].len <= 2 && {
            let g = c.gap_after(j + 1);
            let unit = g.starts_with(['/', ':', '%'])
                || (g.starts_with('.') && g.len() == 1 && j + 2 < n && c.toks[j + 2].numeric)
                || (g.is_empty() && j + 2 < n)
                || (j + 2 < n && g.trim().is_empty() && (c.is(j + 2, bit::DOSE_UNITS) || c.toks[j + 2].has(MEDICAL)));
            !unit && c.gap_after(j).trim().is_empty()
        };
        let ward_after = j + 1 < n && c.joined(j) && (ward_number || c.is(j + 1, bit::WARD_WORDS));
        let strange = (c.unknown_raw(j) && c.toks[j].len >= 5 && !c.typo(j)) || c.dict_name(j);
        // "went to Harbor", "surgeon from Harbor": in a mixed-case note a
        // capitalised word where a place goes is a proper noun.
        let from_role = c.is(i, bit::FROM_WORD) && i > 0 && c.joined(i - 1) && c.is(i - 1, bit::WEAK_TITLES);
        // "Transfer to Medical Floor", "back on Mask ventilation": a unit,
        // a service or a treatment is no proper place.
        let service = c.is(j, bit::WARD_WORDS | bit::FACILITY_KEYWORDS)
            || crate::names::ROLE_WORDS.contains(&c.up(j))
            || (j + 1 < n && c.toks[j + 1].has(MEDICAL))
            || (c.is(i, bit::ON_WORD) && c.toks[j].has(ENGLISH));
        let proper = c.capital_cue(j) && (moved || from_role) && !c.is(i, bit::NOT_MOVE_PREPS) && !service;
        if acronym(c, j) && !c.is(i, bit::ON_WORD) && !c.toks[j].has(crate::dictionary::FIRST | LAST)
            || (strange && (moved || ward_after) && !c.is(i, bit::NOT_MOVE_PREPS))
            || proper
        {
            c.mark(j, PhiKind::Location);
        }
    }
}

/// "GH ER", "gh cath lab": a hospital acronym before a hospital place.
fn acronym_before_unit(c: &mut Ctx<'_>) {
    for j in 0..c.toks.len().saturating_sub(1) {
        if c.labels[j].is_none() && acronym(c, j) && c.joined(j) && c.is(j + 1, bit::UNIT_AFTER) {
            c.mark(j, PhiKind::Location);
        }
    }
}

/// A bare ward name with its number ("PLAN: QUARTERMAIN 2"): a long word
/// in no list, then a single digit that is no dose (no unit after it).
fn wards(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for j in 0..n.saturating_sub(1) {
        if c.labels[j].is_some() || !c.unknown_raw(j) || c.toks[j].len < 6 || !c.joined(j) {
            continue;
        }
        let num = &c.toks[j + 1];
        if !num.numeric || num.len != 1 || !c.gap_after(j).trim().is_empty() {
            continue;
        }
        let g = c.gap_after(j + 1);
        let dose = g.starts_with(['.', '/', ':', '%', '-', 'x', 'X'])
            || (j + 2 < n && (c.toks[j + 2].has(MEDICAL) || c.is(j + 2, bit::DOSE_UNITS)) && g.trim().is_empty());
        // "2ND", "1X", "3RD": letters glued to the number make it an
        // ordinal or a count. Before another word, a misspelt verb
        // ("RECIEVED 3 BREATHS") is likelier than a ward.
        let end = (g.is_empty() && j + 2 >= n)
            || g.starts_with(['\n', ',', ';', ')'])
            || g.starts_with(". ")
            || g == "."
            || (g.starts_with(' ') && !c.typo(j));
        if !dose && end {
            c.mark(j, PhiKind::Location);
        }
    }
}

/// "works for IBM", "retired from Bethlehem Steel": employers locate a
/// person, and Safe Harbor's "any other unique identifier" covers them.
fn employers(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for i in 0..n.saturating_sub(2) {
        if !c.is(i, bit::WORK_CUES) || !c.joined(i) || !c.is(i + 1, bit::WORK_PREPS) {
            continue;
        }
        let mut j = i + 2;
        let mut taken = 0;
        while j < n && taken < 2 && c.candidate(j) && !c.is(j, bit::HOME_HOSPITAL) {
            c.mark(j, PhiKind::Location);
            taken += 1;
            if !c.joined(j) {
                break;
            }
            j += 1;
        }
    }
}
