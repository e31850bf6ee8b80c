//! Finding people's names: dictionary words that are names and nothing
//! else, then names that only the words around them give away.

use crate::context::{Ctx, Strength};
use crate::cues::{VERB_PREP, bit};
use crate::dictionary::{ENGLISH, FIRST, LAST, MEDICAL, PLACE, STOP};

use crate::span::PhiKind;
use crate::tokens::Case;

/// Runs every name rule over the note.
pub(crate) fn find(c: &mut Ctx<'_>) {
    never_names(c);
    dictionary_alone(c);
    initials(c);
    after_cues(c);
    told_names(c);
    before_cues(c);
    before_numbers(c);
    signature(c);
    propagate(c);
    repeat_in_note(c);
}

/// Cue words that are never names themselves, though lists or rules would
/// take them for one: "Drs" before the names it introduces, "law" and
/// "inlaw" in "son-in-law". They still work as cues.
fn never_names(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len() {
        let in_law = matches!(c.up(i), "LAW" | "LAWS") && i > 0 && c.up(i - 1) == "IN" && c.gap_after(i - 1) == "-";
        if in_law || matches!(c.up(i), "DRS" | "INLAW" | "INLAWS") {
            c.blocked[i] = true;
        }
    }
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
        // In a mixed-case note names are capitalised: a lower-case word
        // standing alone ("ate reuben sandwich", "lipps") is a word.
        let lower = c.mixed && t.case == Case::Lower;
        if t.len >= 3 && !lower && c.candidate(i) && c.dict_name(i) {
            // A place that is no first name is left to the place rules.
            let kind = if t.has(PLACE) && !t.has(FIRST) && !c.capital_cue(i) && !t.has(LAST) {
                PhiKind::Location
            } else {
                PhiKind::Name
            };
            c.mark(i, kind);
        }
    }
    // "Follow-up with Martin Karlsen", "Hedda Pettersson of Sumitomo": in
    // mixed-case prose, a capitalised first name right before a capitalised
    // word that is a surname and no English word (or in no list at all) is a
    // full name, even with no cue and even when the first name is also a word.
    if c.mixed {
        for i in 0..c.toks.len().saturating_sub(1) {
            let j = i + 1;
            let (a, b) = (&c.toks[i], &c.toks[j]);
            if a.case == Case::Title
                && b.case == Case::Title
                && a.has(FIRST)
                && c.candidate(i)
                && c.candidate(j)
                && c.gap_after(i) == " "
                && !c.is(j, bit::FACILITY_KEYWORDS | bit::WARD_WORDS | bit::POST_TITLES)
                && !crate::patterns::is_state(c.up(i))
                && ((b.has(LAST) && !b.has(ENGLISH | PLACE)) || c.unknown(j))
            {
                c.mark(i, PhiKind::Name);
                c.mark(j, PhiKind::Name);
            }
        }
    }
}

/// "E. WELSH", "Q. LANDER": an initial, a period and a listed or unknown
/// word is a name even when the word is also English.
fn initials(c: &mut Ctx<'_>) {
    for i in 0..c.toks.len().saturating_sub(1) {
        if !c.initial(i) {
            continue;
        }
        let j = i + 1;
        // "J SMITH ORDERED EPI": an initial without its period, a listed
        // surname and a verb only a person does. "X" is left out: "CHEST X
        // RAY ORDERED".
        let acts = c.joined(j)
            && (c.is(j + 1, bit::POST_CUES) || matches!(c.up(j + 1), "ORDERED" | "WROTE" | "EXAMINED" | "SAW"));
        if c.gap_after(i) == " "
            && c.up(i) != "X"
            && c.text.as_bytes()[c.toks[i].start].is_ascii_uppercase()
            && c.toks[j].has(LAST)
            && c.candidate(j)
            && acts
        {
            c.force(i, PhiKind::Name);
            c.force(j, PhiKind::Name);
            continue;
        }
        if !matches!(c.gap_after(i), ". " | ".  ") {
            continue;
        }
        // "A. STABLE", "L. BASE": SOAP headings and sides are no initials;
        // an English surname needs a cue after it ("E. WELSH AWARE").
        let cue_after = c.is(j + 1, bit::POST_CUES) || c.is(j + 1, bit::POST_TITLES);
        if c.candidate(j) && (c.cued_name(j) || c.unknown(j) || (c.toks[j].has(FIRST | LAST) && cue_after)) {
            c.force(i, PhiKind::Name);
            c.force(j, PhiKind::Name);
            continue;
        }
        // "Wile E. Coyote": in mixed-case prose, a capitalised word, a middle
        // initial and a capitalised word form a full name when either word is
        // one the lists know as a name or know nothing of ("Plan A. Continue"
        // has neither, and no medical word belongs: "Hepatitis B. Follow").
        if c.mixed && i > 0 && c.joined(i - 1) && c.toks[i].case == Case::Upper {
            let (a, z) = (i - 1, j);
            let titled = |k: usize| c.toks[k].case == Case::Title && c.candidate(k);
            let namey = |k: usize| c.toks[k].has(FIRST | LAST) || c.unknown(k);
            if titled(a) && titled(z) && (namey(a) || namey(z)) && !LETTERED.contains(&c.up(a)) {
                c.force(a, PhiKind::Name);
                c.force(i, PhiKind::Name);
                c.force(z, PhiKind::Name);
            }
        }
    }
}

/// Words that take a letter after them ("Vitamin D", "Group B", "Plan A"): a
/// capital letter after one is no middle initial.
#[rustfmt::skip]
const LETTERED: &[&str] = &[
    "VITAMIN", "HEPATITIS", "GROUP", "TYPE", "PLAN", "OPTION", "CLASS", "GRADE", "STAGE", "LEVEL",
    "PHASE", "ZONE", "WARD", "BED", "ROOM", "POD", "TEAM", "FACTOR", "PROTEIN", "INFLUENZA", "STREP",
    "COMPLEX", "BLOCK", "LEAD", "APPENDIX", "SCHEDULE", "PART", "SECTION", "STEP", "CATEGORY", "LIST",
    "BUILDING", "WING", "TOWER", "FLOOR", "UNIT", "CLUSTER", "SIDE", "SET", "DAY", "PLATE", "SIZE",
];

/// Names after titles, relations and verbs: "DR. X", "daughter X", "spoke with X".
fn after_cues(c: &mut Ctx<'_>) {
    let n = c.toks.len();
    for i in 0..n.saturating_sub(1) {
        if c.is(i, bit::RELATIONS) && appositive(c, i) {
            continue;
        }
        // "MS." with its period is the title; bare "MS" is often mental status.
        let ms_title = c.is(i, bit::MS_WORD) && c.gap_after(i).starts_with('.');
        // "SISTER" and "FATHER" are titles and relations: as relations they
        // are far more common ("sister said"), so the weaker reading wins.
        let strength = if (c.is(i, bit::STRONG_TITLES) && !c.is(i, bit::RELATIONS)) || ms_title {
            Strength::Strong
        } else if c.is(i, bit::WEAK_TITLES) || c.is(i, bit::VERB_CUES) || prep_cue(c, i) {
            Strength::Weak
        } else if c.is(i, bit::RELATIONS) {
            Strength::Relation
        } else {
            continue;
        };
        let linked = if strength == Strength::Relation {
            c.loosely_joined(i)
        } else if strength == Strength::Weak && c.gap_after(i).contains('.') && !c.initial(i + 1) {
            // "UPDATED BY MD. HIGH DOSE EPI": a weak title or verb before a
            // period ends its sentence; only "Dr." and "Mrs." carry one.
            false
        } else {
            c.joined(i) || (c.loosely_joined(i) && c.is(i, bit::WEAK_TITLES))
        };
        if !linked || (!stands_apart(c, i)) {
            continue;
        }
        let j = i + 1;
        // "CONTACT PERSON", "RABBI- RABBI KLEIN", "SON/DAUGHTER/FIANCE": a
        // relation or a title is the next cue, not a name.
        if c.is(j, bit::NOT_AFTER_TITLE | bit::RELATIONS | bit::STRONG_TITLES | bit::WEAK_TITLES) {
            continue;
        }
        // "#16 FR FOLEY", "lg fr foley": French gauge after a size, not Father.
        if c.up(i) == "FR" && i > 0 && (c.toks[i - 1].numeric || matches!(c.up(i - 1), "LG" | "LARGE" | "SM" | "SMALL"))
        {
            continue;
        }
        // "per CTS protocol", "per post procedure orders": what a protocol or
        // an order is named after is no person here.
        if strength == Strength::Weak && c.joined(j) && PROCEDURE_NOUNS.contains(&c.up(j + 1)) {
            continue;
        }
        // "FSBS per SSRI", "+ per BMC": in mixed-case prose a short word in
        // capitals that no name list has is an abbreviation.
        if strength == Strength::Weak
            && c.mixed
            && c.toks[j].case == Case::Upper
            && c.toks[j].len <= 4
            && !c.toks[j].has(FIRST | LAST)
        {
            continue;
        }
        let upper_letter = c.text.as_bytes()[c.toks[j].start].is_ascii_uppercase();
        let initial_ok = (c.gap_after(j).starts_with('.') && !c.dotted_abbreviation(j))
            || (c.joined(j) && c.name_like(j + 1, Strength::Weak));
        // In a note with no capitals to go by ("per d ross"), a lower-case
        // initial counts when a surname follows it.
        let lower_initial = !c.mixed && c.joined(j) && c.name_like(j + 1, Strength::Weak);
        if c.initial(j) && (upper_letter || lower_initial) && strength != Strength::Relation && initial_ok {
            // "Dr. J. Smith", "MS S." — initials after a title.
            c.mark(j, PhiKind::Name);
            if c.joined(j) && c.name_like(j + 1, Strength::Weak) {
                c.mark(j + 1, PhiKind::Name);
            }
            continue;
        }
        // "Dr. o rourke", "DR O BRIEN": an Irish surname whose apostrophe was
        // lost is two tokens, the first a bare O.
        if strength == Strength::Strong
            && c.up(j) == "O"
            && c.gap_after(j) == " "
            && j + 1 < n
            && c.candidate(j + 1)
            && c.toks[j + 1].len >= 3
        {
            c.force(j, PhiKind::Name);
            c.force(j + 1, PhiKind::Name);
            continue;
        }
        // After "Dr." even an eponym is a surname ("Dr. Foley").
        let eponym = c.toks[j].has(MEDICAL | LAST) && c.toks[j].has(LAST) && !c.toks[j].has(STOP) && c.up(i) != "FR";
        // "changes in MS. Aspiration": after "in", "on" or "of", "MS." is
        // mental status and admits only a listed or unknown word.
        let status = ms_title && i > 0 && matches!(c.up(i - 1), "IN" | "ON" | "OF");
        let title_word = strength == Strength::Strong
            && !(status && c.toks[j].has(ENGLISH) && !c.toks[j].has(FIRST | LAST))
            && (c.candidate(j) || eponym)
            && !c.toks[j].numeric
            && !c.is(j, bit::NOT_AFTER_TITLE)
            && c.up(j).chars().all(|ch| ch.is_alphabetic() || ch == '\'' || ch == '\u{2019}');
        if !(c.name_like(j, strength) || title_word) {
            continue;
        }
        // "per fingersticks", "seen by surg": in a mixed-case note a weak
        // cue vouches for a lower-case word only when a name list has it.
        if strength == Strength::Weak && c.mixed && c.toks[j].case == Case::Lower && !c.toks[j].has(FIRST | LAST) {
            continue;
        }
        c.force(j, PhiKind::Name);
        if strength != Strength::Weak {
            listed_after(c, j, strength);
        }
    }
}

/// Nouns after which the word before them names a protocol or an order
/// ("per CTS protocol"), not a person.
#[rustfmt::skip]
const PROCEDURE_NOUNS: &[&str] = &[
    "PROTOCOL", "PROTOCOLS", "ORDER", "ORDERS", "PROCEDURE", "REQUEST", "SCALE", "GUIDELINES",
    "PATHWAY", "POLICY", "STANDARD", "STANDARDS", "PROTOCALL", "RECOMMENDATIONS", "RECS",
];

/// "her name is Daisy", "goes by \"Duckie\"", "prefers to be called Bugs": a
/// name given as one. The word must look like a name: capitalised in mixed-case
/// prose, quoted, or a name the lists know.
fn told_names(c: &mut Ctx<'_>) {
    for j in 1..c.toks.len() {
        // "Dear Daisy,", "Hi Donald," open a letter or a portal message.
        let greeted = matches!(c.up(j - 1), "DEAR" | "HI" | "HELLO")
            && (j == 1 || c.toks[j - 1].sentence_start)
            && c.gap_after(j).trim_start().starts_with([',', ':', '!']);
        let told = greeted
            || j >= 2
                && matches!(
                    (c.up(j - 2), c.up(j - 1)),
                    ("NAME", "IS" | "WAS")
                        | ("GOES", "BY")
                        | ("BE", "CALLED")
                        | ("CALL", "ME")
                        | ("KNOWN", "AS")
                        | (_, "NICKNAME")
                );
        if !told || !c.candidate(j) || !c.loosely_joined(j - 1) {
            continue;
        }
        let quoted = c.gap_after(j - 1).contains('"') || c.gap_after(j - 1).contains('\'');
        // After a greeting a capitalised word is no proof: "Dear Sir", "Hi All".
        let capitalised = c.mixed && c.toks[j].case == Case::Title && !greeted;
        let salutation = matches!(
            c.up(j),
            "SIR"
                | "SIRS"
                | "MADAM"
                | "MADAME"
                | "ALL"
                | "TEAM"
                | "THERE"
                | "EVERYONE"
                | "FRIEND"
                | "FRIENDS"
                | "COLLEAGUE"
                | "COLLEAGUES"
                | "FAMILY"
                | "PATIENT"
                | "PARENT"
                | "PARENTS"
                | "GUARDIAN"
        );
        if !salutation && (quoted || capitalised || c.name_like(j, Strength::Relation)) {
            c.force(j, PhiKind::Name);
        }
    }
}

/// "daughters sarah and margie", "Sons Smokey, Morris and Roger", "Drs
/// Ferullo and Saeed": more names listed after the first one.
fn listed_after(c: &mut Ctx<'_>, first: usize, strength: Strength) {
    let n = c.toks.len();
    let mut k = first;
    for _ in 0..4 {
        // Skip the rest of this name ("Morris Smith,").
        while k + 1 < n && c.labels[k + 1] == Some(PhiKind::Name) && c.joined(k) {
            k += 1;
        }
        let g = c.gap_after(k).trim();
        let next = if g == "," && k + 1 < n && c.is(k + 1, bit::AND_WORD) {
            k + 2
        } else if g == "," {
            k + 1
        } else if g.is_empty() && k + 1 < n && c.is(k + 1, bit::AND_WORD) && c.joined(k + 1) {
            k + 2
        } else {
            return;
        };
        let like = c.name_like(next, Strength::Relation)
            || (strength == Strength::Strong && next < n && c.toks[next].has(FIRST | LAST) && c.candidate(next));
        if next >= n || !like {
            return;
        }
        c.force(next, PhiKind::Name);
        k = next;
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
        let capitalised = |m: usize| c.toks[m].case != Case::Lower;
        // A listed word counts only when a cue could vouch for it: "full
        // code" after "daughter," is no name although CODE is a surname.
        // "CLOSE FRIEND (DECISION MAKER,": a role is no name.
        let role = |m: usize| {
            c.is(m, bit::RELATIONS | bit::WEAK_TITLES)
                || ROLE_WORDS.contains(&c.up(m))
                || matches!(c.up(m), "DECISION" | "MAKER" | "POWER" | "LEGAL" | "NEXT" | "KIN")
        };
        let named = (rel + 1..=k)
            .any(|m| c.cued_name(m) || (c.toks[m].has(PLACE) && !c.toks[m].has(ENGLISH)) || c.unknown(m))
            || (k == rel + 2 && capitalised(rel + 1) && capitalised(k) && !role(rel + 1) && !role(k));
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

/// Whether cue token `i` stands as a word of its own: "+MR" in "3-4+MR"
/// is mitral regurgitation, not a title.
fn stands_apart(c: &Ctx<'_>, i: usize) -> bool {
    let s = c.toks[i].start;
    s == 0
        || matches!(
            c.text.as_bytes()[s - 1],
            b' ' | b'\t' | b'\n' | b'\r' | b'(' | b',' | b';' | b':' | b'"' | b'-' | b'/' | b'.'
        )
}

/// "WITH" after "SPOKE", "BY" after "SEEN", and so on.
fn prep_cue(c: &Ctx<'_>, i: usize) -> bool {
    VERB_PREP.iter().any(|&(prep, verbs)| c.is(i, prep) && i > 0 && c.is(i - 1, verbs) && c.joined(i - 1))
}

/// Names before credentials or telling verbs: "X, RN", "X aware".
fn before_cues(c: &mut Ctx<'_>) {
    for i in 1..c.toks.len() {
        // "Hank Smith (son)", "Dick Tracy (resident)": a relation or a role in
        // brackets after a name works like a credential.
        let bracketed = c.is(i, bit::RELATIONS | bit::WEAK_TITLES | bit::POST_TITLES)
            && c.gap_after(i - 1).trim() == "("
            && c.gap_after(i).starts_with(')');
        let post_title = (c.is(i, bit::POST_TITLES) || bracketed) && c.loosely_joined(i - 1);
        let post_cue = c.is(i, bit::POST_CUES) && c.joined(i - 1);
        if !(post_title || post_cue) {
            continue;
        }
        let j = i - 1;
        let first_before = j > 0 && c.joined(j - 1) && c.toks[j - 1].has(FIRST) && c.candidate(j - 1);
        let ok = if post_title && c.is(i, bit::AMBIGUOUS_POST_TITLES) {
            // "PA", "NP", "DO" are also pulmonary artery, nasopharyngeal
            // and a verb: only a listed name, or a first name and a
            // surname, comes before them ("hypotensive pa numbers").
            c.candidate(j)
                && ((c.cued_name(j) && !c.toks[j].has(ENGLISH)) || (first_before && c.name_like(j, Strength::Weak)))
        } else if post_title {
            // "Bernard Foley CRT": between a first name and a credential
            // even an eponym is a surname, as after "Dr.".
            let eponym = first_before && c.toks[j].has(LAST) && !c.toks[j].has(STOP);
            c.name_like(j, Strength::Weak) || eponym
        } else {
            let clause_start = j == 0 || c.toks[j].sentence_start || c.gap_after(j - 1).contains(':');
            // "social: bill called": a common first name opening a clause
            // before a telling verb, even when it is also a word.
            let first = clause_start && c.toks[j].has(FIRST) && c.toks[j].has(crate::dictionary::TOP) && c.candidate(j);
            // "grace dudak aware": a first name and a word in no list before
            // a telling verb are a full name, even in lower case.
            let full = first_before && (c.unknown(j) || (c.toks[j].has(LAST) && !c.toks[j].has(ENGLISH)));
            (c.name_like(j, Strength::Weak) && (c.dict_name(j) || c.capital_cue(j))) || first || full
        };
        // "Bugs Bunny MD", "Petunia Pig (wife)": in mixed-case prose, two capitalised
        // words before a credential or a bracketed relation are a full name, even
        // when both are English words; words naming a shift or a role are not.
        let capitalised_pair = post_title
            && c.mixed
            && j > 0
            && c.joined(j - 1)
            && [j - 1, j].iter().all(|&k| {
                c.toks[k].case == Case::Title
                    && c.candidate(k)
                    && !c.is(k, bit::WEAK_TITLES)
                    && !ROLE_WORDS.contains(&c.up(k))
            });
        if capitalised_pair {
            c.force(j - 1, PhiKind::Name);
        }
        if ok || capitalised_pair {
            c.force(j, PhiKind::Name);
            if j > 0 && c.joined(j - 1) && (c.name_like(j - 1, Strength::Weak) || c.initial(j - 1)) {
                c.force(j - 1, PhiKind::Name);
            }
        }
    }
}

/// "Lopie Certusi cell# 410-...": in mixed-case prose, two capitalised words
/// right before the kind of a phone number and the number are whose number
/// it is, if either word is a name or in no list at all.
fn before_numbers(c: &mut Ctx<'_>) {
    const PHONE_WORDS: &[&str] = &["CELL", "PHONE", "TEL", "MOBILE", "PAGER", "BEEPER", "HOME", "WORK"];
    if !c.mixed {
        return;
    }
    let n = c.toks.len();
    for k in 2..n.saturating_sub(1) {
        if !PHONE_WORDS.contains(&c.up(k)) || !c.joined(k - 1) || !c.joined(k - 2) {
            continue;
        }
        // The number follows, after at most "#", ":" or "no.".
        let number = (k + 1..(k + 3).min(n)).find(|&m| !matches!(c.up(m), "NO" | "NUMBER" | "IS"));
        let gap = c.gap_after(k).trim();
        if !number.is_some_and(|m| c.toks[m].numeric) || gap.len() > 2 {
            continue;
        }
        let (a, b) = (k - 2, k - 1);
        let titled = |m: usize| c.toks[m].case == Case::Title && c.candidate(m) && !c.toks[m].sentence_start;
        let namey = |m: usize| c.toks[m].has(FIRST | LAST) || c.unknown(m);
        if titled(b)
            && (titled(a) || (c.toks[a].sentence_start && c.toks[a].case == Case::Title && c.candidate(a)))
            && (namey(a) || namey(b))
        {
            c.force(a, PhiKind::Name);
            c.force(b, PhiKind::Name);
        }
    }
}

/// Words that say which shift, role or service a credential belongs to
/// ("Night Float MD", "Charge RN", "Blood Bank RN", "Respiratory Therapy
/// RRT"), not whose it is.
#[rustfmt::skip]
pub(crate) const ROLE_WORDS: &[&str] = &[
    "NIGHT", "NIGHTS", "DAY", "DAYS", "EVENING", "EVENINGS", "FLOAT", "CHARGE", "PRIMARY", "TRAVEL",
    "TRAVELER", "STAFF", "RESOURCE", "COVERING", "ADMITTING", "CALL", "TEAM", "SENIOR", "JUNIOR",
    "HOUSE", "CONSULTING", "REFERRING", "ORDERING", "ASSISTING", "NEW", "FLOOR", "UNIT", "CARE",
    "CASE", "HOME", "SCHOOL", "STUDENT", "ICU", "OR", "ER", "ED", "PER", "DIEM", "BLOOD", "BANK",
    "RESPIRATORY", "THERAPY", "PHYSICAL", "OCCUPATIONAL", "SPEECH", "PAIN", "SERVICE", "SERVICES",
    "NUTRITION", "PHARMACY", "WOUND", "PALLIATIVE", "TRANSPLANT", "SOCIAL", "WORK", "INFECTION",
    "CONTROL", "MANAGEMENT", "SPIRITUAL", "RADIOLOGY", "ANESTHESIA", "SURGERY", "SURGICAL",
    "MEDICINE", "MEDICAL", "NEURO", "CARDIAC", "VASCULAR", "ACUTE", "CRITICAL", "INTENSIVE",
    "EMERGENCY", "RAPID", "RESPONSE", "CODE", "LINE", "ACCESS", "STROKE", "TRAUMA", "HOSPICE",
    "GERIATRIC", "PEDIATRIC", "PSYCH", "PSYCHIATRY", "BEHAVIORAL", "HEALTH", "CLINICAL", "NURSING",
];

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
    let all = (first..=last).all(|k| c.name_like(k, Strength::Weak) || c.initial(k) || c.is(k, bit::POST_TITLES));
    let some = (first..=last).any(|k| c.dict_name(k));
    if all && some {
        for k in first..=last {
            if !c.is(k, bit::POST_TITLES) {
                c.force(k, PhiKind::Name);
            }
        }
    }
}

/// Spreads a name to its neighbours: "Mary HULSE" (HULSE in no list),
/// "W. QUACKENBUSH" (an initial before a surname).
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
                // In mixed-case prose a surname is capitalised: "Amber Watson fan",
                // "Kovář began" go on in lower case.
                let tight = c.gap_after(i).trim().is_empty()
                    && c.candidate(j)
                    && !c.is(j, bit::NOT_AFTER_TITLE)
                    && !(c.mixed && c.toks[j].case == Case::Lower);
                let surname = tight && c.toks[j].has(LAST);
                // After a first name, a word in no list is a surname even
                // when it is one letter from a word ("Nancy Cetrone"); in
                // a mixed-case note so is a capitalised word ("Ferdinand
                // Tuppence").
                let first = c.toks[i].has(FIRST);
                let strange = tight && first && c.unknown_raw(j);
                // "Dr. Porky Pig", "wife Petunia Pig": after a name that a title or
                // a relation vouched for, a capitalised word is the surname too.
                let cued = i > 0 && (c.is(i - 1, bit::STRONG_TITLES) || c.is(i - 1, bit::RELATIONS));
                let capital = tight
                    && (first || cued)
                    && c.mixed
                    && c.toks[i].case == Case::Title
                    && c.toks[j].case == Case::Title
                    && !c.toks[j].has(STOP | MEDICAL);
                if (surname || strange || capital || c.name_like(j, Strength::Weak)) && !c.toks[j].sentence_start {
                    changed |= c.mark(j, PhiKind::Name);
                }
            }
            // "suzette and ank": a name-like word joined to a name by "and".
            if i + 2 < n && c.joined(i) && c.is(i + 1, bit::AND_WORD) && c.joined(i + 1) && c.labels[i + 2].is_none() {
                let j = i + 2;
                if c.name_like(j, Strength::Weak) && !c.is(j, bit::NOT_AFTER_TITLE) && !c.toks[j].sentence_start {
                    changed |= c.mark(j, PhiKind::Name);
                }
            }
            if i > 0 && c.joined(i - 1) && c.labels[i - 1].is_none() {
                let j = i - 1;
                let initial = c.initial(j) && c.gap_after(j).starts_with('.');
                // "Dr Will Cole": between a title and a surname, a first name is
                // one even when it is a common word ("Will", "May").
                let titled_first = j > 0
                    && c.is(j - 1, bit::STRONG_TITLES)
                    && c.joined(j - 1)
                    && c.toks[j].has(FIRST)
                    && !c.toks[j].numeric
                    && !c.is(j, bit::NOT_AFTER_TITLE)
                    && !c.blocked[j];
                if initial || titled_first || c.name_like(j, Strength::Weak) {
                    changed |= c.mark(j, PhiKind::Name);
                }
            }
        }
        if !changed {
            break;
        }
    }
}
