//! `_include` and `_revinclude` on the guarded path, on both engines, as an attacker would
//! use them: a reference to another patient's record, to a record with a label the caller
//! is not cleared for, or to a type the caller's token does not cover must bring in nothing
//! (exactly as a reference to a record that does not exist), and the one audit entry names
//! only what was returned.

use phivault_audit::{AuditEvent, AuditStore};
use phivault_policy::{Policies, RequestFacts};
use phivault_service::access::{AccessStore, Accessor, Assignment, AssignmentKind, Requester};
use phivault_testkit::{engines, fresh_store, records};
use serde_json::{Value, json};

fn physician(readable_types: Option<Vec<String>>) -> Accessor {
    Accessor {
        requester: Requester::User {
            user_id: "user-dr-daffy".into(),
            roles: vec!["physician".into()],
            own_patient: None,
            mfa: true,
            authenticated_ms: 0,
            via_app: readable_types.is_some(),
        },
        request: RequestFacts::default(),
        launch_patient: None,
        searchable_types: readable_types.clone(),
        readable_types,
        trail: Default::default(),
    }
}

fn labelled(mut body: Value, label: &str) -> Value {
    body["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}]});
    body
}

fn ids(resources: &[phivault_service::StoredResource]) -> Vec<String> {
    resources.iter().map(|r| format!("{}/{}", r.resource_type, r.id)).collect()
}

#[tokio::test]
async fn includes_bring_in_only_what_the_caller_may_read_and_the_entry_names_only_that() {
    for engine in engines() {
        let (store, _db, _url) = fresh_store(engine).await;
        let records = records(store.clone());
        let guarded =
            phivault_testkit::guarded(records.clone(), store.clone(), Policies::defaults().expect("defaults"));
        let create = |t: &'static str, body: Value| {
            let records = records.clone();
            async move { records.create(t, body, None).await.expect("create").resource.id }
        };
        let daffy = create("Patient", json!({"resourceType": "Patient", "name": [{"family": "Duck"}]})).await;
        let porky = create("Patient", json!({"resourceType": "Patient", "name": [{"family": "Pig"}]})).await;
        store
            .assign(&Assignment {
                kind: AssignmentKind::CareTeam,
                user_id: "user-dr-daffy".into(),
                value: daffy.clone(),
                assigned_by: "test".into(),
                assigned_ms: 0,
            })
            .await
            .expect("assign");
        let subject = |p: &str| json!({"reference": format!("Patient/{p}")});
        let visit =
            create("Encounter", json!({"resourceType": "Encounter", "status": "finished", "subject": subject(&daffy)}))
                .await;
        let hidden = create(
            "Encounter",
            labelled(json!({"resourceType": "Encounter", "status": "finished", "subject": subject(&daffy)}), "HIV"),
        )
        .await;
        let elsewhere =
            create("Encounter", json!({"resourceType": "Encounter", "status": "finished", "subject": subject(&porky)}))
                .await;
        // Three observations of Daffy's, each pointing at one of the encounters (the operator
        // loaded them; the API would refuse the one naming another patient's encounter).
        for encounter in [&visit, &hidden, &elsewhere] {
            create(
                "Observation",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                       "subject": subject(&daffy), "encounter": {"reference": format!("Encounter/{encounter}")}}),
            )
            .await;
        }
        let hiv_obs = create(
            "Observation",
            labelled(json!({"resourceType": "Observation", "status": "final", "code": {"text": "hiv"}, "subject": subject(&daffy)}), "HIV"),
        )
        .await;

        let search = |t: &str, pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            phivault_fhir::search::parse_search(t, &pairs, true).expect("valid search")
        };
        let forward = search("Observation", &[("patient", &daffy), ("_include", "Observation:encounter")]);
        let page = guarded.search(&physician(None), "Observation", &forward, 0).await.expect("search").value;
        assert_eq!(page.resources.len(), 3, "{engine}: the HIV-labelled observation is not a match");
        assert_eq!(
            ids(&page.included),
            vec![format!("Encounter/{visit}")],
            "{engine}: not the labelled one, not Porky's"
        );

        let entries = store.audit_entries(0, 10_000).await.expect("entries");
        let last = AuditEvent::from_canonical(&entries.last().expect("entry").bytes).expect("event");
        assert_eq!(last.action, "search");
        assert!(last.resource_ids.contains(&format!("Encounter/{visit}")), "{engine}: {last:?}");
        for unseen in [&hidden, &elsewhere, &hiv_obs] {
            assert!(!last.resource_ids.iter().any(|r| r.ends_with(unseen.as_str())), "{engine}: {last:?}");
        }
        assert_eq!(last.patient_ids, vec![daffy.clone()], "{engine}");

        // A token that covers Observation only: the matches, and nothing of another type.
        let scoped = physician(Some(vec!["Observation".into()]));
        let page = guarded.search(&scoped, "Observation", &forward, 0).await.expect("search").value;
        assert_eq!(page.resources.len(), 3, "{engine}");
        assert!(page.included.is_empty(), "{engine}: {:?}", ids(&page.included));

        // The review's oracle: a reference to a record out of reach must weigh what a
        // reference to nothing weighs, also against the include limit. One observation names
        // Porky's encounter, another an id no record has, each beside 1,001 dangling ones.
        let mut answers = Vec::new();
        for member in [elsewhere.as_str(), "no-such-record"] {
            let dangling: Vec<Value> =
                (0..1_001).map(|i| json!({"reference": format!("Observation/missing-{i}")})).collect();
            let probe = create(
                "Observation",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "probe"},
                       "subject": subject(&daffy), "hasMember": [{"reference": format!("Encounter/{member}")}],
                       "derivedFrom": dangling}),
            )
            .await;
            let query = search(
                "Observation",
                &[("_id", &probe), ("_include", "Observation:has-member"), ("_include", "Observation:derived-from")],
            );
            let page = guarded.search(&physician(None), "Observation", &query, 0).await.expect("no error either way");
            answers.push((page.value.resources.len(), ids(&page.value.included)));
        }
        assert_eq!(answers[0], answers[1], "{engine}: indistinguishable");
        assert_eq!(answers[0], (1, Vec::new()), "{engine}");

        // Reverse, through the compartment: Daffy's readable observations; Porky's (he is
        // not in the physician's care, so neither a match nor anything of his) none.
        let porkys = create(
            "Observation",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}, "subject": subject(&porky)}),
        )
        .await;
        let reverse =
            search("Patient", &[("_id", &format!("{daffy},{porky}")), ("_revinclude", "Observation:patient")]);
        let page = guarded.search(&physician(None), "Patient", &reverse, 0).await.expect("search").value;
        assert_eq!(ids(&page.resources), vec![format!("Patient/{daffy}")], "{engine}");
        assert_eq!(page.included.len(), 5, "{engine}: three, and the two probes: {:?}", ids(&page.included));
        assert!(page.included.iter().all(|r| r.resource_type == "Observation" && r.id != hiv_obs && r.id != porkys));

        // :iterate follows the included observations' encounters, one level further.
        let iterate = search(
            "Patient",
            &[("_id", &daffy), ("_revinclude", "Observation:patient"), ("_include:iterate", "Observation:encounter")],
        );
        let page = guarded.search(&physician(None), "Patient", &iterate, 0).await.expect("search").value;
        assert!(ids(&page.included).contains(&format!("Encounter/{visit}")), "{engine}: {:?}", ids(&page.included));
        assert!(!ids(&page.included).iter().any(|r| r.ends_with(hidden.as_str()) || r.ends_with(elsewhere.as_str())));
    }
}
