//! `phivault deid` on files: notes and NDJSON come out without the planted identifiers;
//! bad input fails clearly and leaves nothing half-written.

use std::path::Path;
use std::process::{Command, Output};

fn deid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phivault")).arg("deid").args(args).env("CI", "true").output().expect("run")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

#[test]
fn notes_and_ndjson_lose_their_identifiers_and_pseudonyms_follow_the_project_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let notes = tmp.path().join("notes.txt");
    std::fs::write(
        &notes,
        "Daffy Duck (MRN 123456789) seen 04/17/2023 by Dr. Elmer Fudd.\nWife Daisy Duck, call 555-0142.\n",
    )
    .expect("notes");
    // Every resource of the fake demo patients, one per line.
    let mut lines = String::new();
    for bundle in phivault_demo::fake_patient_bundles().into_iter().take(2) {
        let entries = bundle["entry"].as_array().expect("entries");
        // As an export writes them: ids, and references as Type/id instead of urn:uuid.
        let targets: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                let url = e["fullUrl"].as_str().expect("fullUrl").to_owned();
                let kind = e["resource"]["resourceType"].as_str().expect("type");
                let id = url.trim_start_matches("urn:uuid:").to_owned();
                (url, format!("{kind}/{id}"))
            })
            .collect();
        for entry in entries {
            let mut resource = entry["resource"].clone();
            let url = entry["fullUrl"].as_str().expect("fullUrl");
            resource["id"] = serde_json::json!(url.trim_start_matches("urn:uuid:"));
            let mut line = resource.to_string();
            for (url, reference) in &targets {
                line = line.replace(url.as_str(), reference);
            }
            lines.push_str(&line);
            lines.push('\n');
        }
    }
    let ndjson = tmp.path().join("export.ndjson");
    std::fs::write(&ndjson, &lines).expect("ndjson");
    let key = tmp.path().join("project.key");
    // Without a roster, a cartoon name no dictionary knows and no cue announces survives
    // (a known limit, docs/DEID.md); the numbers and dates do not.
    let bare = tmp.path().join("bare");
    assert!(deid(&[path(&notes), "--out", path(&bare), "--key-file", path(&key)]).status.success());
    let bare_notes = std::fs::read_to_string(bare.join("notes.txt")).expect("bare");
    assert!(!bare_notes.contains("123456789") && !bare_notes.contains("555-0142") && !bare_notes.contains("2023"));
    let roster = tmp.path().join("roster.txt");
    std::fs::write(
        &roster,
        "Daffy Duck
Daisy Duck
",
    )
    .expect("roster");
    let out = tmp.path().join("out");
    let run =
        deid(&[path(&notes), path(&ndjson), "--out", path(&out), "--key-file", path(&key), "--names", path(&roster)]);
    assert!(run.status.success(), "{}", text(&run));

    let clean_notes = std::fs::read_to_string(out.join("notes.txt")).expect("notes out");
    for planted in ["Daffy", "123456789", "04/17/2023", "Fudd", "Daisy", "555-0142"] {
        assert!(!clean_notes.contains(planted), "{planted} survived: {clean_notes}");
    }
    assert!(clean_notes.contains("[NAME]") && clean_notes.contains("[DATE]"), "{clean_notes}");

    let clean = std::fs::read_to_string(out.join("export.ndjson")).expect("ndjson out");
    assert_eq!(clean.lines().count(), lines.lines().count(), "one resource per line, none lost");
    for planted in phivault_demo::planted_identifiers().iter().filter(|p| p.len() > 4) {
        assert!(!clean.contains(planted.as_str()), "{planted} survived the Safe Harbor export");
    }
    let resources: Vec<serde_json::Value> =
        clean.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let patient_ids: Vec<&str> =
        resources.iter().filter(|r| r["resourceType"] == "Patient").filter_map(|r| r["id"].as_str()).collect();
    let subject = resources
        .iter()
        .find(|r| r["resourceType"] == "Observation")
        .and_then(|r| r["subject"]["reference"].as_str())
        .expect("an observation's subject");
    assert!(patient_ids.iter().any(|id| subject == format!("Patient/{id}")), "references still link: {subject}");

    // Same project key: the same pseudonyms; another project: others.
    let again = tmp.path().join("again");
    assert!(deid(&[path(&ndjson), "--out", path(&again), "--key-file", path(&key)]).status.success());
    assert_eq!(std::fs::read_to_string(again.join("export.ndjson")).expect("again"), clean);
    let other = tmp.path().join("other");
    let other_key = tmp.path().join("other.key");
    assert!(deid(&[path(&ndjson), "--out", path(&other), "--key-file", path(&other_key)]).status.success());
    let other_ids = std::fs::read_to_string(other.join("export.ndjson")).expect("other");
    assert!(patient_ids.iter().all(|id| !other_ids.contains(id)), "unlinkable across projects");
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = tmp.path().join("project.key");
    let out = tmp.path().join("out");
    let binary = tmp.path().join("scan.txt");
    std::fs::write(&binary, b"line one\nDaffy \xff\xfe Duck\n").expect("binary");
    let run = deid(&[path(&binary), "--out", path(&out), "--key-file", path(&key)]);
    assert!(!run.status.success());
    assert!(text(&run).contains("line 2 is not UTF-8"), "{}", text(&run));
    assert!(!text(&run).contains("Daffy"), "no PHI in the error");
    assert!(!out.join("scan.txt").exists() && !out.join("scan.partial").exists(), "nothing half-written");

    let broken = tmp.path().join("broken.ndjson");
    std::fs::write(&broken, "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n{\"resourceType\": \"Patient\", \"name\": [{\"family\": \"Duck\"\n")
        .expect("ndjson");
    let run = deid(&[path(&broken), "--out", path(&out), "--key-file", path(&key)]);
    assert!(!run.status.success());
    assert!(text(&run).contains("line 2 is not a JSON resource") && !text(&run).contains("Duck"), "{}", text(&run));
    assert!(!out.join("broken.ndjson").exists());

    let unknown = deid(&[path(&broken), "--out", path(&out), "--key-file", path(&key), "--profile", "anonymous-ish"]);
    assert!(!unknown.status.success());
    assert!(text(&unknown).contains("safe-harbor, limited-data-set"), "{}", text(&unknown));
}

#[test]
fn surrogates_replace_identifiers_consistently_within_a_project() {
    let tmp = tempfile::tempdir().expect("tmp");
    let notes = tmp.path().join("notes.txt");
    std::fs::write(
        &notes,
        "Daffy Duck (MRN 123456789) seen 04/17/2023 by Dr. Elmer Fudd in Burbank.\n\
         Later Mr. Duck called from 555-0142; Dr. Fudd returned the call.\n",
    )
    .expect("notes");
    let roster = tmp.path().join("roster.txt");
    std::fs::write(&roster, "Daffy Duck\nElmer Fudd\n").expect("roster");
    let run = |out: &str, key: &str| {
        let out_dir = tmp.path().join(out);
        let key = tmp.path().join(key);
        let done = deid(&[
            path(&notes),
            "--out",
            path(&out_dir),
            "--key-file",
            path(&key),
            "--names",
            path(&roster),
            "--surrogates",
        ]);
        assert!(done.status.success(), "{}", text(&done));
        std::fs::read_to_string(out_dir.join("notes.txt")).expect("output")
    };
    let first = run("a", "project-1.key");
    for planted in ["Daffy", "Duck", "Elmer", "Fudd", "123456789", "04/17", "555-0142", "Burbank"] {
        assert!(!first.contains(planted), "{planted} survived: {first}");
    }
    assert!(!first.contains('['), "surrogates, not placeholders: {first}");
    assert!(first.contains("555-01") && first.contains("/2023"), "fictional number, year kept: {first}");
    // "Daffy Duck" and, later, "Mr. Duck" are the same person in the surrogate story.
    let later = first.split("Mr. ").nth(1).and_then(|t| t.split_whitespace().next()).expect("Mr. X");
    assert!(first.lines().next().is_some_and(|l| l.contains(later)), "{first}");
    // The same key gives the same story; another key another one.
    assert_eq!(run("b", "project-1.key"), first);
    assert_ne!(run("c", "project-2.key"), first);
}
