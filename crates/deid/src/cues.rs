//! The words context rules listen for: titles, relations, verbs of
//! talking and moving, facility keywords. Kept apart from the rules so the
//! lists can be read (and extended) in one place.

/// Titles that always precede a person's name.
#[rustfmt::skip]
pub(crate) const STRONG_TITLES: &[&str] = &[
    "DR", "DRS", "DOCTOR", "MR", "MRS", "MISS", "MISTER", "PROF", "PROFESSOR", "REV", "REVEREND",
    "RABBI", "FR", "FATHER", "PASTOR", "CHAPLAIN", "SISTER",
];

/// Roles that often precede a name but are also ordinary nouns or
/// abbreviations ("MS" is also "mental status").
#[rustfmt::skip]
pub(crate) const WEAK_TITLES: &[&str] = &[
    "MS", "RN", "NP", "MD", "LPN", "NURSE", "ATTENDING", "RESIDENT", "INTERN", "FELLOW", "PCP",
    "MANAGER", "WORKER", "THERAPIST", "PHYSICIAN", "SURGEON", "COORDINATOR", "NURSES",
    "CARDIOLOGIST", "NEUROLOGIST", "ONCOLOGIST", "INTENSIVIST", "HOSPITALIST",
];

/// Credentials written after a name ("ANN SMITH, RN").
#[rustfmt::skip]
pub(crate) const POST_TITLES: &[&str] = &[
    "RN", "MD", "NP", "PA", "LPN", "RRT", "PHD", "CNA", "MSW", "LICSW", "LCSW", "BSN", "MSN",
    "CRNA", "DO", "PAC", "JR", "SR", "III", "CRT", "SLP", "PHARMD", "DPT",
];

/// Credentials that are also clinical words ("PA" pressures, "NP" cough,
/// "DO" the verb): the word before them needs more than a weak hint.
#[rustfmt::skip]
pub(crate) const AMBIGUOUS_POST_TITLES: &[&str] = &[
    "PA", "NP", "DO",
];

/// Family and social relations that precede a name ("daughter Sarah").
#[rustfmt::skip]
pub(crate) const RELATIONS: &[&str] = &[
    "WIFE", "HUSBAND", "SPOUSE", "DAUGHTER", "DAUGHTERS", "DTR", "DAU", "SON", "SONS", "SISTER",
    "SISTERS", "SIS", "BROTHER", "BROTHERS", "BRO", "MOTHER", "MOM", "MOTHERS", "FATHER", "DAD",
    "NIECE", "NIECES", "NEPHEW", "NEPHEWS", "FRIEND", "FRIENDS", "GIRLFRIEND", "BOYFRIEND",
    "FIANCE", "FIANCEE", "PARTNER", "COUSIN", "AUNT", "UNCLE", "GRANDSON", "GRANDSONS",
    "GRANDDAUGHTER", "GRANDDAUGHTERS", "GRANDMOTHER", "GRANDFATHER", "GRANDCHILD", "STEPSON",
    "STEPDAUGHTER", "NEIGHBOR", "NEIGHBOUR", "HCP", "PROXY", "GUARDIAN", "DIL", "SIL", "LAW", "INLAW",
    "INLAWS",
    "CONTACT", "PERSON", "NAMED", "BOTH", "VISITOR", "VISITORS", "CAREGIVER", "ROOMMATE",
    "LAWYER", "ATTORNEY", "POA",
];

/// English words that follow a title without being a name ("DR ORDERS").
#[rustfmt::skip]
pub(crate) const NOT_AFTER_TITLE: &[&str] = &[
    "ORDER", "ORDERS", "ORDERED", "OFFICE", "NOTE", "NOTES", "WANTS", "WANTED", "SAYS", "SAID",
    "FEELS", "REQUESTS", "REQUESTED", "RECOMMENDS", "RECOMMENDED", "PLANS", "PLANNED", "THINKS",
    "FELT", "STATES", "STATED", "WROTE", "WRITES", "SEES", "SAW", "EXAMINED", "EVALUATED", "CAME",
    "COMES", "WENT", "ASKS", "CONSULT", "CONSULTED", "RESPONDED", "REVIEWED", "CONTACTED", "OK",
    "OKAY", "OKD", "RE", "REGARDING", "ON", "OFFICE'S", "BEEPED", "PAGED", "HERE", "THERE",
    "STOPPED",
];

/// Words after which the next word is probably the person acted with
/// ("spoke with X", "per X", "paged X").
#[rustfmt::skip]
pub(crate) const VERB_CUES: &[&str] = &[
    "PER", "PAGED", "NOTIFIED", "INFORMED", "UPDATED", "ASKED", "TOLD", "CONTACTED", "PAGING",
    "CALLED", "CALLING", "PAGE", "REACH", "REACHED", "SAYS", "SAID",
];

/// Verbs that take a name after "WITH".
#[rustfmt::skip]
pub(crate) const WITH_VERBS: &[&str] = &[
    "SPOKE", "SPOKEN", "TALKED", "DISCUSSED", "MET", "CONSULT", "CONSULTED", "CONFERRED",
    "SPEAKING", "TALKING", "MEETING", "SPOKE", "DISCUSSION", "CONVERSATION", "CONFERENCE",
    "UPDATE", "CHECK", "CHECKED", "FOLLOW", "FU", "UP",
];

/// Verbs that take a name after "TO".
#[rustfmt::skip]
pub(crate) const TO_VERBS: &[&str] = &[
    "SPOKE", "TALKED", "SPEAK", "TALK", "REPORT", "REPORTED", "GIVEN", "EXPLAINED", "SPOKEN",
    "CALL", "CALLED",
];

/// Verbs that take a name after "BY".
#[rustfmt::skip]
pub(crate) const BY_VERBS: &[&str] = &[
    "SEEN", "EVALUATED", "EXAMINED", "VISITED", "FOLLOWED", "CALLED", "SIGNED", "WRITTEN",
    "ASSESSED", "PLACED", "DONE", "REVIEWED",
];

/// Verbs that take a name after "FROM".
#[rustfmt::skip]
pub(crate) const FROM_VERBS: &[&str] = &[
    "CALL", "CALLS", "VISIT", "HEARD", "CALLED",
];

/// Words after a name that show it was a person ("X aware", "X at bedside").
#[rustfmt::skip]
pub(crate) const POST_CUES: &[&str] = &[
    "AWARE", "NOTIFIED", "PAGED", "CALLED", "VISITED", "UPDATED", "PRESENT", "INFORMED", "CALLS",
    "VISITING", "STATES", "STATED", "REPORTS", "REPORTED", "ASKED", "AGREES", "SAYS", "SAID",
    "EXPLAINED", "WROTE",
];

/// Words that end a facility name; the words before them are its name.
#[rustfmt::skip]
pub(crate) const FACILITY_KEYWORDS: &[&str] = &[
    "HOSPITAL", "HOSP", "HOSPITALS", "MEMORIAL", "MEDICAL", "REHAB", "REHABILITATION", "MANOR",
    "CLINIC", "HEALTHCARE", "HOSPICE", "INFIRMARY", "GENERAL", "REGIONAL", "HEALTH", "CENTER",
    "CENTRE", "VILLAGE", "COMMONS", "GARDENS", "TERRACE", "HEIGHTS", "PAVILION", "INSTITUTE",
    "SANITARIUM", "ER", "ED", "EW", "ADVENTIST", "METHODIST", "PRESBYTERIAN", "LUTHERAN",
];

/// Keywords that are part of the name itself ("FREDERICK MEMORIAL",
/// "KESSLER ADVENTIST": denominations name hospital systems).
#[rustfmt::skip]
pub(crate) const NAME_KEYWORDS: &[&str] = &[
    "MEMORIAL", "GENERAL", "REGIONAL", "ADVENTIST", "METHODIST", "PRESBYTERIAN", "LUTHERAN",
];

/// Words that widen a place into a region ("GREATER BALTIMORE").
#[rustfmt::skip]
pub(crate) const REGION_WORDS: &[&str] = &[
    "GREATER", "METRO", "METROPOLITAN", "DOWNTOWN", "SUBURBAN",
];

/// Verbs of moving a patient; the place comes after "to", "from" or "at".
#[rustfmt::skip]
pub(crate) const MOVES: &[&str] = &[
    "TRANSFER", "TRANSFERRED", "TRANSFERED", "TRANSFERING", "TRANSFERRING", "TX", "TXFER", "XFER",
    "XFERRED", "ADMITTED", "ADMIT", "ADMISSION", "ARRIVED", "DISCHARGED", "DISCHARGE", "DC", "DCD",
    "SENT", "REFERRED", "RETURN", "RETURNED", "RETURNING", "GOING", "GO", "TRANSPORTED", "TAKEN",
    "TRANSFERS", "TRANSITION", "BACK", "MOVED", "ACCEPTED", "SCREENED", "TRANSF", "WENT",
];

/// Words after a ward name ("QUARTERMAIN 2", "WEST WING").
#[rustfmt::skip]
pub(crate) const WARD_WORDS: &[&str] = &[
    "FLOOR", "UNIT", "WARD", "BUILDING", "BLDG", "WING", "TOWER", "PAVILION",
];

/// Verbs that introduce where someone lives.
#[rustfmt::skip]
pub(crate) const HOME_CUES: &[&str] = &[
    "LIVES", "LIVED", "LIVING", "RESIDES", "RESIDED", "MOVED", "VACATIONING", "HOME",
    "NATIVE", "RESIDENT", "RESIDENCE", "DRIVE", "DRIVING", "FLEW",
];

/// Words introducing an employer ("works for X").
#[rustfmt::skip]
pub(crate) const WORK_CUES: &[&str] = &[
    "WORKS", "WORKED", "WORKING", "EMPLOYED", "RETIRED", "EMPLOYEE", "CEO", "CFO", "PRESIDENT",
    "OWNER", "FOUNDER", "EMPLOYER",
];

/// Hospital places that may follow a hospital acronym ("GH ER").
#[rustfmt::skip]
pub(crate) const UNIT_AFTER: &[&str] = &[
    "ER", "EW", "ED", "CATH", "ICU", "CCU", "MICU", "SICU", "CX", "LAB", "CLINIC", "ATTORNEYS",
    "ADMISSION", "TEAM", "CARDIOLOGY", "SURGERY", "CAMPUS",
];

/// Units after a number that make it a dose, not a ward ("LASIX 2 MG").
#[rustfmt::skip]
pub(crate) const DOSE_UNITS: &[&str] = &[
    "MG", "G", "GM", "GMS", "MCG", "UNITS", "UNIT", "U", "L", "LPM", "ML", "CC", "CCS", "TABS",
    "TAB", "PUFFS", "AMP", "AMPS", "MEQ", "MMOL", "HOURS", "HRS", "HR", "DAYS", "TIMES", "MIN",
    "MINS", "LITERS", "CM", "MM", "KG", "LBS", "PLUS", "OF", "TO", "AND", "OR",
];

/// Small closed lists the rules use inline.
pub(crate) const MS_WORD: &[&str] = &["MS"];
pub(crate) const AND_WORD: &[&str] = &["AND"];
pub(crate) const OF_WORD: &[&str] = &["OF"];
pub(crate) const ER_WORDS: &[&str] = &["ER", "ED", "EW"];
pub(crate) const HOME_HOSPITAL: &[&str] = &["HOME", "HOSPITAL"];
pub(crate) const UNIVERSITY_WORDS: &[&str] = &["UNIVERSITY", "UNIV", "U"];
pub(crate) const MOVE_PREPS: &[&str] = &["TO", "FROM", "AT", "ON", "IN", "INTO", "THE", "BY", "LEAVE", "TRANSFER"];
pub(crate) const NOT_MOVE_PREPS: &[&str] = &["THE", "BY", "LEAVE"];
pub(crate) const SAINT_WORDS: &[&str] = &["ST", "SAINT", "STS"];
pub(crate) const ON_WORD: &[&str] = &["ON"];
pub(crate) const WORK_PREPS: &[&str] = &["FOR", "AT", "BY", "FROM", "OF"];
pub(crate) const GEO_PREPS: &[&str] = &["IN", "FROM", "NEAR", "TO", "OF", "AT"];
pub(crate) const WITH_WORD: &[&str] = &["WITH"];
pub(crate) const TO_WORD: &[&str] = &["TO"];
pub(crate) const BY_WORD: &[&str] = &["BY"];
pub(crate) const FROM_WORD: &[&str] = &["FROM"];

/// One bit per list above: a token carries the bits of every list it is
/// in, so "is this word a title?" is a bit test, not a list scan.
pub(crate) mod bit {
    /// Member of [`super::STRONG_TITLES`].
    pub(crate) const STRONG_TITLES: u64 = 1 << 0;
    /// Member of [`super::WEAK_TITLES`].
    pub(crate) const WEAK_TITLES: u64 = 1 << 1;
    /// Member of [`super::POST_TITLES`].
    pub(crate) const POST_TITLES: u64 = 1 << 2;
    /// Member of [`super::RELATIONS`].
    pub(crate) const RELATIONS: u64 = 1 << 3;
    /// Member of [`super::NOT_AFTER_TITLE`].
    pub(crate) const NOT_AFTER_TITLE: u64 = 1 << 4;
    /// Member of [`super::VERB_CUES`].
    pub(crate) const VERB_CUES: u64 = 1 << 5;
    /// Member of [`super::WITH_VERBS`].
    pub(crate) const WITH_VERBS: u64 = 1 << 6;
    /// Member of [`super::TO_VERBS`].
    pub(crate) const TO_VERBS: u64 = 1 << 7;
    /// Member of [`super::BY_VERBS`].
    pub(crate) const BY_VERBS: u64 = 1 << 8;
    /// Member of [`super::FROM_VERBS`].
    pub(crate) const FROM_VERBS: u64 = 1 << 9;
    /// Member of [`super::POST_CUES`].
    pub(crate) const POST_CUES: u64 = 1 << 10;
    /// Member of [`super::FACILITY_KEYWORDS`].
    pub(crate) const FACILITY_KEYWORDS: u64 = 1 << 11;
    /// Member of [`super::NAME_KEYWORDS`].
    pub(crate) const NAME_KEYWORDS: u64 = 1 << 12;
    /// Member of [`super::MOVES`].
    pub(crate) const MOVES: u64 = 1 << 13;
    /// Member of [`super::WARD_WORDS`].
    pub(crate) const WARD_WORDS: u64 = 1 << 14;
    /// Member of [`super::HOME_CUES`].
    pub(crate) const HOME_CUES: u64 = 1 << 15;
    /// Member of [`super::WORK_CUES`].
    pub(crate) const WORK_CUES: u64 = 1 << 16;
    /// Member of [`super::UNIT_AFTER`].
    pub(crate) const UNIT_AFTER: u64 = 1 << 17;
    /// Member of [`super::DOSE_UNITS`].
    pub(crate) const DOSE_UNITS: u64 = 1 << 18;
    /// Member of [`super::MS_WORD`].
    pub(crate) const MS_WORD: u64 = 1 << 19;
    /// Member of [`super::AND_WORD`].
    pub(crate) const AND_WORD: u64 = 1 << 20;
    /// Member of [`super::OF_WORD`].
    pub(crate) const OF_WORD: u64 = 1 << 21;
    /// Member of [`super::ER_WORDS`].
    pub(crate) const ER_WORDS: u64 = 1 << 22;
    /// Member of [`super::HOME_HOSPITAL`].
    pub(crate) const HOME_HOSPITAL: u64 = 1 << 23;
    /// Member of [`super::UNIVERSITY_WORDS`].
    pub(crate) const UNIVERSITY_WORDS: u64 = 1 << 24;
    /// Member of [`super::MOVE_PREPS`].
    pub(crate) const MOVE_PREPS: u64 = 1 << 25;
    /// Member of [`super::NOT_MOVE_PREPS`].
    pub(crate) const NOT_MOVE_PREPS: u64 = 1 << 26;
    /// Member of [`super::SAINT_WORDS`].
    pub(crate) const SAINT_WORDS: u64 = 1 << 27;
    /// Member of [`super::ON_WORD`].
    pub(crate) const ON_WORD: u64 = 1 << 28;
    /// Member of [`super::WORK_PREPS`].
    pub(crate) const WORK_PREPS: u64 = 1 << 29;
    /// Member of [`super::GEO_PREPS`].
    pub(crate) const GEO_PREPS: u64 = 1 << 30;
    /// Member of [`super::WITH_WORD`].
    pub(crate) const WITH_WORD: u64 = 1 << 31;
    /// Member of [`super::TO_WORD`].
    pub(crate) const TO_WORD: u64 = 1 << 32;
    /// Member of [`super::BY_WORD`].
    pub(crate) const BY_WORD: u64 = 1 << 33;
    /// Member of [`super::FROM_WORD`].
    pub(crate) const FROM_WORD: u64 = 1 << 34;
    /// Member of `allow::GENERIC_FACILITY_WORDS`.
    pub(crate) const GENERIC_FACILITY_WORDS: u64 = 1 << 35;
    /// Member of [`super::AMBIGUOUS_POST_TITLES`].
    pub(crate) const AMBIGUOUS_POST_TITLES: u64 = 1 << 36;
    /// Member of [`super::REGION_WORDS`].
    pub(crate) const REGION_WORDS: u64 = 1 << 37;
}

/// Every list with its bit, for the lexicon.
pub(crate) const REGISTRY: &[(u64, &[&str])] = &[
    (bit::STRONG_TITLES, STRONG_TITLES),
    (bit::WEAK_TITLES, WEAK_TITLES),
    (bit::POST_TITLES, POST_TITLES),
    (bit::RELATIONS, RELATIONS),
    (bit::NOT_AFTER_TITLE, NOT_AFTER_TITLE),
    (bit::VERB_CUES, VERB_CUES),
    (bit::WITH_VERBS, WITH_VERBS),
    (bit::TO_VERBS, TO_VERBS),
    (bit::BY_VERBS, BY_VERBS),
    (bit::FROM_VERBS, FROM_VERBS),
    (bit::POST_CUES, POST_CUES),
    (bit::FACILITY_KEYWORDS, FACILITY_KEYWORDS),
    (bit::NAME_KEYWORDS, NAME_KEYWORDS),
    (bit::MOVES, MOVES),
    (bit::WARD_WORDS, WARD_WORDS),
    (bit::HOME_CUES, HOME_CUES),
    (bit::WORK_CUES, WORK_CUES),
    (bit::UNIT_AFTER, UNIT_AFTER),
    (bit::DOSE_UNITS, DOSE_UNITS),
    (bit::MS_WORD, MS_WORD),
    (bit::AND_WORD, AND_WORD),
    (bit::OF_WORD, OF_WORD),
    (bit::ER_WORDS, ER_WORDS),
    (bit::HOME_HOSPITAL, HOME_HOSPITAL),
    (bit::UNIVERSITY_WORDS, UNIVERSITY_WORDS),
    (bit::MOVE_PREPS, MOVE_PREPS),
    (bit::NOT_MOVE_PREPS, NOT_MOVE_PREPS),
    (bit::SAINT_WORDS, SAINT_WORDS),
    (bit::ON_WORD, ON_WORD),
    (bit::WORK_PREPS, WORK_PREPS),
    (bit::GEO_PREPS, GEO_PREPS),
    (bit::WITH_WORD, WITH_WORD),
    (bit::TO_WORD, TO_WORD),
    (bit::BY_WORD, BY_WORD),
    (bit::FROM_WORD, FROM_WORD),
    (bit::GENERIC_FACILITY_WORDS, crate::allow::GENERIC_FACILITY_WORDS),
    (bit::AMBIGUOUS_POST_TITLES, AMBIGUOUS_POST_TITLES),
    (bit::REGION_WORDS, REGION_WORDS),
];

/// A preposition and the verbs that make the word after it a name
/// ("spoke WITH X", "seen BY X").
pub(crate) const VERB_PREP: &[(u64, u64)] = &[
    (bit::WITH_WORD, bit::WITH_VERBS),
    (bit::TO_WORD, bit::TO_VERBS),
    (bit::BY_WORD, bit::BY_VERBS),
    (bit::FROM_WORD, bit::FROM_VERBS),
];
