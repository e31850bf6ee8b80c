//! Parsers of untrusted input never panic: query strings, search parameters, dates,
//! references and resources are fed deterministic pseudo-random garbage and mutations of
//! valid input. (A coverage-guided fuzzer would go further; this guards the obvious.)

use phivault_fhir::search::{extract_index_entries, parse_search};
use phivault_fhir::{
    parse_date_range, parse_query_string, parse_relative_reference, parse_version_etag, validate_resource,
};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "",
    "=",
    "&",
    "|",
    ",",
    ":",
    "%",
    "%2",
    "%zz",
    "%7C",
    "+",
    "lt",
    "ge",
    "eq",
    "gt",
    "le",
    "19",
    "1937",
    "-",
    "04",
    "-17",
    "T",
    "10:00",
    ":00",
    "Z",
    "+02:00",
    "é",
    "\u{0}",
    "名",
    "Duck",
    "family",
    "birthdate",
    "_count",
    "_sort",
    "-date",
    "_id",
    "identifier",
    "urn:mrn",
    "name:exact",
    "name:contains",
    "patient",
    "Patient/",
    "../",
    "_page",
    "999999999999999999999",
];

fn garbage(rng: &mut Rng) -> String {
    (0..(rng.next() % 12)).map(|_| rng.pick(PIECES)).collect()
}

#[test]
fn query_and_date_parsers_survive_garbage() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut searches_ok, mut searches_refused, mut dates_ok) = (0, 0, 0);
    for _ in 0..20_000 {
        let text = garbage(&mut rng);
        let pairs = parse_query_string(&text);
        for resource_type in ["Patient", "Observation", "MedicationRequest", "Claim"] {
            match parse_search(resource_type, &pairs, rng.next().is_multiple_of(2)) {
                Ok(_) => searches_ok += 1,
                Err(e) => {
                    searches_refused += 1;
                    assert!(!e.message.contains("Duck"), "an error echoed a search value: {}", e.message);
                }
            }
        }
        dates_ok += usize::from(parse_date_range(&text).is_some());
        let _ = parse_relative_reference(&text);
        let _ = parse_version_etag(&text);
    }
    // The generator reaches both outcomes, so the run exercised real parsing paths.
    assert!(searches_ok > 1_000 && searches_refused > 1_000, "{searches_ok} accepted, {searches_refused} refused");
    assert!(dates_ok > 0, "no generated value was a valid date");
}

#[test]
fn resource_validation_and_indexing_survive_mutated_resources() {
    let mut rng = Rng(42);
    let values = [
        serde_json::json!(null),
        serde_json::json!(1),
        serde_json::json!("x"),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!([{"reference": 5}]),
        serde_json::json!({"coding": "not-a-list", "system": 3}),
        serde_json::json!({"start": "1937-02-30", "end": []}),
        serde_json::json!("1937-04-17T25:61:61Z"),
    ];
    let fields = [
        "name",
        "identifier",
        "telecom",
        "birthDate",
        "gender",
        "code",
        "subject",
        "effectiveDateTime",
        "effectivePeriod",
        "category",
        "status",
        "id",
        "meta",
        "address",
    ];
    for _ in 0..5_000 {
        let resource_type = rng.pick(&["Patient", "Observation", "Encounter", "Condition", "Practitioner"]);
        let mut resource = serde_json::json!({"resourceType": resource_type});
        for _ in 0..(rng.next() % 5) {
            let field = fields[(rng.next() % fields.len() as u64) as usize];
            resource[field] = values[(rng.next() % values.len() as u64) as usize].clone();
        }
        let valid = validate_resource(&resource, Some(resource_type), None);
        let indexed = extract_index_entries(resource_type, &resource);
        for message in [valid.err().map(|e| e.message), indexed.err().map(|e| e.message)].into_iter().flatten() {
            assert!(!message.contains("1937") && !message.contains("25:61"), "an error echoed a value: {message}");
        }
    }
}
