//! Structural and content checks on the demo bundles.

use std::collections::HashSet;

use serde_json::Value;

use crate::{base64, fake_patient_bundles, planted_identifiers};

fn entries(bundle: &Value) -> &Vec<Value> {
    bundle["entry"].as_array().expect("bundle.entry is an array")
}

/// Calls `f` with every `reference` string anywhere inside `v`.
fn each_reference<'a>(v: &'a Value, f: &mut impl FnMut(&'a str)) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("reference", Value::String(s)) => f(s),
                    _ => each_reference(child, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| each_reference(item, f)),
        _ => {}
    }
}

/// Test-only standard base64 decoder (padding required).
fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    assert_eq!(bytes.len() % 4, 0, "base64 length is a multiple of 4");
    let mut out = Vec::new();
    for quad in bytes.chunks(4) {
        let mut n = 0u32;
        let mut pads = 0;
        for &c in quad {
            let sextet = if c == b'=' {
                pads += 1;
                0
            } else {
                assert_eq!(pads, 0, "padding only at the end");
                ALPHABET.iter().position(|&a| a == c).expect("base64 alphabet character") as u32
            };
            n = (n << 6) | sextet;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pads]);
    }
    out
}

/// Decoded text of every DocumentReference note in `bundle`.
fn notes(bundle: &Value) -> Vec<String> {
    entries(bundle)
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "DocumentReference")
        .map(|e| {
            let data = e["resource"]["content"][0]["attachment"]["data"].as_str().expect("attachment.data");
            String::from_utf8(decode_base64(data)).expect("note is UTF-8")
        })
        .collect()
}

fn count(bundle: &Value, resource_type: &str) -> usize {
    entries(bundle).iter().filter(|e| e["resource"]["resourceType"] == resource_type).count()
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[test]
fn base64_known_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64::encode(plain.as_bytes()), encoded);
        assert_eq!(decode_base64(encoded), plain.as_bytes());
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(decode_base64(&base64::encode(&all)), all);
    assert!(base64::encode(&[0xfb, 0xff]).starts_with("+/"));
}

#[test]
fn bundles_are_transactions_of_posts_with_urn_uuids() {
    let bundles = fake_patient_bundles();
    assert_eq!(bundles.len(), 8);
    let mut all_urls = HashSet::new();
    for bundle in &bundles {
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "transaction");
        for entry in entries(bundle) {
            let full_url = entry["fullUrl"].as_str().expect("fullUrl is a string");
            let uuid = full_url.strip_prefix("urn:uuid:").expect("fullUrl is a urn:uuid");
            assert!(is_uuid(uuid), "malformed uuid {uuid}");
            assert!(all_urls.insert(full_url.to_owned()), "duplicate fullUrl {full_url}");
            assert_eq!(entry["request"]["method"], "POST");
            let resource_type = entry["resource"]["resourceType"].as_str().expect("resourceType");
            assert_eq!(entry["request"]["url"], resource_type);
            assert!(entry["resource"].get("id").is_none(), "POSTed resources carry no id");
        }
    }
}

#[test]
fn bundles_have_the_promised_resources() {
    for bundle in fake_patient_bundles() {
        assert_eq!(entries(&bundle)[0]["resource"]["resourceType"], "Patient");
        assert_eq!(count(&bundle, "Patient"), 1);
        assert!((2..=3).contains(&count(&bundle, "Encounter")));
        assert!((4..=6).contains(&count(&bundle, "Observation")));
        assert!((1..=2).contains(&count(&bundle, "Condition")));
        assert!((1..=2).contains(&count(&bundle, "MedicationRequest")));
        for single in ["AllergyIntolerance", "Procedure", "Immunization", "DocumentReference"] {
            assert_eq!(count(&bundle, single), 1, "{single}");
        }
    }
}

#[test]
fn references_resolve_within_the_bundle() {
    for bundle in fake_patient_bundles() {
        let urls: HashSet<&str> = entries(&bundle).iter().filter_map(|e| e["fullUrl"].as_str()).collect();
        let mut seen = 0;
        each_reference(&bundle, &mut |r| {
            assert!(r.starts_with("urn:uuid:"), "reference {r} is not a urn:uuid");
            assert!(urls.contains(r), "dangling reference {r}");
            seen += 1;
        });
        assert!(seen > 10);
    }
}

#[test]
fn dates_are_iso_8601() {
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mut oldest = u32::MAX;
    for bundle in fake_patient_bundles() {
        let birth = entries(&bundle)[0]["resource"]["birthDate"].as_str().expect("birthDate");
        let parts: Vec<&str> = birth.split('-').collect();
        assert!(parts.len() == 3 && parts.iter().map(|s| s.len()).eq([4, 2, 2]) && parts.iter().all(|s| is_digits(s)));
        oldest = oldest.min(parts[0].parse().expect("year"));
        for entry in entries(&bundle) {
            let r = &entry["resource"];
            let times = [
                "effectiveDateTime",
                "onsetDateTime",
                "authoredOn",
                "recordedDate",
                "performedDateTime",
                "occurrenceDateTime",
                "date",
            ]
            .iter()
            .filter_map(|k| r[*k].as_str())
            .chain(["start", "end"].iter().filter_map(|k| r["period"][*k].as_str()));
            for t in times {
                let (date, time) = t.split_once('T').expect("dateTime has a time");
                assert_eq!(date.len(), 10, "{t}");
                let (y, rest) = date.split_at(4);
                let (m, d) = rest[1..].split_at(2);
                let (m, d): (u32, u32) = (m.parse().expect("month"), d[1..].parse().expect("day"));
                assert!(is_digits(y) && (1..=12).contains(&m) && (1..=28).contains(&d), "{t}");
                assert!(time.len() == 9 && time.ends_with('Z'), "{t}");
                let (h, min): (u32, u32) = (time[..2].parse().expect("hour"), time[3..5].parse().expect("minute"));
                assert!(h < 24 && min < 60, "{t}");
            }
        }
    }
    assert!(oldest < 1936, "someone must be older than 89");
}

#[test]
fn planted_identifiers_cover_the_examples_without_duplicates() {
    let ids = planted_identifiers();
    for expected in [
        "Duck",
        "Daffy",
        "123456789",
        "1937-04-17",
        "04/17/1937",
        "555-0142",
        "1 Looney Lane",
        "daffy.duck@example.org",
    ] {
        assert!(ids.iter().any(|i| i == expected), "missing {expected}");
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates in planted_identifiers");
    assert!(ids.iter().all(|i| i.len() >= 3), "identifiers this short would match ciphertext by chance");
}

#[test]
fn every_planted_identifier_occurs_in_the_bundles() {
    let bundles = fake_patient_bundles();
    let mut haystack = serde_json::to_string(&bundles).expect("bundles serialize");
    for bundle in &bundles {
        haystack.extend(notes(bundle));
    }
    for id in planted_identifiers() {
        assert!(haystack.contains(&id), "{id} is not in the bundles");
    }
}

#[test]
fn notes_leak_name_mrn_phone_and_birth_date() {
    for bundle in fake_patient_bundles() {
        let patient = &entries(&bundle)[0]["resource"];
        let family = patient["name"][0]["family"].as_str().expect("family");
        let given = patient["name"][0]["given"][0].as_str().expect("given");
        let mrn = patient["identifier"][0]["value"].as_str().expect("mrn");
        let phone = patient["telecom"][0]["value"].as_str().expect("phone");
        let note = notes(&bundle).pop().expect("one note");
        for needle in [given, family, mrn, phone] {
            assert!(note.contains(needle), "note lacks {needle}");
        }
        assert!(note.contains("NOT A REAL PERSON"));
    }
}

#[test]
fn output_is_deterministic() {
    assert_eq!(fake_patient_bundles(), fake_patient_bundles());
    assert_eq!(planted_identifiers(), planted_identifiers());
}

#[test]
fn phi_lives_only_in_the_patient_and_the_note() {
    let mut rest = fake_patient_bundles();
    for bundle in &mut rest {
        let entry = bundle["entry"].as_array_mut().expect("entries");
        entry.retain(|e| e["resource"]["resourceType"] != "Patient");
        for e in entry.iter_mut() {
            if let Some(content) = e["resource"].get_mut("content") {
                *content = Value::Null;
            }
        }
    }
    let rest = serde_json::to_string(&rest).expect("bundles serialize");
    for id in planted_identifiers() {
        assert!(!rest.contains(&id), "{id} leaks outside the Patient and the note");
    }
}
