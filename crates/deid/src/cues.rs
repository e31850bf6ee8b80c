//! The words context rules listen for: titles, relations, verbs of
//! talking and moving, facility keywords. Kept apart from the rules so the
//! lists can be read (and extended) in one place.

/// Titles that always precede a person's name.
#[rustfmt::skip]
pub(crate) const STRONG_TITLES: &[&str] = &[
    "DR", "DRS", "DOCTOR", "MR", "MRS", "MISS", "MISTER", "PROF", "PROFESSOR", "REV", "REVEREND",
    "RABBI", "FR", "FATHER", "PASTOR", "CHAPLAIN", "SISTER", "DRS",
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
    "CRNA", "DO", "PAC", "JR", "SR", "III",
];

/// Family and social relations that precede a name ("daughter Sarah").
#[rustfmt::skip]
pub(crate) const RELATIONS: &[&str] = &[
    "WIFE", "HUSBAND", "SPOUSE", "DAUGHTER", "DAUGHTERS", "DTR", "DAU", "SON", "SONS", "SISTER",
    "SISTERS", "SIS", "BROTHER", "BROTHERS", "BRO", "MOTHER", "MOM", "MOTHERS", "FATHER", "DAD",
    "NIECE", "NIECES", "NEPHEW", "NEPHEWS", "FRIEND", "FRIENDS", "GIRLFRIEND", "BOYFRIEND",
    "FIANCE", "FIANCEE", "PARTNER", "COUSIN", "AUNT", "UNCLE", "GRANDSON", "GRANDSONS",
    "GRANDDAUGHTER", "GRANDDAUGHTERS", "GRANDMOTHER", "GRANDFATHER", "GRANDCHILD", "STEPSON",
    "STEPDAUGHTER", "NEIGHBOR", "NEIGHBOUR", "HCP", "PROXY", "GUARDIAN", "DIL", "SIL", "LAW",
    "CONTACT", "PERSON", "NAMED", "BOTH", "VISITOR", "VISITORS", "CAREGIVER", "ROOMMATE",
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
    "CALLED", "CALLING", "PAGE",
];

/// Verbs that take a name after a preposition ("spoke WITH X", "seen BY X").
#[rustfmt::skip]
pub(crate) const VERB_PREP: &[(&str, &[&str])] = &[
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
#[rustfmt::skip]
pub(crate) const POST_CUES: &[&str] = &[
    "AWARE", "NOTIFIED", "PAGED", "CALLED", "VISITED", "UPDATED", "PRESENT", "INFORMED", "CALLS",
    "VISITING", "STATES", "STATED", "REPORTS", "REPORTED", "ASKED", "AGREES",
];

/// Every name-rule list, so the lexicon can tag cue words once and the
/// rules skip the list scan for the many words that are no cue at all.
pub(crate) const NAME_CUE_LISTS: &[&[&str]] = &[
    STRONG_TITLES,
    WEAK_TITLES,
    POST_TITLES,
    RELATIONS,
    VERB_CUES,
    POST_CUES,
    NOT_AFTER_TITLE,
    &["AND", "MS", "WITH", "TO", "BY", "FROM"],
    VERB_PREP[0].1,
    VERB_PREP[1].1,
    VERB_PREP[2].1,
    VERB_PREP[3].1,
];

/// Words that end a facility name; the words before them are its name.
#[rustfmt::skip]
pub(crate) const FACILITY_KEYWORDS: &[&str] = &[
    "HOSPITAL", "HOSP", "HOSPITALS", "MEMORIAL", "MEDICAL", "REHAB", "REHABILITATION", "MANOR",
    "CLINIC", "HEALTHCARE", "HOSPICE", "INFIRMARY", "GENERAL", "REGIONAL", "HEALTH", "CENTER",
    "CENTRE", "VILLAGE", "COMMONS", "GARDENS", "TERRACE", "HEIGHTS", "PAVILION", "INSTITUTE",
    "SANITARIUM", "ER", "ED", "EW",
];

/// Keywords that are part of the name itself ("FREDERICK MEMORIAL").
#[rustfmt::skip]
pub(crate) const NAME_KEYWORDS: &[&str] = &[
    "MEMORIAL", "GENERAL", "REGIONAL",
];

/// Verbs of moving a patient; the place comes after "to", "from" or "at".
#[rustfmt::skip]
pub(crate) const MOVES: &[&str] = &[
    "TRANSFER", "TRANSFERRED", "TRANSFERED", "TRANSFERING", "TRANSFERRING", "TX", "TXFER", "XFER",
    "XFERRED", "ADMITTED", "ADMIT", "ADMISSION", "ARRIVED", "DISCHARGED", "DISCHARGE", "DC", "DCD",
    "SENT", "REFERRED", "RETURN", "RETURNED", "RETURNING", "GOING", "GO", "TRANSPORTED", "TAKEN",
    "TRANSFERS", "TRANSITION", "BACK", "MOVED", "ACCEPTED", "SCREENED", "TRANSF",
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
    "WORKS", "WORKED", "WORKING", "EMPLOYED", "RETIRED", "EMPLOYEE",
];

/// Small closed lists used inline below ("TO", "ST", "UNIVERSITY").
#[rustfmt::skip]
pub(crate) const SMALL_CUES: &[&str] = &[
    "ER", "ED", "EW", "OF", "HOME", "HOSPITAL", "UNIVERSITY", "UNIV", "U", "TO", "FROM", "AT",
    "ON", "IN", "INTO", "THE", "BY", "LEAVE", "TRANSFER", "ST", "SAINT", "STS", "FOR", "NEAR",
    "WHEN", "AND",
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

/// Every place-rule list, for the lexicon's cue tag.
pub(crate) const PLACE_CUE_LISTS: &[&[&str]] = &[
    FACILITY_KEYWORDS,
    NAME_KEYWORDS,
    MOVES,
    WARD_WORDS,
    HOME_CUES,
    WORK_CUES,
    SMALL_CUES,
    UNIT_AFTER,
    DOSE_UNITS,
    crate::allow::GENERIC_FACILITY_WORDS,
];
