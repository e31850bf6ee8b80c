//! `phivault-bench seed <data-dir> <patients> <team>`: fills an initialised data dir (its
//! SQLite database and key file) for the HTTP load benchmark (`scripts/bench-http.sh`):
//! `patients` obviously fake patients with five Observations each, a physician on the
//! care team of the first `team` of them (spread over the id range), and a session token
//! for that physician. Writes `token.txt`, `team.txt` (one patient id per line) and
//! `families.txt` (the team's family names) next to the data dir's database.

use std::path::Path;

use phivault_service::access::{AccessStore, Assignment, AssignmentKind};
use serde_json::json;

use crate::workload::{ids_for, load_patients, patient};

/// Observations per patient.
const OBSERVATIONS: usize = 5;

pub async fn run(data: &Path, patients: usize, team: usize) {
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let store = phivault_store::SqlStore::connect(&url).await.expect("the data dir's database");
    let key_file = phivault_crypto::KeyFile::open(&data.join("keys.json"), phivault_crypto::Unlock::Nothing)
        .expect("an unsealed key file (phivault init --insecure-dev-keys)");
    let ring = key_file.ring().clone();
    let records = phivault_testkit::records_with_ring(store.clone(), ring.clone());
    load_patients(&records, 0, patients).await;
    for start in (0..patients).step_by(200) {
        let entries: Vec<serde_json::Value> = (start..(start + 200).min(patients))
            .flat_map(|i| {
                (0..OBSERVATIONS).map(move |k| {
                    json!({"resource": {"resourceType": "Observation", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Body weight (fake)"},
                        "subject": {"reference": format!("Patient/{}", ids_for(i))},
                        "valueQuantity": {"value": 60 + (i + k) % 40, "unit": "kg"}},
                        "request": {"method": "POST", "url": "Observation"}})
                })
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let done = records.process_bundle(bundle).await.expect("observations");
        assert!(done.entries.iter().all(Result::is_ok), "observation entries failed");
    }
    let identity = phivault_testkit::system_identity(store.clone(), ring);
    let token =
        phivault_testkit::signed_in(&identity, "bench-physician", vec![phivault_identity::Role::Physician], None).await;
    let user_id = identity.find_user("bench-physician").await.expect("physician").id;
    let member = |k: usize| (k * 7919) % patients;
    let mut ids = Vec::with_capacity(team);
    let mut families = Vec::with_capacity(team);
    for k in 0..team {
        let i = member(k);
        store
            .assign(&Assignment {
                kind: AssignmentKind::CareTeam,
                user_id: user_id.clone(),
                value: ids_for(i),
                assigned_by: "bench".into(),
                assigned_ms: 0,
            })
            .await
            .expect("assign");
        ids.push(ids_for(i));
        families.push(patient(i)["name"][0]["family"].as_str().expect("family").to_owned());
    }
    std::fs::write(data.join("token.txt"), token.expose()).expect("token");
    std::fs::write(data.join("team.txt"), ids.join("\n") + "\n").expect("team");
    std::fs::write(data.join("families.txt"), families.join("\n") + "\n").expect("families");
    store.close().await;
    println!("seeded {patients} patients, {} observations, a care team of {team}", patients * OBSERVATIONS);
}
