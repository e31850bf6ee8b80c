//! One test per Safe Harbor rule on obviously fake resources (Daffy Duck),
//! plus pseudonym linkage, profiles, malformed input and k-anonymity.

use phivault_deid::DeidError;
use phivault_deid::fhir::{DateRule, Deidentifier, IdentifierRule, KAnonymity, Profile, QuasiIdentifiers};
use serde_json::{Value, json};

const KEY: &[u8] = b"test project key";

fn sh() -> Deidentifier {
    Deidentifier::new(Profile::safe_harbor(), KEY).with_as_of(2027, 6, 1)
}

fn daffy() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "daffy-1",
        "meta": {"versionId": "7", "source": "http://ehr.example.org/daffy", "lastUpdated": "2024-03-05T10:11:12Z",
                 "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Daffy Duck</div>"},
        "identifier": [
            {"type": {"text": "MRN"}, "system": "http://hospital.example.org/mrn", "value": "123456789"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-1234"}
        ],
        "name": [{"use": "official", "family": "Duck", "given": ["Daffy"], "text": "Daffy Duck"}],
        "telecom": [
            {"system": "phone", "value": "555-0142"},
            {"system": "email", "value": "daffy@example.org"}
        ],
        "gender": "male",
        "birthDate": "1937-04-17",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1937-04-17T10:30:00Z"}]},
        "address": [{"use": "home", "line": ["1 Looney Tunes Lane"], "city": "Burbank", "district": "Los Angeles",
                     "state": "CA", "postalCode": "91521", "country": "US", "text": "1 Looney Tunes Lane, Burbank CA 91521"}],
        "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
        "contact": [{"name": {"text": "Porky Pig"}, "telecom": [{"system": "phone", "value": "555-0199"}],
                     "address": {"line": ["2 Pig Pen"], "city": "Burbank", "state": "CA", "postalCode": "03601"}}],
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Melissa Duck"},
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "M"}
        ],
        "generalPractitioner": [{"reference": "Practitioner/elmer", "display": "Dr. Elmer Fudd"}]
    })
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).expect("serialises")
}

#[test]
fn names_telecom_identifiers_photos_narrative_go() {
    let out = sh().deidentify(&daffy()).expect("de-identifies");
    let s = text(&out);
    for gone in [
        "Daffy",
        "Duck",
        "Porky",
        "Elmer",
        "Fudd",
        "Melissa",
        "555-0142",
        "555-0199",
        "daffy@example.org",
        "123456789",
        "999-00-1234",
        "iVBORw0KGgo",
        "ehr.example.org",
        "Looney",
        "Burbank",
        "Los Angeles",
        "Pig Pen",
    ] {
        assert!(!s.contains(gone), "{gone} survived in {s}");
    }
    for k in ["name", "telecom", "identifier", "photo", "text", "_birthDate"] {
        assert!(out.get(k).is_none(), "{k} kept");
    }
    assert!(out["contact"][0].get("name").is_none());
    assert_eq!(out["gender"], "male");
}

#[test]
fn address_keeps_state_country_and_zip3() {
    let out = sh().deidentify(&daffy()).expect("de-identifies");
    assert_eq!(out["address"][0], json!({"use": "home", "state": "CA", "postalCode": "915", "country": "US"}));
    // 036 is a restricted prefix (fewer than 20,000 people).
    assert_eq!(out["contact"][0]["address"]["postalCode"], "000");
}

#[test]
fn restricted_zip3_prefixes_become_000() {
    for (zip, want) in [
        ("03601", "000"),
        ("05901", "000"),
        ("69201", "000"),
        ("89301", "000"),
        ("20501", "000"),
        ("91521", "915"),
        ("02139", "021"),
    ] {
        let p = json!({"resourceType": "Patient", "address": [{"postalCode": zip, "state": "XX"}]});
        let out = sh().deidentify(&p).expect("de-identifies");
        assert_eq!(out["address"][0]["postalCode"], want, "{zip}");
    }
    let foreign = json!({"resourceType": "Patient", "address": [{"postalCode": "SW1A 1AA", "country": "GB"}]});
    assert!(sh().deidentify(&foreign).expect("ok")["address"][0].get("postalCode").is_none());
}

#[test]
fn dates_become_years() {
    let obs = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "effectiveDateTime": "2024-03-05T10:11:12+01:00", "issued": "2024-03-06T08:00:00Z",
        "effectivePeriod": {"start": "2024-03-05", "end": "2024-03-07"},
        "subject": {"reference": "Patient/daffy-1"}});
    let out = sh().deidentify(&obs).expect("de-identifies");
    assert_eq!(out["effectiveDateTime"], "2024");
    assert_eq!(out["issued"], "2024-01-01T00:00:00Z");
    assert_eq!(out["effectivePeriod"], json!({"start": "2024", "end": "2024"}));
    let p = sh().deidentify(&daffy()).expect("de-identifies");
    assert_eq!(p["meta"]["lastUpdated"], "2024-01-01T00:00:00Z");
    assert!(p["meta"].get("versionId").is_none() && p["meta"].get("source").is_none());
}

#[test]
fn over_89_birth_date_is_aggregated() {
    // Born 1937-04-17, 90 on the export date 2027-06-01.
    let out = sh().deidentify(&daffy()).expect("de-identifies");
    assert_eq!(out["birthDate"], "1937");
    let d = Deidentifier::new(Profile::safe_harbor(), KEY).with_as_of(2040, 1, 1);
    assert_eq!(d.deidentify(&daffy()).expect("ok")["birthDate"], "1950", "103-year-old shows as 90");
    let young = json!({"resourceType": "Patient", "birthDate": "1990-02-03"});
    assert_eq!(sh().deidentify(&young).expect("ok")["birthDate"], "1990");
}

#[test]
fn ages_over_89_become_90() {
    let cond = json!({"resourceType": "Condition", "onsetAge": {"value": 95, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}});
    let out = sh().deidentify(&cond).expect("ok");
    assert_eq!(out["onsetAge"]["value"], 90);
    assert_eq!(out["onsetAge"]["comparator"], ">=");
    let obs = json!({"resourceType": "Observation", "valueQuantity": {"value": 92.5, "unit": "yr"}});
    assert_eq!(sh().deidentify(&obs).expect("ok")["valueQuantity"]["value"], 90);
    let ok = json!({"resourceType": "Observation", "valueQuantity": {"value": 45, "unit": "a"}});
    assert_eq!(sh().deidentify(&ok).expect("ok")["valueQuantity"]["value"], 45);
    let kg = json!({"resourceType": "Observation", "valueQuantity": {"value": 120, "unit": "kg"}});
    assert_eq!(sh().deidentify(&kg).expect("ok")["valueQuantity"]["value"], 120);
}

#[test]
fn references_link_to_the_new_ids() {
    let d = sh();
    let p = d.deidentify(&daffy()).expect("ok");
    let obs = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/daffy-1", "display": "Daffy Duck"},
        "performer": [{"reference": "https://ehr.example.org/fhir/Practitioner/elmer/_history/3"}],
        "encounter": {"reference": "urn:uuid:daffy-1"}});
    let o = d.deidentify(&obs).expect("ok");
    let pid = p["id"].as_str().expect("id");
    assert_ne!(pid, "daffy-1");
    assert_eq!(o["subject"], json!({"reference": format!("Patient/{pid}")}));
    assert_eq!(o["encounter"]["reference"], format!("urn:uuid:{pid}"));
    assert_eq!(o["performer"][0]["reference"], p["generalPractitioner"][0]["reference"]);
    assert!(!text(&o).contains("ehr.example.org"));
}

#[test]
fn pseudonyms_stable_per_project_and_unlinkable_across() {
    let a1 = Deidentifier::new(Profile::safe_harbor(), b"project A");
    let a2 = Deidentifier::new(Profile::safe_harbor(), b"project A");
    let b = Deidentifier::new(Profile::safe_harbor(), b"project B");
    let ida = a1.deidentify(&daffy()).expect("ok")["id"].clone();
    assert_eq!(ida, a2.deidentify(&daffy()).expect("ok")["id"]);
    assert_ne!(ida, b.deidentify(&daffy()).expect("ok")["id"]);
    assert_ne!(a1.pseudonym("x"), b.pseudonym("x"));
    // UUID-shaped, so also valid in urn:uuid: references.
    let s = ida.as_str().expect("string");
    assert_eq!(s.len(), 36);
    assert_eq!(s.matches('-').count(), 4);
}

#[test]
fn identifiers_can_be_pseudonymised() {
    let mut p = Profile::safe_harbor();
    p.identifiers = IdentifierRule::Pseudonymise;
    let a = Deidentifier::new(p.clone(), b"A").deidentify(&daffy()).expect("ok");
    let b = Deidentifier::new(p, b"B").deidentify(&daffy()).expect("ok");
    let ids = a["identifier"].as_array().expect("kept");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0]["system"], "http://hospital.example.org/mrn");
    assert_ne!(ids[0]["value"], "123456789");
    assert_eq!(ids[0]["value"].as_str().map(str::len), Some(32));
    assert_ne!(a["identifier"][0]["value"], b["identifier"][0]["value"]);
}

#[test]
fn date_shift_is_consistent_within_a_patient() {
    let mut p = Profile::safe_harbor();
    p.dates = DateRule::Shift;
    let d = Deidentifier::new(p, KEY).with_as_of(2027, 6, 1);
    let enc = |id: &str, pat: &str, start: &str, end: &str| {
        json!({"resourceType": "Encounter", "id": id, "subject": {"reference": format!("Patient/{pat}")},
               "period": {"start": start, "end": end}})
    };
    let days = |s: &Value| {
        let s = s.as_str().expect("date");
        let (y, m, dd): (i64, i64, i64) =
            (s[0..4].parse().expect("y"), s[5..7].parse().expect("m"), s[8..10].parse().expect("d"));
        y * 372 + m * 31 + dd // monotone, good enough within one month
    };
    let a = d.deidentify(&enc("e1", "daffy-1", "2024-03-05", "2024-03-09")).expect("ok");
    let b = d.deidentify(&enc("e2", "daffy-1", "2024-03-05T09:00:00Z", "2024-03-05T10:00:00Z")).expect("ok");
    let c = d.deidentify(&enc("e3", "porky-2", "2024-03-05", "2024-03-09")).expect("ok");
    assert_ne!(a["period"]["start"], "2024-03-05");
    // Same patient, same date → same shifted date; the time is kept.
    assert_eq!(a["period"]["start"].as_str().map(|s| &s[..10]), b["period"]["start"].as_str().map(|s| &s[..10]));
    assert!(b["period"]["start"].as_str().expect("s").ends_with("T09:00:00Z"));
    let len = |v: &Value| days(&v["period"]["end"]) - days(&v["period"]["start"]);
    let _ = len(&a); // four days, unless the shift crosses a month end
    // Another patient gets another offset (with overwhelming probability).
    assert_ne!(a["period"]["start"], c["period"]["start"]);
    // The Patient's own dates use its own offset.
    let pat = d
        .deidentify(&json!({"resourceType": "Patient", "id": "daffy-1", "deceasedDateTime": "2024-03-05"}))
        .expect("ok");
    assert_eq!(pat["deceasedDateTime"], a["period"]["start"]);
}

#[test]
fn devices_urls_and_ips_go() {
    let dev = json!({"resourceType": "Device", "id": "d1", "udiCarrier": [{"deviceIdentifier": "00844588003288"}],
        "serialNumber": "SN-1234-5678", "lotNumber": "LOT42", "url": "http://daffy.example.org/device",
        "note": [{"text": "Seen at http://daffy.example.org from 192.168.10.42", "authorString": "Elmer Fudd"}],
        "property": [{"valueString": "10.1.2.3"}]});
    let out = sh().deidentify(&dev).expect("ok");
    let s = text(&out);
    for gone in ["00844588003288", "SN-1234-5678", "LOT42", "daffy.example.org", "192.168.10.42", "10.1.2.3", "Elmer"] {
        assert!(!s.contains(gone), "{gone} survived in {s}");
    }
}

#[test]
fn free_text_and_text_attachments_are_scrubbed() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let note = "Daffy Duck seen 4/17/2024, call 555-0142 or daffy@example.org. MRN 123456789.";
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:daffy-1", "resource": daffy()},
        {"fullUrl": "urn:uuid:doc-1", "resource": {"resourceType": "DocumentReference", "id": "doc-1",
            "subject": {"reference": "urn:uuid:daffy-1"},
            "description": "Letter for Daffy Duck",
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": b64.encode(note), "hash": "abc="}},
                        {"attachment": {"contentType": "application/pdf", "data": "JVBERi0xLjQ=", "url": "http://x.example.org/a.pdf"}}]}},
        {"fullUrl": "urn:uuid:obs-1", "resource": {"resourceType": "Observation", "id": "obs-1",
            "valueString": "Daffy says hi from 1 Looney Tunes Lane", "note": [{"text": "Called Daffy at 555-0142"}]}}
    ]});
    let out = sh().deidentify(&bundle).expect("ok");
    let s = text(&out);
    for gone in [
        "Daffy",
        "Duck",
        "555-0142",
        "daffy@example.org",
        "123456789",
        "Looney",
        "JVBERi0xLjQ",
        "x.example.org",
        "abc=",
    ] {
        assert!(!s.contains(gone), "{gone} survived in {s}");
    }
    let doc = &out["entry"][1]["resource"];
    let data = doc["content"][0]["attachment"]["data"].as_str().expect("text kept");
    let clean = String::from_utf8(b64.decode(data).expect("base64")).expect("utf8");
    assert!(clean.contains("[NAME]") && clean.contains("[PHONE]") && clean.contains("[DATE]"), "{clean}");
    assert_eq!(doc["content"][1]["attachment"], json!({"contentType": "application/pdf"}));
    assert_eq!(out["entry"][1]["fullUrl"], format!("urn:uuid:{}", doc["id"].as_str().expect("id")));
}

#[test]
fn a_profile_can_ask_for_surrogates_in_free_text() {
    let profile =
        Profile::from_toml("name = \"story\"\nbase = \"safe-harbor\"\nfree_text = \"surrogates\"\n").expect("profile");
    assert!(profile.free_text_surrogates);
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:daffy-1", "resource": daffy()},
        {"fullUrl": "urn:uuid:obs-1", "resource": {"resourceType": "Observation", "id": "obs-1",
            "valueString": "Daffy Duck called from 555-0142; Mr. Duck is stable.",
            "subject": {"reference": "urn:uuid:daffy-1"}}}
    ]});
    let key = b"project key for the surrogate test";
    let out = Deidentifier::new(profile.clone(), key).deidentify(&bundle).expect("ok");
    let note = out["entry"][1]["resource"]["valueString"].as_str().expect("text kept").to_owned();
    for gone in ["Daffy", "Duck", "555-0142"] {
        assert!(!note.contains(gone), "{gone} survived in {note}");
    }
    assert!(!note.contains('[') && note.contains("555-01"), "surrogates, not placeholders: {note}");
    let again = Deidentifier::new(profile, key).deidentify(&bundle).expect("ok");
    assert_eq!(again["entry"][1]["resource"]["valueString"], note.as_str(), "consistent under one key");
    assert!(
        Profile::from_toml("name = \"x\"\nbase = \"safe-harbor\"\nfree_text = \"fancy\"\n").is_err(),
        "an unknown free-text rule is refused"
    );
}

#[test]
fn extensions_by_allow_list() {
    let out = sh().deidentify(&daffy()).expect("ok");
    let ext = out["extension"].as_array().expect("birthsex kept");
    assert_eq!(ext.len(), 1);
    let m = json!({"resourceType": "Observation", "modifierExtension": [{"url": "http://example.org/not-done", "valueBoolean": true}]});
    assert_eq!(sh().deidentify(&m), Err(DeidError::ModifierExtension("http://example.org/not-done".into())));
}

#[test]
fn security_label_added() {
    let out = sh().deidentify(&daffy()).expect("ok");
    let sec = &out["meta"]["security"][0];
    assert_eq!(sec["system"], "http://terminology.hl7.org/CodeSystem/v3-ObservationValue");
    assert_eq!(sec["code"], "PSEUDED");
    assert_eq!(out["meta"]["profile"][0], "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient");
}

#[test]
fn limited_data_set_keeps_dates_town_zip_and_ages() {
    let d = Deidentifier::new(Profile::limited_data_set(), KEY).with_as_of(2027, 6, 1);
    let out = d.deidentify(&daffy()).expect("ok");
    assert_eq!(out["birthDate"], "1937-04-17");
    assert_eq!(
        out["address"][0],
        json!({"use": "home", "city": "Burbank", "state": "CA", "postalCode": "91521", "country": "US"})
    );
    let s = text(&out);
    for gone in ["Daffy", "Duck", "555-0142", "daffy@example.org", "123456789", "999-00-1234", "Looney", "iVBORw0KGgo"]
    {
        assert!(!s.contains(gone), "{gone} survived in {s}");
    }
    let cond =
        json!({"resourceType": "Condition", "onsetAge": {"value": 95, "unit": "a"}, "recordedDate": "2024-03-05"});
    let c = d.deidentify(&cond).expect("ok");
    assert_eq!(c["onsetAge"]["value"], 95);
    assert_eq!(c["recordedDate"], "2024-03-05");
}

#[test]
fn profiles_by_name_and_toml() {
    assert_eq!(Profile::named("safe-harbor"), Ok(Profile::safe_harbor()));
    assert_eq!(Profile::named("expert"), Err(DeidError::UnknownProfile("expert".into())));
    let p = Profile::from_toml(
        "name = \"cohort\"\nbase = \"safe-harbor\"\ndates = \"shift\"\nidentifiers = \"pseudonymise\"\n",
    )
    .expect("parses");
    assert_eq!((p.name.as_str(), p.dates, p.identifiers), ("cohort", DateRule::Shift, IdentifierRule::Pseudonymise));
    assert_eq!(
        Profile::from_toml("name = \"x\"\nbase = \"hipaa-lite\"\n"),
        Err(DeidError::UnknownProfile("hipaa-lite".into()))
    );
    assert!(matches!(
        Profile::from_toml("name = \"x\"\nbase = \"safe-harbor\"\ndate = \"keep\"\n"),
        Err(DeidError::InvalidProfile(_))
    ));
    assert!(matches!(
        Profile::from_toml("name = \"x\"\nbase = \"safe-harbor\"\ndates = \"month\"\n"),
        Err(DeidError::InvalidProfile(_))
    ));
    assert!(matches!(Profile::from_toml("not toml ["), Err(DeidError::InvalidProfile(_))));
}

#[test]
fn deep_and_malformed_input_is_an_error_not_a_panic() {
    let mut deep = json!({"leaf": 1});
    // 200 levels: far past the limit, yet shallow enough that dropping
    // the value (serde_json's Drop recurses) cannot overflow the test stack.
    for _ in 0..100 {
        deep = json!({"x": [deep]});
    }
    let r = json!({"resourceType": "Observation", "extension": [deep]});
    assert_eq!(sh().deidentify(&r), Err(DeidError::TooDeep { limit: 64 }));
    assert_eq!(sh().deidentify(&json!([1, 2])), Err(DeidError::NotAResource));
    assert_eq!(sh().deidentify(&json!({"id": "x"})), Err(DeidError::NotAResource));
    assert_eq!(sh().deidentify(&json!({"resourceType": 5})), Err(DeidError::NotAResource));
    // Wrong types where FHIR expects objects or arrays: dropped, not panics.
    let odd = json!({"resourceType": "Patient", "name": "Daffy Duck", "telecom": "555-0142", "address": "1 Looney Tunes Lane",
        "identifier": 123456789, "extension": "x", "meta": 3, "birthDate": 1937, "subject": "Patient/x",
        "contact": [null, 1, "x", {"name": [1, 2]}], "text": "Daffy", "photo": true});
    let out = sh().deidentify(&odd).expect("handled");
    let s = text(&out);
    for gone in ["Daffy", "555-0142", "Looney", "123456789"] {
        assert!(!s.contains(gone), "{gone} survived in {s}");
    }
}

#[test]
fn k_anonymity_gate() {
    let q = |y: &str, g: &str, z: &str| QuasiIdentifiers {
        birth_year: Some(y.into()),
        gender: Some(g.into()),
        zip3: Some(z.into()),
        state: Some("CA".into()),
    };
    let mut rows = vec![q("1980", "female", "915"); 5];
    rows.extend(vec![q("1981", "male", "915"); 3]);
    let ok = KAnonymity::check(&rows, 3).expect("3-anonymous");
    assert_eq!((ok.classes, ok.smallest_class, ok.records), (2, 3, 8));
    rows.push(q("1937", "male", "000"));
    match KAnonymity::check(&rows, 3) {
        Err(DeidError::BelowK(r)) => assert_eq!((r.smallest_class, r.classes_below_k, r.records_below_k), (1, 1, 1)),
        other => panic!("expected BelowK, got {other:?}"),
    }
    let patients: Vec<Value> = (0..4).map(|_| sh().deidentify(&daffy()).expect("ok")).collect();
    let r = KAnonymity::check_patients(&patients, 4).expect("four identical rows");
    assert_eq!(r.smallest_class, 4);
    assert_eq!(
        QuasiIdentifiers::from_patient(&patients[0]),
        QuasiIdentifiers {
            birth_year: Some("1937".into()),
            gender: Some("male".into()),
            zip3: Some("915".into()),
            state: Some("CA".into())
        }
    );
}

#[test]
fn very_deep_input_does_not_overflow_the_stack() {
    // 100,000 levels built in memory (a parser would have refused them).
    // The depth check is iterative, so the default 2 MiB test stack is
    // enough. The value is leaked on purpose: serde_json's own Drop
    // recurses and would overflow, which is not this crate's code.
    let mut deep = Value::Null;
    for _ in 0..100_000 {
        deep = Value::Array(vec![deep]);
    }
    // Wrapped by hand: `json!` would serialise `deep` recursively.
    let mut m = serde_json::Map::new();
    m.insert("resourceType".into(), Value::String("Observation".into()));
    m.insert("component".into(), deep);
    let r = Value::Object(m);
    let res = sh().deidentify(&r);
    assert!(res == Err(DeidError::TooDeep { limit: 64 }));
    std::mem::forget(r);
}

#[test]
fn accented_names_from_the_record_are_found_however_the_note_writes_them() {
    // Names that are also English words: only the record gives them away.
    let patient = json!({"resourceType": "Patient", "id": "p1",
        "name": [{"family": "Bellé", "given": ["Rosé"]}]});
    let obs = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
        "valueString": "Visit: ROSÉ BELLÉ seen today; the rose belle note was filed."});
    let out = sh().deidentify_knowing(&obs, &[&patient]).expect("ok");
    let s = text(&out).to_lowercase();
    for gone in ["rosé", "bellé", "rose belle"] {
        assert!(!s.contains(gone), "{gone} survived in {s}");
    }
}
