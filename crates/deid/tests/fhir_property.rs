//! Property-style test: a fixed-seed generator plants names, dates,
//! phones, MRNs, SSNs, addresses, e-mails, URLs and IPs into random
//! positions of Patient, Practitioner, Observation, Encounter, Condition
//! and DocumentReference resources (bundled per patient, with a base64
//! text note), and no planted string may survive Safe Harbor.

use base64::Engine;
use phivault_deid::fhir::{Deidentifier, Profile};
use serde_json::{Value, json};

/// SplitMix64: a tiny, fixed, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const GIVEN: &[&str] =
    &["Daffy", "Porky", "Elmer", "Wile", "Marvin", "Tweety", "Sylvester", "Granny", "Yosemite", "Pepe"];
const FAMILY: &[&str] = &["Duck", "Pig", "Fudd", "Coyote", "Martian", "Bird", "Catt", "Sam", "Pewe", "Bunny"];
const STREET: &[&str] = &["Looney Tunes Lane", "Acme Road", "Warner Street", "Carrot Avenue", "Toon Boulevard"];
const CITY: &[&str] = &["Burbank", "Toonville", "Acmetown", "Glendale", "Pasadena"];

/// One generated patient bundle and every string planted in it.
struct Case {
    bundle: Value,
    planted: Vec<String>,
}

fn case(rng: &mut Rng, n: usize) -> Case {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (given, family) = (rng.pick(GIVEN), rng.pick(FAMILY));
    let (dr_given, dr_family) = (rng.pick(GIVEN), rng.pick(FAMILY));
    let phone = format!("555-01{:02}", rng.below(100));
    let mrn = format!("{}", 100_000_000 + rng.below(899_999_999));
    let ssn = format!("999-{:02}-{:04}", 10 + rng.below(89), 1000 + rng.below(8999));
    let street = format!("{} {}", 1 + rng.below(998), rng.pick(STREET));
    let city = rng.pick(CITY);
    let zip = format!("9{:04}", rng.below(10_000));
    let email = format!("{}.{}{}@example.org", given.to_lowercase(), family.to_lowercase(), rng.below(100));
    let url = format!("https://{}-{}.example.org/p/{}", family.to_lowercase(), rng.below(1000), rng.below(1000));
    let ip = format!("10.{}.{}.{}", rng.below(255), rng.below(255), 1 + rng.below(254));
    // Month 2-12 and day 2-28: "-01-01" is what instants become.
    let mut date = || format!("{}-{:02}-{:02}", 1950 + rng.below(70), 2 + rng.below(11), 2 + rng.below(27));
    let (birth, d1, d2, d3, d4) = (date(), date(), date(), date(), date());
    let pid = format!("pat-{n}");
    let full = format!("{given} {family}");
    let doctor = format!("Dr. {dr_given} {dr_family}");

    // Free-text snippets carrying the planted values; each resource gets a
    // random subset in a random free-text element.
    let snippets = [
        format!("{full} seen today"),
        format!("Seen by {doctor} on {d3}"),
        format!("call {phone} or mail {email}"),
        format!("MRN {mrn}, SSN {ssn}"),
        format!("lives at {street}, {city}"),
        format!("portal {url} from {ip}"),
        format!("follow up {d4}"),
    ];
    let text = |rng: &mut Rng| {
        let k = 1 + rng.below(3) as usize;
        (0..k).map(|_| snippets[rng.below(snippets.len() as u64) as usize].clone()).collect::<Vec<_>>().join(". ")
    };
    let subject = json!({"reference": format!("Patient/{pid}"), "display": full});
    let performer = json!([{"reference": format!("Practitioner/dr-{n}"), "display": doctor}]);
    let free_keys = ["valueString", "comment", "description"];

    let patient = json!({"resourceType": "Patient", "id": pid,
        "identifier": [{"system": "http://hospital.example.org/mrn", "value": mrn}, {"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}],
        "name": [{"family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": phone}, {"system": "email", "value": email}, {"system": "url", "value": url}],
        "birthDate": birth, "gender": "female",
        "address": [{"line": [street], "city": city, "state": "CA", "postalCode": zip}],
        "contact": [{"name": {"text": doctor}, "telecom": [{"system": "phone", "value": phone}]}]});
    let practitioner = json!({"resourceType": "Practitioner", "id": format!("dr-{n}"),
        "name": [{"prefix": ["Dr."], "family": dr_family, "given": [dr_given]}],
        "telecom": [{"system": "email", "value": email}], "address": [{"line": [street], "city": city}]});
    let mut obs = json!({"resourceType": "Observation", "id": format!("obs-{n}"), "status": "final",
        "subject": subject, "effectiveDateTime": format!("{d1}T08:30:00Z"), "issued": format!("{d2}T09:00:00Z"),
        "performer": performer, "note": [{"text": text(rng), "time": d3}]});
    obs[rng.pick(&free_keys)] = Value::String(text(rng));
    let enc = json!({"resourceType": "Encounter", "id": format!("enc-{n}"), "status": "finished",
        "subject": subject, "period": {"start": d1, "end": d2},
        "participant": [{"individual": performer[0].clone(), "period": {"start": d1}}],
        "location": [{"location": {"display": street}}],
        "reasonCode": [{"text": text(rng)}],
        "extension": [{"url": "http://example.org/ip", "valueString": ip}]});
    let cond = json!({"resourceType": "Condition", "id": format!("cond-{n}"), "subject": subject,
        "onsetDateTime": d4, "recordedDate": d2, "asserter": performer[0].clone(),
        "note": [{"text": text(rng), "authorString": doctor}]});
    let note = format!("{}\n{}\nPhone {phone}. {}\n", text(rng), text(rng), text(rng));
    let doc = json!({"resourceType": "DocumentReference", "id": format!("doc-{n}"), "subject": subject,
        "date": format!("{d3}T10:00:00Z"), "author": performer, "description": text(rng),
        "content": [{"attachment": {"contentType": "text/plain", "data": b64.encode(&note), "url": url, "title": full}}],
        "context": {"period": {"start": d4}}});

    // Shuffle the entries: no position is special.
    let mut entries = vec![patient, practitioner, obs, enc, cond, doc];
    for i in (1..entries.len()).rev() {
        entries.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let entry: Vec<Value> = entries.into_iter().map(|r| json!({"resource": r})).collect();
    let mut planted = vec![
        given.into(),
        family.into(),
        dr_given.into(),
        dr_family.into(),
        phone,
        mrn,
        ssn,
        street,
        city.into(),
        zip,
        email,
        url,
        ip,
    ];
    for d in [birth, d1, d2, d3, d4] {
        planted.push(d[4..].to_string()); // "-MM-DD": month and day must go
    }
    Case { bundle: json!({"resourceType": "Bundle", "type": "collection", "entry": entry}), planted }
}

#[test]
fn no_planted_identifier_survives() {
    let d = Deidentifier::new(Profile::safe_harbor(), b"property test key").with_as_of(2027, 1, 1);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut checked = 0;
    for seed in [7u64, 1937, 91521] {
        let mut rng = Rng(seed);
        for n in 0..40 {
            let c = case(&mut rng, n);
            let out = d.deidentify(&c.bundle).expect("de-identifies");
            let mut s = serde_json::to_string(&out).expect("serialises");
            // Also search inside the base64 notes, decoded.
            for e in out["entry"].as_array().into_iter().flatten() {
                for cont in e["resource"]["content"].as_array().into_iter().flatten() {
                    if let Some(data) = cont["attachment"]["data"].as_str() {
                        s.push_str(&String::from_utf8(b64.decode(data).expect("base64")).expect("utf8"));
                    }
                }
            }
            for p in &c.planted {
                assert!(!s.contains(p.as_str()), "seed {seed} case {n}: {p:?} survived in\n{s}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 40 * 18);
}
