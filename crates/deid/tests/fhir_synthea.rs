//! The Synthea sample bundles (synthetic people) through Safe Harbor: the
//! patient's names, address lines, telecom values, identifier values and
//! birth month-day must not appear anywhere in the output, including the
//! decoded text notes. Skipped, with a message, when the samples are absent.

use std::path::PathBuf;

use base64::Engine;
use phivault_deid::fhir::{Deidentifier, KAnonymity, Profile};
use serde_json::Value;

fn samples() -> Option<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir-samples/synthea");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    Some(paths)
}

/// The strings to look for: from the original Patient resource.
fn secrets(patient: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let strs = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    };
    for n in patient["name"].as_array().into_iter().flatten() {
        out.extend(strs(&n["family"]));
        out.extend(strs(&n["given"]));
    }
    for a in patient["address"].as_array().into_iter().flatten() {
        out.extend(strs(&a["line"]));
        out.extend(strs(&a["city"]));
    }
    for list in ["telecom", "identifier"] {
        for t in patient[list].as_array().into_iter().flatten() {
            out.extend(strs(&t["value"]));
        }
    }
    if let Some(b) = patient["birthDate"].as_str().filter(|b| b.len() == 10) {
        out.push(b[4..].to_string());
    }
    out
}

/// The output as text, with base64 text attachments decoded.
fn searchable(out: &Value) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s = serde_json::to_string(out).expect("serialises");
    let mut stack = vec![out];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(data) = m.get("data").and_then(Value::as_str) {
                    s.push_str(&String::from_utf8(b64.decode(data).expect("base64")).expect("utf8"));
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    s
}

#[test]
fn synthea_bundles_leak_nothing_of_the_patient() {
    let Some(paths) = samples() else {
        println!("Synthea samples not found next to the repository; skipped");
        return;
    };
    let d = Deidentifier::new(Profile::safe_harbor(), b"synthea test key");
    let mut patients = Vec::new();
    let mut bundles = 0;
    // Four patient bundles keep the debug-build test under a few seconds;
    // DEID_SYNTHEA_ALL=1 runs every one.
    let limit = if std::env::var_os("DEID_SYNTHEA_ALL").is_some() { usize::MAX } else { 4 };
    for p in paths.iter().filter(|p| !p.to_string_lossy().contains("Information")).take(limit) {
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(p).expect("readable")).expect("JSON");
        let out = d.deidentify(&bundle).expect("de-identifies");
        let text = searchable(&out);
        let entries = bundle["entry"].as_array().expect("entries");
        assert_eq!(out["entry"].as_array().map(Vec::len), Some(entries.len()));
        for e in entries.iter().filter(|e| e["resource"]["resourceType"] == "Patient") {
            let secrets = secrets(&e["resource"]);
            assert!(secrets.len() >= 8, "{}: too few secrets to be a test: {secrets:?}", p.display());
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "{}: {s:?} survived", p.display());
            }
        }
        patients.extend(
            out["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == "Patient")
                .cloned(),
        );
        bundles += 1;
    }
    println!("{bundles} Synthea bundles de-identified, no patient identifier survived");
    // Four people are each unique on (birth year, gender, ZIP-3, state).
    assert!(KAnonymity::check_patients(&patients, 2).is_err());
}

#[test]
fn synthea_infrastructure_bundles_drop_practitioner_names() {
    let Some(paths) = samples() else {
        println!("Synthea samples not found next to the repository; skipped");
        return;
    };
    let Some(p) = paths.iter().find(|p| p.to_string_lossy().contains("practitionerInformation")) else {
        println!("practitionerInformation bundle not found; skipped");
        return;
    };
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(p).expect("readable")).expect("JSON");
    let out = Deidentifier::new(Profile::safe_harbor(), b"k").deidentify(&bundle).expect("de-identifies");
    let text = serde_json::to_string(&out).expect("serialises");
    let mut checked = 0;
    for e in bundle["entry"].as_array().into_iter().flatten().take(200) {
        for n in e["resource"]["name"].as_array().into_iter().flatten() {
            if let Some(f) = n["family"].as_str() {
                assert!(!text.contains(&format!("\"{f}\"")) && !text.contains(&format!(" {f}")), "{f} survived");
                checked += 1;
            }
        }
        for i in e["resource"]["identifier"].as_array().into_iter().flatten() {
            if let Some(v) = i["value"].as_str() {
                assert!(!text.contains(v), "{v} survived");
            }
        }
    }
    assert!(checked > 50);
}
