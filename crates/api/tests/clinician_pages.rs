//! The clinician's pages, as a browser uses them and as an attacker would try them: the
//! patient list and search show only the patients the policies let the clinician see (and
//! put no search value in any address), the chart is one audited read that escapes every
//! value, a patient outside the team is a closed door (the same page as an id that does not
//! exist, except that a clinician may break the glass), notes and vital signs are written
//! only from this site with the session's CSRF token, and a refused write changes nothing.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, COOKIE, TestApp, app_with, csrf, location, page, post, send_as_is, trail};
use phivault_identity::Role;
use phivault_service::access::{AccessStore, Assignment, AssignmentKind};
use phivault_testkit::TestDb;
use serde_json::{Value, json};

struct Clinic {
    app: TestApp,
    _db: TestDb,
    /// Daffy Duck: on the physician's care team, with a chart.
    daffy: String,
    /// Porky Pig: nobody's patient here.
    porky: String,
    physician: String,
}

async fn create(app: &TestApp, body: Value) -> String {
    let t = body["resourceType"].as_str().expect("type").to_owned();
    app.records.create(&t, body, None).await.expect("created").resource.id
}

fn about(patient: &str) -> Value {
    json!({"reference": format!("Patient/{patient}")})
}

fn vital(patient: &str, code: &str, value: f64, unit: &str, date: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": about(patient), "effectiveDateTime": date,
        "valueQuantity": {"value": value, "unit": unit}})
}

async fn clinic() -> Clinic {
    let (app, db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let daffy = create(
        &app,
        json!({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "123456789"}],
            "name": [{"family": "Duck", "given": ["Daffy"]}], "gender": "male", "birthDate": "1937-04-17"}),
    )
    .await;
    let porky = create(
        &app,
        json!({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "987654321"}],
            "name": [{"family": "Pig", "given": ["Porky"]}], "birthDate": "1935-03-02"}),
    )
    .await;
    create(
        &app,
        json!({"resourceType": "AllergyIntolerance", "patient": about(&daffy), "criticality": "high",
            "code": {"text": "Peanut <b>allergy</b>"}, "reaction": [{"manifestation": [{"text": "Anaphylaxis"}]}]}),
    )
    .await;
    create(
        &app,
        json!({"resourceType": "Condition", "subject": about(&daffy), "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Essential hypertension"}, "onsetDateTime": "2020-01-01"}),
    )
    .await;
    for (i, rate) in [64.0, 80.0, 72.0].iter().enumerate() {
        create(&app, vital(&daffy, "8867-4", *rate, "/min", &format!("2026-0{}-01", i + 1))).await;
    }
    create(&app, vital(&porky, "8867-4", 99.0, "/min", "2026-01-01")).await;
    // An HIV result the physician, without that clearance, may not see: newest of all.
    let mut hiv = vital(&daffy, "8867-4", 140.0, "/min", "2026-06-01");
    hiv["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]});
    create(&app, hiv).await;
    let physician = app.identity.find_user("dr-daffy").await.expect("physician").id;
    app.store
        .assign(&Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: physician.clone(),
            value: daffy.clone(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    Clinic { app, _db: db, daffy, porky, physician }
}

async fn count(app: &TestApp, resource_type: &str, patient: &str) -> usize {
    let query = [("patient".to_owned(), patient.to_owned())];
    let request = phivault_fhir::search::parse_search(resource_type, &query, true).expect("query");
    app.records.search(resource_type, &request, 0).await.expect("search").resources.len()
}

#[tokio::test]
async fn a_clinician_lists_and_finds_only_their_patients_with_no_search_value_in_any_address() {
    let c = clinic().await;
    let token = &c.app.token;
    let list = send_as_is(&c.app.router, page(token, "/patients")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains(&format!("href=\"/chart/{}\"", c.daffy)) && list.text.contains("Daffy Duck"));
    assert!(!list.text.contains("Pig") && !list.text.contains(&c.porky), "another clinician's patient is not listed");
    assert!(list.text.contains("action=\"/patients/search\"") && list.text.contains("method=\"post\""));

    let found =
        send_as_is(&c.app.router, post(token, "/patients/search", &[("csrf", &csrf(&list)), ("name", "Duck")], BASE))
            .await;
    assert_eq!(
        found.status,
        StatusCode::OK,
        "results are the POST's answer, not a redirect to an address holding them"
    );
    assert!(found.text.contains(&format!("/chart/{}", c.daffy)));
    // Searching for a patient outside the team finds nothing, by name or record number.
    for (field, value) in [("name", "Pig"), ("mrn", "987654321"), ("birthdate", "1935-03-02")] {
        let probe =
            send_as_is(&c.app.router, post(token, "/patients/search", &[("csrf", &csrf(&list)), (field, value)], BASE))
                .await;
        assert_eq!(probe.status, StatusCode::OK);
        assert!(!probe.text.contains(&c.porky) && !probe.text.contains("Porky"), "{field}: {}", probe.text);
        assert!(probe.text.contains("No patient you may see matches"));
    }
    let empty = send_as_is(&c.app.router, post(token, "/patients/search", &[("csrf", &csrf(&list))], BASE)).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.text.contains("Enter a name, a record number or a birth date."));
    let forged =
        send_as_is(&c.app.router, post(token, "/patients/search", &[("csrf", "guess"), ("name", "Duck")], BASE)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!forged.text.contains(&c.daffy), "a forged search shows nothing");

    // Every search left an entry; none holds a typed value.
    let entries = trail(&c.app).await;
    let searches: Vec<_> = entries.iter().filter(|e| e.action == "search").collect();
    assert!(searches.len() >= 5, "{}", searches.len());
    for e in &entries {
        let line = String::from_utf8_lossy(&e.canonical_bytes()).into_owned();
        for typed in ["Duck", "Pig", "987654321", "1935-03-02"] {
            assert!(!line.contains(typed), "a typed search value reached the trail: {line}");
        }
    }
}

#[tokio::test]
async fn the_chart_is_one_audited_read_that_escapes_every_value() {
    let c = clinic().await;
    let shown = send_as_is(&c.app.router, page(&c.app.token, &format!("/chart/{}", c.daffy))).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert!(shown.text.contains("<title>Chart · phivault</title>"), "no name in the window title (history, tabs)");
    assert!(shown.text.contains("<h1>Daffy Duck</h1>"));
    let allergies = shown.text.find("id=\"allergies\"").expect("allergies section");
    let problems = shown.text.find("id=\"problems\"").expect("problems section");
    assert!(allergies < problems, "allergies come first");
    assert!(shown.text.contains("Peanut &lt;b&gt;allergy&lt;/b&gt;") && !shown.text.contains("<b>allergy"));
    assert!(shown.text.contains("Anaphylaxis") && shown.text.contains("Essential hypertension"));
    assert!(shown.text.contains("123456789") && shown.text.contains("1937-04-17"));
    assert!(
        shown.text.contains("<svg class=\"trend\"") && shown.text.contains("Heart rate: 3 readings"),
        "{}",
        shown.text
    );
    assert!(shown.text.contains("action=\"/chart/") && shown.text.contains("/notes\""), "the care team writes notes");
    assert!(!shown.text.contains("99 /min"), "another patient's reading is not in this chart");
    assert!(!shown.text.contains("140"), "a labelled record the physician is not cleared for is not shown");

    let entries = trail(&c.app).await;
    let charts: Vec<_> = entries.iter().filter(|e| e.action == "chart").collect();
    assert_eq!(charts.len(), 1, "one chart, one entry");
    let entry = charts[0];
    assert_eq!(entry.patient_ids, vec![c.daffy.clone()]);
    assert_eq!(entry.user_id.as_deref(), Some(c.physician.as_str()));
    assert_eq!(entry.resource_ids.len(), 1 + 1 + 1 + 3, "the Patient, the allergy, the problem, three readings");
    assert!(entry.resource_ids.contains(&format!("Patient/{}", c.daffy)));
}

#[tokio::test]
async fn a_patient_outside_the_team_is_a_closed_door_that_only_break_glass_opens() {
    let c = clinic().await;
    let router = &c.app.router;
    // Someone whose role may not break the glass cannot tell a real patient from no patient.
    let admin = phivault_testkit::signed_in(&c.app.identity, "admin-bugs", vec![Role::Admin], None).await;
    let real = send_as_is(router, page(admin.expose(), &format!("/chart/{}", c.porky))).await;
    let invented = send_as_is(router, page(admin.expose(), "/chart/no-such-patient-0001")).await;
    assert_eq!(real.status, StatusCode::NOT_FOUND);
    assert_eq!((real.status, real.text.clone()), (invented.status, invented.text.clone()), "no existence oracle");
    let invalid = send_as_is(router, page(admin.expose(), "/chart/123-45-6789%20Daffy")).await;
    assert_eq!(invalid.status, StatusCode::NOT_FOUND);
    assert!(!invalid.text.contains("Daffy") && !invalid.text.contains("6789"), "typed text is never echoed");

    // The physician may break the glass, so learns the chart exists and is offered the form.
    let token = &c.app.token;
    let closed = send_as_is(router, page(token, &format!("/chart/{}", c.porky))).await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN);
    assert!(closed.text.contains("Emergency access (break the glass)") && closed.text.contains("60 minutes"));
    assert!(
        !closed.text.contains("Porky") && !closed.text.contains("99 /min"),
        "nothing of the chart before the glass is broken"
    );
    let action = format!("/chart/{}/break-glass", c.porky);
    let forged = send_as_is(
        router,
        post(
            token,
            &action,
            &[("csrf", "guess"), ("reason", "emergency-treatment"), ("note", "found unresponsive")],
            BASE,
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let short = send_as_is(
        router,
        post(token, &action, &[("csrf", &csrf(&closed)), ("reason", "emergency-treatment"), ("note", "x")], BASE),
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.text.contains("at least 10 characters"), "{}", short.text);
    let still_closed = send_as_is(router, page(token, &format!("/chart/{}", c.porky))).await;
    assert_eq!(still_closed.status, StatusCode::FORBIDDEN, "refused requests grant nothing");

    let granted = send_as_is(
        router,
        post(
            token,
            &action,
            &[
                ("csrf", &csrf(&closed)),
                ("reason", "emergency-treatment"),
                ("note", "found unresponsive in the waiting room"),
            ],
            BASE,
        ),
    )
    .await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.text);
    assert_eq!(location(&granted), format!("/chart/{}", c.porky));
    let open = send_as_is(router, page(token, &format!("/chart/{}", c.porky))).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.text);
    assert!(open.text.contains("<strong>Emergency access</strong>") && open.text.contains("min left"), "{}", open.text);
    assert!(open.text.contains("Porky Pig") && open.text.contains("99 /min"));
    assert!(!open.text.contains("/notes\""), "emergency access reads; it offers no form to write");
    assert!(open.text.contains("it does not write to it"));
    // Through the grant a write is still refused, and nothing is stored.
    let note = send_as_is(
        router,
        post(
            token,
            &format!("/chart/{}/notes", c.porky),
            &[("csrf", &csrf(&closed)), ("kind", "11506-3"), ("text", "Quacks")],
            BASE,
        ),
    )
    .await;
    assert_eq!(note.status, StatusCode::FORBIDDEN);
    assert!(note.text.contains("This was not saved"), "the refusal is said, not just a chart: {}", note.text);
    assert_eq!(count(&c.app, "DocumentReference", &c.porky).await, 0);

    let entries = trail(&c.app).await;
    assert!(entries.iter().any(|e| e.action == "break_glass.request" && e.patient_ids == vec![c.porky.clone()]));
    // Probing ids that no record has leaves a trace as well.
    assert!(
        entries.iter().any(|e| e.action == "chart" && e.patient_ids == vec!["no-such-patient-0001".to_owned()]),
        "an invented id is recorded"
    );
    let refusals =
        entries.iter().filter(|e| e.action == "chart" && e.outcome == phivault_audit::Outcome::Denied).count();
    assert!(refusals >= 3, "every closed door is recorded: {refusals}");
}

#[tokio::test]
async fn notes_and_vital_signs_written_in_the_browser_appear_in_the_chart_exactly() {
    let c = clinic().await;
    let router = &c.app.router;
    let token = &c.app.token;
    let chart_url = format!("/chart/{}", c.daffy);
    let chart = send_as_is(router, page(token, &chart_url)).await;
    let token_csrf = csrf(&chart);

    let note_url = format!("/chart/{}/notes", c.daffy);
    let saved = send_as_is(
        router,
        post(
            token,
            &note_url,
            &[("csrf", &token_csrf), ("kind", "11506-3"), ("text", "Quacks <less>; lisp persists.")],
            BASE,
        ),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(
        location(&saved),
        format!("/chart/{}?saved=note", c.daffy),
        "the address names what was saved, no value"
    );
    let after = send_as_is(router, page(token, &location(&saved))).await;
    assert!(
        after.text.contains("Note saved.") && after.text.contains("Quacks &lt;less&gt;; lisp persists."),
        "{}",
        after.text
    );

    // A slip of the keyboard is explained, and what was typed is kept for correction.
    let vitals_url = format!("/chart/{}/vitals", c.daffy);
    let before = count(&c.app, "Observation", &c.daffy).await;
    let slip = send_as_is(
        router,
        post(token, &vitals_url, &[("csrf", &token_csrf), ("heart_rate", "7200"), ("temperature", "36.6")], BASE),
    )
    .await;
    assert_eq!(slip.status, StatusCode::BAD_REQUEST);
    assert!(slip.text.contains("Heart rate must be a number from 20 to 250 beats/min."), "{}", slip.text);
    assert!(slip.text.contains("value=\"7200\""), "the typed value is kept");
    assert_eq!(
        count(&c.app, "Observation", &c.daffy).await,
        before,
        "a refused set saves nothing, not even its valid part"
    );

    let ok = send_as_is(
        router,
        post(
            token,
            &vitals_url,
            &[("csrf", &token_csrf), ("systolic", "130"), ("diastolic", "85"), ("temperature", "36.60")],
            BASE,
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert_eq!(count(&c.app, "Observation", &c.daffy).await, before + 2, "a blood pressure panel and a temperature");
    let query = [("patient".to_owned(), c.daffy.clone()), ("code".to_owned(), "http://loinc.org|8310-5".to_owned())];
    let request = phivault_fhir::search::parse_search("Observation", &query, true).expect("query");
    let temperature = c.app.records.search("Observation", &request, 0).await.expect("search").resources;
    assert_eq!(serde_json::to_string(&temperature[0].body["valueQuantity"]["value"]).expect("json"), "36.60");
    let shown = send_as_is(router, page(token, &format!("/chart/{}?saved=vitals", c.daffy))).await;
    assert!(shown.text.contains("Vital signs saved.") && shown.text.contains("130 mmHg"), "{}", shown.text);

    // From another site, or without the session's token, nothing is written.
    let notes_before = count(&c.app, "DocumentReference", &c.daffy).await;
    let cross = send_as_is(
        router,
        post(
            token,
            &note_url,
            &[("csrf", &token_csrf), ("kind", "11506-3"), ("text", "forged")],
            "https://evil.example",
        ),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let no_token = send_as_is(router, post(token, &note_url, &[("kind", "11506-3"), ("text", "forged")], BASE)).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&c.app, "DocumentReference", &c.daffy).await, notes_before);
    // A write to a patient outside the team is answered like the chart would be.
    let outside = send_as_is(
        router,
        post(token, &format!("/chart/{}/vitals", c.porky), &[("csrf", &token_csrf), ("heart_rate", "70")], BASE),
    )
    .await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&c.app, "Observation", &c.porky).await, 1, "nothing written to a patient outside the team");
}

#[tokio::test]
async fn a_policy_that_names_one_record_is_obeyed_though_its_siblings_share_every_other_fact() {
    // Decisions are reused within a request for records with the same facts, unless a
    // policy names a record by id: then each is decided on its own.
    let forbid = "@id(\"test-one-reading-withheld\")\n\
                  forbid (principal, action, resource == PhiVault::Record::\"Observation/hr-2\");";
    let policies = phivault_testkit::policies_with(forbid);
    assert!(!policies.decisions_follow_record_facts(), "the policy names a record");
    assert!(phivault_policy::Policies::defaults().expect("defaults").decisions_follow_record_facts());
    // A comment between the tokens does not hide the record it names.
    let hidden = phivault_testkit::policies_with(
        "@id(\"test-commented\")\nforbid (principal, action, resource == PhiVault::Record:: // the VIP\n \"Observation/vip\");",
    );
    assert!(!hidden.decisions_follow_record_facts(), "read from the parsed policy, not its text");
    let (app, _db) = app_with(1 << 20, policies, Default::default()).await;
    let daffy =
        create(&app, json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}]})).await;
    for (i, rate) in [61.0, 62.0, 63.0].iter().enumerate() {
        let id = format!("hr-{}", i + 1);
        let mut body = vital(&daffy, "8867-4", *rate, "/min", &format!("2026-0{}-01", i + 1));
        body["id"] = json!(id);
        app.records.update("Observation", &id, body, None).await.expect("put");
    }
    let physician = app.identity.find_user("dr-daffy").await.expect("physician").id;
    app.store
        .assign(&Assignment {
            kind: AssignmentKind::CareTeam,
            user_id: physician,
            value: daffy.clone(),
            assigned_by: "test".into(),
            assigned_ms: 0,
        })
        .await
        .expect("assign");
    let shown = send_as_is(&app.router, page(&app.token, &format!("/chart/{daffy}"))).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert!(shown.text.contains("Heart rate: 2 readings"), "the named reading is withheld: {}", shown.text);
    assert!(!shown.text.contains("highest 62"), "{}", shown.text);
    let entries = trail(&app).await;
    let chart = entries.iter().find(|e| e.action == "chart").expect("chart entry");
    assert!(!chart.resource_ids.contains(&"Observation/hr-2".to_owned()), "nor named as shown");
    assert!(chart.resource_ids.contains(&"Observation/hr-3".to_owned()));
}

#[tokio::test]
async fn every_page_states_its_idle_timeout_and_only_the_session_itself_can_keep_it_alive() {
    let c = clinic().await;
    let shown = send_as_is(&c.app.router, page(&c.app.token, "/patients")).await;
    assert!(shown.text.contains("data-idle-seconds=\"900\""), "the session's timeout, for the warning");
    assert!(shown.text.contains("<script src=\"/static/idle.js\" defer></script>"), "a file, never inline script");
    let script = send_as_is(&c.app.router, Request::get("/static/idle.js").body(Body::empty()).expect("request")).await;
    assert!(
        location(&script).is_empty() && script.text.contains("replaceChildren"),
        "the page is removed at the timeout"
    );
    let keep = |csrf: &str, origin: &str| {
        Request::post("/session/keepalive")
            .header("cookie", format!("{COOKIE}={}", c.app.token))
            .header("x-csrf-token", csrf)
            .header("origin", origin)
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(send_as_is(&c.app.router, keep("guess", BASE)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send_as_is(&c.app.router, keep(&csrf(&shown), "https://evil.example")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(send_as_is(&c.app.router, keep(&csrf(&shown), BASE)).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn signed_out_visits_go_to_sign_in_and_come_back_by_opaque_address_only() {
    let c = clinic().await;
    for (uri, next) in [
        (format!("/chart/{}", c.daffy), format!("%2Fchart%2F{}", c.daffy)),
        ("/patients".to_owned(), "%2Fpatients".to_owned()),
    ] {
        let reply = send_as_is(&c.app.router, Request::get(&uri).body(Body::empty()).expect("request")).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(location(&reply), format!("/login?next={next}"));
    }
    let typed =
        send_as_is(&c.app.router, Request::get("/chart/Daffy%20Duck").body(Body::empty()).expect("request")).await;
    assert_eq!(location(&typed), "/login?next=%2Fpatients", "text that is not an id never rides into an address");
    // The API from a signed-out browser: sign-in and back to the path, never the query.
    let browser = Request::get("/fhir/Patient?family=Duck&birthdate=1937-04-17")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .body(Body::empty())
        .expect("request");
    let reply = send_as_is(&c.app.router, browser).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/login?next=%2Ffhir%2FPatient", "the search values stay behind");
    let app = send_as_is(&c.app.router, Request::get("/fhir/Patient").body(Body::empty()).expect("request")).await;
    assert_eq!(app.status, StatusCode::UNAUTHORIZED, "an app still gets its 401");
    let ended = send_as_is(&c.app.router, page("not-a-session", "/patients")).await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
}
