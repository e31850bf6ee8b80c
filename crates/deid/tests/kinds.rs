//! One test per identifier kind, plus the allow-list and the error path.

use phivault_deid::{DeidError, PhiKind, Replacement, Scrubber, ScrubberConfig};
use std::sync::OnceLock;

/// Building the engine compiles the dictionaries: do it once per binary.
fn scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| Scrubber::new(ScrubberConfig::default()))
}

fn red(text: &str) -> String {
    scrubber().redact(text, Replacement::TypedPlaceholder)
}

/// The texts `find` flags, with their kinds.
fn found(text: &str) -> Vec<(String, PhiKind)> {
    scrubber().find(text).into_iter().map(|s| (text[s.start..s.end].to_string(), s.kind)).collect()
}

/// Asserts that no span of `kind` is found in any of `texts`.
fn assert_no(kind: PhiKind, texts: &[&str]) {
    for text in texts {
        let spans = found(text);
        assert!(spans.iter().all(|(_, k)| *k != kind), "{kind:?} found in {text:?}: {spans:?}");
    }
}

fn assert_gone(text: &str, secret: &str) {
    let out = red(text);
    assert!(!out.contains(secret), "{secret:?} survived in {out:?}");
}

#[test]
fn dates_in_many_formats() {
    for (text, date) in [
        ("7/22 FOUND BY HUSBAND", "7/22"),
        ("admitted 07/22/2093 from home", "07/22/2093"),
        ("echo on 2093-07-22 showed", "2093-07-22"),
        ("seen July 22 in clinic", "July 22"),
        ("surgery 22 Jul 2093 went well", "22 Jul 2093"),
        ("since Jul. 22nd no BM", "Jul. 22nd"),
        ("DISCHARGE MAY 16, 2015 PLANNED", "MAY 16, 2015"),
        ("CABG 8/88, AVR", "8/88"),
        ("returned 3-24-17 for f/u", "3-24-17"),
        ("drawn on the 11th.", "11th"),
        ("in March of 1993 she had", "March of 1993"),
    ] {
        assert_gone(text, date);
        assert!(found(text).iter().any(|(_, k)| *k == PhiKind::Date), "{text}");
    }
}

#[test]
fn times_scores_and_settings_are_not_dates() {
    assert_no(
        PhiKind::Date,
        &[
            "ARRIVED APPROX. 2130 AND AT 10:30",
            "PAIN 5/10 RELIEVED",
            "CPAP 5/5 OVERNIGHT",
            "PS 12/5/40% WELL TOLERATED",
            "1/2 NS AT 75",
            "STRENGTH 5/5 ALL EXTREMITIES",
            "BP 120/80 HR 70",
        ],
    );
}

#[test]
fn phones_in_many_formats() {
    for (text, phone) in [
        ("call 410-555-0199 today", "410-555-0199"),
        ("cell (410) 555-0199", "555-0199"),
        ("home 410.555.0199 ext 45", "0199"),
        ("W: 858 789 7896.", "7896"),
        ("HOME-555-0147.", "555-0147"),
        ("Pager #54321 after 5", "54321"),
        ("fax 212/476/8356", "8356"),
    ] {
        assert_gone(text, phone);
    }
    assert!(!red("call 410-555-0199 x45").contains("x45"));
}

#[test]
fn contact_and_network_identifiers() {
    assert_eq!(red("mail daffy.duck@example.com now"), "mail [EMAIL] now");
    assert_eq!(red("see https://portal.example.org/p?id=9 ok"), "see [URL] ok");
    assert_eq!(red("from 192.168.10.7 at 0700"), "from [IP] at 0700");
    assert_gone("host 2001:db8::8a2e:370:7334 down", "2001:db8");
    assert_eq!(red("SSN 123-45-6789."), "SSN [SSN].");
    assert_gone("MRN: 00412345 on file", "00412345");
    assert_gone("Acct # A1234567", "A1234567");
    assert_gone("ref # 8336652 for claim", "8336652");
}

#[test]
fn zip_codes_and_addresses() {
    assert_gone("lives at 19 Clover St. in town", "Clover");
    assert_gone("Baltimore, MD 21201-1234", "21201");
    assert_gone("moved to 1200 Looney Tunes Avenue last year", "Looney");
    assert_gone("HOME IN TOWSON", "TOWSON");
    assert_gone("FROM MIDDLE RIVER, MD", "MIDDLE RIVER");
}

#[test]
fn ages_over_89_only() {
    assert_gone("92 yo female", "92");
    assert_gone("age 95, lives alone", "95");
    assert_gone("A 93 year old man", "93");
    assert_eq!(red("45 yo female"), "45 yo female");
    assert_eq!(red("age 45, lives alone"), "age 45, lives alone");
}

#[test]
fn names_with_titles_roles_and_relatives() {
    assert_gone("SEEN BY DR. ROTHMANN TODAY", "ROTHMANN");
    assert_gone("per Dr Golini will wean", "Golini");
    assert_gone("MRS. MCLAUGHLIN'S SPEECH", "MCLAUGHLIN");
    assert_gone("W. QUACKENBUSH AWARE", "QUACKENBUSH");
    assert_gone("spoke with Mary Hulse re plan", "Hulse");
    assert_gone("DAUGHTER-KRISSY---VISITED", "KRISSY");
    assert_gone("pt's daughters sarah and margie visited", "margie");
    assert_gone("wife Carol called", "Carol");
    assert_gone("NP CAROL AWARE", "CAROL");
    assert_gone("JANE SMITH, RN", "SMITH");
    assert_gone("Mr. Nicholson is awake", "Nicholson");
}

#[test]
fn hospitals_and_wards() {
    assert_gone("TRANSFER FROM CALVERT HOSPITAL FOR", "CALVERT");
    assert_gone("will go to Sacred Heart Memorial", "Sacred Heart");
    assert_gone("accepted by St. Agnes today", "Agnes");
    assert_gone("transfer to Quartermain 2 when bed ready", "Quartermain");
    assert_gone("REFERRED TO GH FOR CATH", "GH");
    assert_gone("admitted to University of Maryland", "Maryland");
}

#[test]
fn allow_list_keeps_medical_words() {
    for text in [
        "FOLEY CATHETER DRAINING CLEAR URINE",
        "SWAN GANZ CATHETER IN PLACE",
        "HX OF PARKINSON'S AND ALZHEIMER'S",
        "HOLTER MONITOR, DOPPLER PULSES",
        "HEAD CT NEG FOR BLEED",
        "PT TO WARD WITH HOPE OF DC, MAY WILL BASH",
        "ST ELEVATION ON EKG, ST TACH 110",
        "S. AUREUS IN SPUTUM, C. DIFF NEG",
        "BOLUS GIVEN, PACER OFF, LEVO AT 5",
    ] {
        assert_eq!(red(text), text, "{:?}", found(text));
    }
}

#[test]
fn config_allow_deny_and_skip() {
    let s = Scrubber::new(ScrubberConfig {
        allow: vec!["nicholson".into()],
        deny: vec!["Zorblax".into()],
        skip: vec![PhiKind::Date],
    });
    let out = s.redact("NICHOLSON SAW ZORBLAX ON 7/22/2093", Replacement::TypedPlaceholder);
    assert_eq!(out, "NICHOLSON SAW [NAME] ON 7/22/2093");
    // A deny word with accents finds the word however it is written: accents and case
    // fold the same way for the caller's words as for the note's.
    let s = Scrubber::new(ScrubberConfig { deny: vec!["Zorbläx".into()], ..ScrubberConfig::default() });
    for text in ["seen with zorbläx today", "SEEN WITH ZORBLÄX TODAY", "seen with Zorblax today"] {
        let out = s.redact(text, Replacement::TypedPlaceholder);
        assert!(out.contains("[NAME]") && !out.to_lowercase().contains("zorbl"), "{text}: {out}");
    }
}

#[test]
fn spans_are_sorted_disjoint_and_on_char_boundaries() {
    let text = "Dr. Rothmann saw José García 7/22/2093 at 410-555-0199 — ok ünïcödé";
    let spans = scrubber().find(text);
    assert!(!spans.is_empty());
    for w in spans.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    for s in &spans {
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
    }
    let masked = scrubber().redact(text, Replacement::Mask);
    assert_eq!(masked.chars().count(), text.chars().count());
}

#[test]
fn bytes_must_be_utf8() {
    let bad = b"DR. SMITH \xff\xfe SAW PT";
    assert_eq!(scrubber().scrub_bytes(bad, Replacement::TypedPlaceholder), Err(DeidError::NotUtf8 { valid_up_to: 10 }));
    assert_eq!(
        scrubber().scrub_bytes(b"DR. ROTHMANN SAW PT", Replacement::TypedPlaceholder).expect("valid utf-8"),
        "DR. [NAME] SAW PT"
    );
}

#[test]
fn huge_input_is_windowed_and_linear() {
    // 3 MB of text crosses several internal windows; identifiers near the
    // cuts must still be found and offsets must stay absolute.
    let line = "PT SEEN BY DR. ROTHMANN ON 7/22/2093, CALL 410-555-0199.\n";
    let text = line.repeat(3_000_000 / line.len());
    let spans = scrubber().find(&text);
    let per_line = scrubber().find(line).len();
    assert_eq!(spans.len(), per_line * (text.len() / line.len()));
    assert!(spans.iter().all(|s| !text[s.start..s.end].contains('\n')));
}

#[test]
fn empty_and_odd_input() {
    assert!(scrubber().find("").is_empty());
    assert!(scrubber().find("\n\n   \t").is_empty());
    let _ = scrubber().find(&"'".repeat(10_000));
    let _ = scrubber().find(&"9/".repeat(10_000));
}

#[test]
fn fractions_chains_and_scores_are_not_dates() {
    assert_no(
        PhiKind::Date,
        &[
            "CRACKLES UP 1/3 BILAT",
            "OOB FOR 1 1/2 HRS",
            "CO/CI 5-6/3-4 AND SVR 900",
            "co/ci/svr 6/2.8/698 this am",
            "pt c/o CP 8/10, given NTG",
        ],
    );
    // A day past 12 is a date whatever follows it; so is /10 after "on".
    assert_gone("NO GROWTH FROM 8/29 CULTURES", "8/29");
    assert_gone("FELL ON 8/10. HYPOTENSIVE", "8/10");
    assert_gone("ceftaz 8/2 - 8/10 given", "8/10");
}

#[test]
fn typos_and_verbs_after_relations_are_not_names() {
    assert_no(
        PhiKind::Name,
        &[
            "pt recieved 3 recruitment breaths and secreations were thick",
            "sister said she did not want more",
            "Sister reports pt had poor PO intake.",
            "Spoke with daughter, full code confirmed.",
        ],
    );
    // A title still makes an unknown word a name.
    assert_gone("SEEN BY DR. QUELLAN TODAY", "QUELLAN");
}

#[test]
fn regions_and_short_years() {
    assert_gone("FAMILY ARRIVED FROM THE EASTERN SHORE AT 2 AM", "EASTERN SHORE");
    assert_gone("radiation planning on North Campus followed by", "North Campus");
    assert_gone("PMH: MI 81'. APPENDECTOMY", "81'");
    // Decades and feet are not years.
    assert_eq!(red("BP 120'S, HT 5'10\""), "BP 120'S, HT 5'10\"");
}

/// The kinds `find` reports for `text`, for tests that only care about kinds.
fn kinds(text: &str) -> Vec<PhiKind> {
    found(text).into_iter().map(|(_, k)| k).collect()
}

#[test]
fn drugs_after_started_on_are_not_places_or_names() {
    for text in [
        "STARTED ON ZORBAMYCIN 1GM Q8H",
        "CONTINUE ON PREDNISONE 60 MG, LASIX PRN",
        "Pt sent home on Quackoxacin. Frequent pain since.",
        "REMAINS SEDATED ON MIDAZOLAM 2MG IV GTT",
        "SPOKE WITH DR DUCK AND HYDRALAZINE ON HOLD",
    ] {
        assert!(
            found(text).iter().all(|(w, k)| *k != PhiKind::Location && !w.contains("MYCIN") && !w.contains("oxacin")),
            "{text:?}: {:?}",
            found(text)
        );
    }
    assert_gone("SPOKE WITH DR DUCK AND HYDRALAZINE ON HOLD", "DUCK");
}

#[test]
fn clinical_clauses_are_not_street_addresses() {
    for text in [
        "MILRINONE DECREASED TO .25 @2200 PER DR. DUCK.",
        "RATE DECREASED TO 50 BY DR PORKY",
        "REPEAT K 4.0 KCL NOT GIVEN DR DUCK AWARE",
        "MSO4 4 MG SQ GIVEN AND REGLAN",
        "GU: 3 WAY FOLEY IN PLACE",
        "PT HAD 1 ST DEGREE AV BLOCK",
    ] {
        assert!(!kinds(text).contains(&PhiKind::Location), "{text:?}: {:?}", found(text));
    }
    // Real addresses still are.
    assert_gone("lives at 19 Clover St. in town", "Clover");
    assert_gone("moved to 1200 Looney Tunes Avenue last year", "Looney");
}

#[test]
fn ranges_of_readings_are_not_phones_or_ids() {
    for text in [
        "CO/CI 4.1-4.9/2.30-2.64 SVR 871-1207; MAG GIVEN",
        "RUNS OF SVT, WITH HR 105-1126.",
        "BP 112-1398/47-55. CVP 8-11.",
        "a-paced, rare pvc, pa# 58-66/24-29, cvp 22",
        "Changed foley to #18fr 3way",
        "RESP: remains on #7ETT 21cm lip.",
    ] {
        assert!(
            found(text).iter().all(|(_, k)| !matches!(k, PhiKind::Phone | PhiKind::Id)),
            "{text:?}: {:?}",
            found(text)
        );
    }
    assert_gone("HOME-555-0147.", "555-0147");
    assert_gone("call 555-0199 after 5", "555-0199");
    assert_gone("Acct # A1234567", "A1234567");
}

#[test]
fn degrees_ordinals_and_blood_gases_are_not_dates() {
    for text in [
        "HOB 30'. DRAIN AT 15",
        "AMBULATED 40' WITH 1 ASSIST",
        "BP 90-100's, HR 60-70' nsr",
        "bleed extending into the 4th ventricle",
        "vent changes per ABG (7.31-48-85).",
        "CO/CI 6.92-5.40/3.3-2.71 SVR 640",
        "decrease in CP to 3/10, BP stable",
        "PSV increased to 10/5 overnight",
        "AC 450/40 / 5/10, SAT 98%",
    ] {
        assert!(!kinds(text).contains(&PhiKind::Date), "{text:?}: {:?}", found(text));
    }
    assert_gone("PMH: MI 81'. APPENDECTOMY", "81'");
    assert_gone("drawn on the 11th.", "11th");
    assert_gone("returned 3-24-17 for f/u", "3-24-17");
}

#[test]
fn surnames_after_first_names_and_before_credentials() {
    // A word one letter from an English word is still a surname after a
    // first name; an eponym is one between a first name and a credential.
    assert_gone("pt spokesperson is Nancy Muskrab his niece.", "Muskrab");
    assert_gone("report given.\nElmer Foley CRT\n", "Foley");
    assert_gone("Plan per Dr Elmer Tuppence and the team.", "Tuppence");
    assert_gone("GIVEN CARAFATE-W. QUACKENBUSH AWARE", "W.");
    assert_gone("health care proxies are Marcie and Zorbo.", "Zorbo");
}

#[test]
fn first_names_opening_a_clause_before_a_telling_verb() {
    assert_gone("afebrile overnight, no issues.\nsocial: bill called once about 4pm.", "bill");
    assert_gone("wbc pending.\nsocial: bob visited during the evening.", "bob");
}

#[test]
fn places_after_moves_roles_and_region_words() {
    assert_gone("Pt went to Meadowbrook on 3/6 c/o pain.", "Meadowbrook");
    assert_gone("Surgeon from Lakeshore in this eve to talk with family.", "Lakeshore");
    assert_gone("Admitted from Burbank Adventist for cath.", "Adventist");
    assert_gone("MedFlight from Greater Burbank this am.", "Greater");
    assert_gone("HUSBAND IS CEO OF ACMEX. SMOKER.", "ACMEX");
}

#[test]
fn clinical_words_after_weak_cues_are_not_names() {
    for text in [
        "MAP >60. Hemodynamics PA 54/18 after fluids.",
        "CHEST CLEAR. STRONG NP COUGH.",
        "PT UPDATED AGAIN BY MD. HIGH DOSE EPI STARTED",
        "ECHO showed 25% EF w/ 3-4+MR. Given total 6u PRBC.",
        "Monitor for changes in MS. Aspiration precautions.",
        "GI: Appetite good, ate reuben sandwich and soup.",
        "A: Insulin titrated per fingersticks, skin care per reqs.",
        "Will stop pressors after Rabbi sees pt.",
        "WILL DEFER PT F/U TODAY, WILL F/U IN NEXT 1-2 DAYS",
        "SON WENT BACK TO CALIFORNIA, DAUGHTER WILL RETURN",
        "pt recieved 3 recruitment breaths with effect",
        "NAUSEA WITH MOTION. VOMITTED 1X AFTER GETTING OOB",
    ] {
        assert!(
            found(text).iter().all(|(_, k)| !matches!(k, PhiKind::Name | PhiKind::Location)),
            "{text:?}: {:?}",
            found(text)
        );
    }
    // A title after "seen by" is still one, whatever word follows it.
    assert_gone("SEEN BY MS. COYOTE TODAY", "COYOTE");
}

#[test]
fn cue_words_clinical_endings_and_reading_chains_are_not_phi() {
    // "Drs" and "in-law" introduce names; they are not names themselves.
    let drs = found("PAGED AND DRS FUDD AND DUCK IN TO SEE PT");
    assert!(drs.iter().all(|(w, _)| w != "DRS"), "{drs:?}");
    assert!(drs.iter().any(|(w, _)| w.contains("FUDD")), "the names after it still are: {drs:?}");
    let law = found("pt's son-in-law Porky Pig visited, dtr-in-law also called");
    assert!(law.iter().all(|(w, _)| !w.eq_ignore_ascii_case("law") && w != "in-law"), "{law:?}");
    assert!(law.iter().any(|(w, _)| w.contains("Porky")), "{law:?}");
    // Clinical terms in no word list, by their Greek and Latin endings.
    for term in ["HYPOXEMIA", "BRADYPNEA", "PANCYTOPENIA", "THORACENTESIS", "HEPATOMEGALY"] {
        let text = format!("NOTIFIED ABOUT {term} OVERNIGHT");
        assert!(found(&text).is_empty(), "{term}: {:?}", found(&text));
    }
    // ... but a surname ending in -itis is still a surname after a title.
    assert_gone("PLAN DISCUSSED WITH DR. BUNNYAITIS TODAY", "BUNNYAITIS");
    // Readings and settings, not dates.
    assert_no(PhiKind::Date, &["BP 70-80'2/30-40'S ALL AM", "SETTINGS 5/5/.40 WITH ABG 7.32/57/117"]);
    assert_gone("SEEN ON 5/10/2093 BY TEAM", "5/10");
}

#[test]
fn relatives_capitalised_in_prose_and_surnames_without_their_apostrophe() {
    // Petunia and Pig are English words in no list of names: the capital after
    // a relation, in mixed-case prose, gives them away.
    assert_gone("Spoke with wife Petunia about the plan.", "Petunia");
    assert_gone("Pt doing well. Wife Petunia called twice.", "Petunia");
    // Upper-case notes have no such hint; a listed first name still counts.
    assert_gone("DAUGHTER ROSE VISITED.", "ROSE");
    // Lower-case words after a relation stay words.
    let plain = found("Pt's wife called; son visited and daughter states she is fine.");
    assert!(plain.is_empty(), "{plain:?}");
    for text in ["Discussed with Dr o rourke at noon.", "PER DR O BRIEN, CONTINUE DRIPS."] {
        let spans = found(text);
        let words: Vec<&str> = spans.iter().map(|(w, _)| w.as_str()).collect();
        assert!(
            words.iter().any(|w| w.eq_ignore_ascii_case("rourke") || w.eq_ignore_ascii_case("brien")),
            "{text}: {spans:?}"
        );
    }
}

#[test]
fn mixed_case_prose_gives_away_surnames_and_unlisted_towns() {
    // A capitalised word after a name that a title or relation vouched for.
    assert_gone("Her PCP is Dr. Porky Pig at the clinic.", "Pig");
    assert_gone("Mother Granny Pig visited today.", "Pig");
    // A town in no list, named with its state.
    assert_gone("Pt is from Toontown, NJ and lives alone.", "Toontown");
    // Upper-case notes and ordinary words give no such hint.
    let upper = found("PRECAUTIONS, MD AWARE. PT SEEN BY TEAM.");
    assert!(upper.is_empty(), "{upper:?}");
    let plain = found("Discussed with Dr. Fudd Today about the plan.");
    assert!(plain.iter().all(|(w, _)| w != "Today"), "{plain:?}");
}

#[test]
fn names_given_as_names_timestamps_and_plates() {
    // Two capitalised words before a credential or a bracketed relation.
    assert_gone("Attending: Bugs Bunny MD", "Bunny");
    assert_gone("HCP: Petunia Pig (wife) 555-0199", "Petunia");
    for text in ["Blood Bank RN notified.", "Night Float MD aware.", "Respiratory Therapy RRT at bedside."] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
    // A name given as one.
    assert_gone("Patient states her name is Daisy.", "Daisy");
    assert_gone("Pt goes by \"Duckie\".", "Duckie");
    for text in ["The drug name is Lasix.", "His name is on the list.", "Pt goes by wheelchair."] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
    // Timestamps as systems write them; vehicle plates with a hyphen.
    assert_gone("Admit date: 2093-04-17T10:30.", "04-17");
    assert_gone("License plate ABC-1234 noted by security.", "1234");
}

#[test]
fn address_parts_devices_spelled_ages_and_middle_initials() {
    assert_gone("PO Box 1234, Duckburg, CA 90210.", "1234");
    assert_gone("Lives at 123 Main Street, Apt 4B.", "4B");
    assert_gone("Lives at 42 Wallaby Way.", "Wallaby");
    assert!(found("WALKED 2 LAPS ON HIS WAY.").is_empty());
    // A GS1 UDI: the expiry date and serial after the device identifier too.
    assert_gone("Device UDI (01)00643169001763(17)160712(21)21A5000.", "21A5000");
    assert_gone("He is ninety-one years old.", "ninety-one");
    let ip = scrubber().redact("IP address 2001:db8::1 logged.", Replacement::TypedPlaceholder);
    assert_eq!(ip, "IP address [IP] logged.", "the space after an IPv6 address stays");
    assert_gone("Case manager: Wile E. Coyote.", "Coyote");
    for text in ["Vitamin D. Levels low.", "Plan A. Continue meds.", "Hepatitis B. Follow up."] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn apt_as_a_word_keeps_its_neighbours() {
    // "apt" is also an English word; only a number (or a letter with one) after it is
    // an apartment.
    assert!(found("Pt is apt a bit anxious at night.").is_empty(), "{:?}", found("Pt is apt a bit anxious at night."));
    assert_gone("Lives at 123 Main Street, Apt B12.", "B12");
}

#[test]
fn round_four_dates_found_and_settings_kept() {
    for (text, date) in [
        ("He returned to OR on 7-8 for coiling.", "7-8"),
        ("Blood cultures from 3-5 grew staph.", "3-5"),
        ("Pt transferred to Toontown.8/31. Readmitted", "8/31"),
        ("Wean from vent and extubate 3/11. Continue support.", "3/11"),
        ("Transfused post 3/3 with good effect.", "3/3"),
        ("progress note\n1->2 nov, 93\n1900 - 0700", "1->"),
        ("Seen Nov 1-2, 2093 in clinic.", "1-2"),
        ("Away 3 to 5 Dec with family.", "3 to"),
    ] {
        assert_gone(text, date);
    }
    assert_no(
        PhiKind::Date,
        &[
            "on 2-4 L NC sats 95%",
            "insulin going from 2-4 units/hr",
            "resting on 1-2 pillows",
            "received on mask ventilation 10/5 40%",
            "wean down to 10/5 as tolerated",
            "versed 2/2/1mg without effect",
            "ABG 11/31/7.45 on these settings",
            "PERRLA 3/3 brisk",
            "sputum (2/2 weaker cough)",
        ],
    );
}

#[test]
fn round_four_names_by_roles_contacts_and_initials() {
    assert_gone("CT GUIDED TAP...ELMER QUACKENBUSH (RESIDENT) WORKING ON IT", "QUACKENBUSH");
    assert_gone("CT GUIDED TAP...ELMER QUACKENBUSH (RESIDENT) WORKING ON IT", "ELMER");
    assert_gone("Discussed with Dr Lucie Lange, Dr Will Quackenbush (attending).", "Will");
    assert_gone("Wife and lawyer (Elmer Fudd) aware of plan.", "Fudd");
    assert_gone("Wife and lawyer (Wil Quackenbush) aware of plan.", "Wil");
    assert_gone("BP DROPPED, J SMITH ORDERED EPI DRIP", "SMITH");
    // A note with no capitals: a lower-case initial before a surname.
    assert_gone("bp 120 to 135 per d quackenbush. pacing wires ok", "d quackenbush");
    assert_gone("Only able to reach Rob.. when family returns", "Rob");
    assert_gone("cap refill ok. grace dudakowski aware. pulses present", "dudakowski");
    assert_gone("Very devoted. Lopie Certusi cell# 410-555-0199 is best.", "Certusi");
    let contact = "PHONE CALLS TO ONE CONTACT PERSON (CHARLIE)";
    assert_gone(contact, "CHARLIE");
    assert!(found(contact).iter().all(|(w, _)| w != "PERSON"), "{:?}", found(contact));
    // Cues that look like names and are not.
    assert_no(
        PhiKind::Name,
        &[
            "CHEST X RAY ORDERED THIS AM",
            "SS INSULIN PER CTS PROTOCOL.",
            "CON'T PER POST PROCEDURE ORDERS",
            "FSBS per SSRI. Skin intact.",
            "CHANGES PER H.O. STARTED ON LASIX",
            "SEEN BY P.T. FOR EXERCISES",
            "#16 FR FOLEY PLACED AND DRAINING",
            "lg fr foley cath in place",
            "ASKED FOR RABBI- RABBI CAME TO SPEAK",
            "SOCIAL: CLOSE FRIEND (DECISION MAKER, ALTHOUGH SHE IS AWAY)",
            "S1 AND S2 AS PER AUSCULTATION.",
            "MANY LABS SENT PER RHEUMATOLOGY",
        ],
    );
}

#[test]
fn round_four_places_by_campus_suffix_and_facility() {
    assert_gone("PT WAS TRANSFERED TO THE ZAGARIA CAMPUS FOR GI STUDIES", "ZAGARIA");
    assert_gone("moved to a bed on muskrabber campus. remains stable", "muskrabber");
    assert_gone("FOUND IN HIS HOME IN MILFORD MILL BY EMS", "MILL");
    assert_gone("Kessler Medical Center in Toontownia.", "Toontownia");
    assert_gone("Daughter returned to New Haven today.", "Haven");
    assert_no(
        PhiKind::Location,
        &[
            "Transfer to Medical Floor when bed available.",
            "Stable for transfer to Cardiac floor.",
            "Pt placed back on Mask ventilation for work of breathing.",
            "TRANSFERRED TO THE MAIN CAMPUS",
            "BS COVER W 4U REG SQ @ 0200.",
            "2 MEDIASTINAL 1 LT PLEURAL. 3 UPRBCS. CT INITIALLY OOZY.",
            "EKG W NEW Q'S V1-5 WO ACUTE ST CHGS.",
        ],
    );
}

#[test]
fn payment_cards_and_bank_accounts() {
    for (text, secret) in [
        ("Card 4111 1111 1111 1111 was lost.", "1111 1111"),
        ("Paid with 4111-1111-1111-1111 today.", "4111-1111"),
        ("Amex 3782 822463 10005 on file.", "822463"),
        ("Refund to DE89 3704 0044 0532 0130 00 please.", "DE89"),
        ("Refund to GB29NWBK60161331926819 please.", "GB29NWBK60161331926819"),
    ] {
        assert_gone(text, secret);
        assert!(found(text).iter().any(|(_, k)| *k == PhiKind::Id), "{text}: {:?}", found(text));
    }
    // A code shaped like an IBAN whose check digits fail is not one.
    let text = "Order set XX12 ABCD EFGH IJKL reviewed.";
    assert!(found(text).is_empty(), "{text}: {:?}", found(text));
}

#[test]
fn accented_names_international_phones_greetings_and_suites() {
    // Names written with accents: the lists are ASCII, the lookup folds.
    assert_gone("Seen by Dr. José Muñoz today.", "Muñoz");
    assert_gone("Spoke with daughter María Peña about the plan.", "Peña");
    assert_gone("Son Łukasz Wróbel called.", "Wróbel");
    assert_gone("Spoke with Mrs. O’Brien at bedside.", "Brien");
    // Phones in other countries' groupings, by a "+" or by a word around them.
    assert_gone("Call me at +41 (0)39 910 43 06 please.", "910 43 06");
    assert_gone("Stop messages to 089 72 63 41 please.", "72 63 41");
    assert_gone("Reached at 032 803 90 31 office.", "803 90 31");
    assert_gone("You can call 9187 5645 tonight.", "5645");
    assert_no(PhiKind::Phone, &["+2 edema, +1 pulses, 2+ edema", "Called at 1430 and 1500.", "PS 12/5 on 40 percent"]);
    // Greetings of letters and portal messages, but not "Dear Sir".
    assert_gone("Dear Daisy, your results are normal.", "Daisy");
    assert_gone("Hi Donald, please call the clinic.", "Donald");
    for text in ["Dear Sir, thank you for the referral.", "Hi there, this is the clinic."] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
    assert_gone("Follow up with Elmer Quackenbush in a month.", "Quackenbush");
    assert_gone("She lives at 213 Endeavour Lane, Suite 222.", "Endeavour");
    assert_gone("She lives at 213 Endeavour Lane, Suite 222.", "222");
}

#[test]
fn first_name_and_surname_without_a_cue_in_mixed_case() {
    assert_gone("The award went to Hedda Quackenbush of the choir.", "Quackenbush");
    assert_gone("The award went to Hedda Quackenbush of the choir.", "Hedda");
    // A name does not run on into the lower-case word after it.
    let text = "She was a huge Amber Quackenbush fan back then.";
    assert!(found(text).iter().all(|(w, _)| w != "fan"), "{:?}", found(text));
    // A state or a facility word is no part of a person's name.
    let text = "Pt went to UOf Maryland Hosp and had ST elevations.";
    assert!(found(text).iter().all(|(w, _)| w != "Hosp"), "{:?}", found(text));
}

#[test]
fn names_told_by_says_and_said() {
    assert_gone("\"We will be fine,\" says Quackenbush in a letter.", "Quackenbush");
    assert_gone("Her neighbour Wiktor Quackenbush said she fell.", "Quackenbush");
    assert_no(PhiKind::Name, &["Pt says pain is better today.", "Wife said pt slept well.", "MD SAID OK TO EXTUBATE."]);
}

#[test]
fn arbitrary_unicode_never_panics_and_spans_stay_on_char_boundaries() {
    // Pieces an attacker or a pasted document could bring: accents, combining marks,
    // curly and straight apostrophes, zero-width and non-breaking spaces, emoji, CJK,
    // right-to-left text, digits and the punctuation the patterns look at.
    const PIECES: &[&str] = &[
        "José", "Muñoz", "O’", "'", "e\u{301}", "\u{200d}", "\u{a0}", "\u{feff}", "😀", "王", "שלום", "Dr.", "Ms", " ",
        " ", "\n", "-", "/", "+", "(", ")", ".", ",", "#", "7", "22", "2093", "410", "555", "0199", "DE89", "Ł", "ß",
        "ǅ", "İ", "ﬁ", "Σ", "a", "Z", "St", "Apt", "call", "on", "Dear",
    ];
    let mut state: u64 = 0x2093_0722;
    let mut next = |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    for _ in 0..3000 {
        let len = 1 + next(40);
        let text: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
        let spans = scrubber().find(&text);
        for w in spans.windows(2) {
            assert!(w[0].end <= w[1].start, "{text:?}: {spans:?}");
        }
        for s in &spans {
            assert!(s.start < s.end && text.is_char_boundary(s.start) && text.is_char_boundary(s.end), "{text:?}");
        }
        let masked = scrubber().redact(&text, Replacement::Mask);
        assert_eq!(masked.chars().count(), text.chars().count(), "{text:?}");
    }
}
