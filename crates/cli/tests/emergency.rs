//! `phivault emergency on|off|status` from the console: the switch every node obeys, and
//! what a write (an import) meets while it is on.

mod common;

use common::{phivault, text};

#[test]
fn the_console_switch_refuses_imports_until_it_is_off_and_is_recorded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let bundle = tmp.path().join("daffy.json");
    std::fs::write(&bundle, phivault_demo::fake_patient_bundles().remove(0).to_string()).expect("write");
    let bundle = bundle.to_str().expect("utf-8");

    assert!(text(&phivault(&data, &["emergency", "status"])).contains("off"));
    // A reason is a code: free text (which could name a patient) is refused before anything.
    let free_text = phivault(&data, &["emergency", "on", "--reason", "Daffy Duck's chart is corrupt"]);
    assert!(!free_text.status.success() && text(&free_text).contains("restore"), "{}", text(&free_text));
    assert!(text(&phivault(&data, &["emergency", "status"])).contains("off"));
    let on = phivault(&data, &["emergency", "on", "--reason", "degraded_database"]);
    assert!(on.status.success(), "{}", text(&on));
    let status = text(&phivault(&data, &["emergency", "status"]));
    assert!(status.contains("ON") && status.contains("degraded_database"), "{status}");

    let refused = phivault(&data, &["import", bundle]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("emergency read-only mode"), "{}", text(&refused));
    assert!(text(&refused).contains("0 created"), "{}", text(&refused));

    assert!(phivault(&data, &["emergency", "off"]).status.success());
    let imported = phivault(&data, &["import", bundle]);
    assert!(imported.status.success(), "{}", text(&imported));

    let export = tmp.path().join("trail.jsonl");
    assert!(
        phivault(&data, &["audit", "export", "--out", export.to_str().expect("utf-8"), "--format", "jsonl"])
            .status
            .success()
    );
    let trail = std::fs::read_to_string(&export).expect("trail");
    assert!(trail.contains("cli.emergency.enter") && trail.contains("degraded_database"));
    assert!(trail.contains("cli.emergency.leave"));
    assert!(!trail.contains("Daffy"));
}
