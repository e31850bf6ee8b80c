//! The front desk's pages, as a browser uses them and as an attacker would try them: a
//! patient registered at the desk reaches a physician only once the desk puts the
//! physician on the care team (audited, with who and whose), the desk never sees the SSN
//! it typed, duplicate record numbers and bad input are refused in words with nothing
//! stored, and no other role can register, assign or book.

mod common;

use axum::http::StatusCode;
use common::{BASE, TestApp, app_with, csrf, location, page, post, send_as_is, trail};
use phivault_audit::Outcome;
use phivault_identity::Role;
use phivault_service::access::AccessStore;
use phivault_testkit::TestDb;

struct Desk {
    app: TestApp,
    _db: TestDb,
    desk: String,
}

async fn desk() -> Desk {
    let (app, db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let desk = phivault_testkit::signed_in(&app.identity, "desk-granny", vec![Role::FrontDesk], None).await;
    Desk { app, _db: db, desk: desk.expose().to_owned() }
}

const DAFFY: [(&str, &str); 8] = [
    ("family", "Duck"),
    ("given", "Daffy"),
    ("birthdate", "1937-04-17"),
    ("sex", "male"),
    ("mrn", "123456789"),
    ("ssn", "999-00-1234"),
    ("phone", "555-0142"),
    ("city", "Toontown"),
];

async fn register(d: &Desk) -> String {
    let form = send_as_is(&d.app.router, page(&d.desk, "/desk/register")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let token = csrf(&form);
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend(DAFFY);
    let done = send_as_is(&d.app.router, post(&d.desk, "/desk/register", &fields, BASE)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let target = location(&done);
    assert!(target.ends_with("?saved=registered"), "{target}");
    target.trim_start_matches("/desk/patient/").trim_end_matches("?saved=registered").to_owned()
}

#[tokio::test]
async fn a_patient_registered_at_the_desk_reaches_the_physician_the_desk_assigns() {
    let d = desk().await;
    let router = &d.app.router;
    let daffy = register(&d).await;
    let shown = send_as_is(router, page(&d.desk, &format!("/desk/patient/{daffy}?saved=registered"))).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert!(shown.text.contains("Patient registered.") && shown.text.contains("Daffy Duck"));
    assert!(shown.text.contains("123456789"), "the MRN is the desk's to see");
    assert!(!shown.text.contains("999-00-1234"), "the SSN typed at the desk is masked from the desk");
    assert!(shown.text.contains("Nobody yet"), "{}", shown.text);

    // The physician does not see the new patient until the desk assigns them.
    let physician = &d.app.token;
    let before = send_as_is(router, page(physician, "/patients")).await;
    assert!(!before.text.contains(&daffy));
    let dr = d.app.identity.find_user("dr-daffy").await.expect("physician");
    let token = csrf(&shown);
    let action = format!("/desk/patient/{daffy}/care-team");
    let forged =
        send_as_is(router, post(&d.desk, &action, &[("csrf", "guess"), ("user", &dr.id), ("change", "add")], BASE))
            .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross = send_as_is(
        router,
        post(&d.desk, &action, &[("csrf", &token), ("user", &dr.id), ("change", "add")], "https://evil.example"),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(
        !send_as_is(router, page(physician, "/patients")).await.text.contains(&daffy),
        "refused changes change nothing"
    );
    let added =
        send_as_is(router, post(&d.desk, &action, &[("csrf", &token), ("user", &dr.id), ("change", "add")], BASE))
            .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    let after = send_as_is(router, page(physician, "/patients")).await;
    assert!(after.text.contains(&format!("/chart/{daffy}")), "{}", after.text);
    let chart = send_as_is(router, page(physician, &format!("/chart/{daffy}"))).await;
    assert_eq!(chart.status, StatusCode::OK);
    let team = send_as_is(router, page(&d.desk, &format!("/desk/patient/{daffy}"))).await;
    assert!(
        team.text.contains("Test user dr-daffy") && team.text.contains("Remove Test user dr-daffy from the care team")
    );

    let events = trail(&d.app).await;
    let change = events.iter().find(|e| e.action == "web.careteam.add").expect("the change is in the trail");
    assert_eq!(change.outcome, Outcome::Success);
    assert_eq!(change.target.as_deref(), Some(format!("user:{}", dr.id).as_str()));
    assert_eq!(change.patient_ids, vec![daffy.clone()]);
    assert!(change.policies.contains(&"front-desk-assigns-care-teams".to_owned()), "{:?}", change.policies);

    // Removing takes the chart away again.
    let removed =
        send_as_is(router, post(&d.desk, &action, &[("csrf", &token), ("user", &dr.id), ("change", "remove")], BASE))
            .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let gone = send_as_is(router, page(physician, &format!("/chart/{daffy}"))).await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN, "the physician may break the glass, nothing more");
}

#[tokio::test]
async fn bad_registrations_and_duplicates_are_refused_in_words_with_nothing_stored() {
    let d = desk().await;
    let router = &d.app.router;
    let daffy = register(&d).await;
    let form = send_as_is(router, page(&d.desk, "/desk/register")).await;
    let token = csrf(&form);
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend(DAFFY);
    let twice = send_as_is(router, post(&d.desk, "/desk/register", &fields, BASE)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.text.contains("already registered") && twice.text.contains(&daffy), "{}", twice.text);

    let bad = [
        ("csrf", token.as_str()),
        ("family", "Duck"),
        ("given", ""),
        ("birthdate", "2999-01-01"),
        ("sex", "duck"),
        ("ssn", "12"),
    ];
    let refused = send_as_is(router, post(&d.desk, "/desk/register", &bad, BASE)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    for words in [
        "Given names: required",
        "Birth date: not in the future",
        "Sex: choose one",
        "Social Security number: nine digits",
    ] {
        assert!(refused.text.contains(words), "{words}: {}", refused.text);
    }
    assert!(refused.text.contains("value=\"Duck\""), "what was typed is kept");
    let query = [("family".to_owned(), "Duck".to_owned())];
    let request = phivault_fhir::search::parse_search("Patient", &query, true).expect("query");
    assert_eq!(d.app.records.search("Patient", &request, 0).await.expect("search").resources.len(), 1, "one Daffy");
}

#[tokio::test]
async fn the_desk_books_appointments_in_the_clinics_time_and_other_roles_cannot() {
    let d = desk().await;
    let router = &d.app.router;
    let daffy = register(&d).await;
    let shown = send_as_is(router, page(&d.desk, &format!("/desk/patient/{daffy}"))).await;
    let token = csrf(&shown);
    let book = format!("/desk/patient/{daffy}/appointments");
    let past = send_as_is(
        router,
        post(&d.desk, &book, &[("csrf", &token), ("date", "2001-01-01"), ("time", "09:00"), ("minutes", "20")], BASE),
    )
    .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert!(past.text.contains("That time has passed"));
    let booked = send_as_is(
        router,
        post(
            &d.desk,
            &book,
            &[
                ("csrf", &token),
                ("date", "2099-12-10"),
                ("time", "09:30"),
                ("minutes", "30"),
                ("description", "Lisp <check>"),
            ],
            BASE,
        ),
    )
    .await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER, "{}", booked.text);
    let listed = send_as_is(router, page(&d.desk, &location(&booked))).await;
    assert!(listed.text.contains("Appointment booked.") && listed.text.contains("2099-12-10 09:30"), "{}", listed.text);
    assert!(listed.text.contains("Lisp &lt;check&gt;"));

    // A physician is not the front desk: no registration, no care-team changes.
    let physician = &d.app.token;
    let theirs = send_as_is(router, page(physician, "/desk/register")).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    let dr = d.app.identity.find_user("dr-daffy").await.expect("physician");
    let chart = send_as_is(router, page(physician, "/patients")).await;
    let self_assign = send_as_is(
        router,
        post(
            physician,
            &format!("/desk/patient/{daffy}/care-team"),
            &[("csrf", &csrf(&chart)), ("user", &dr.id), ("change", "add")],
            BASE,
        ),
    )
    .await;
    assert_eq!(self_assign.status, StatusCode::FORBIDDEN, "a physician cannot put themselves on a care team");
    assert!(!send_as_is(router, page(physician, "/patients")).await.text.contains(&daffy));

    // Someone who is both at the desk and a nurse cannot add themselves either.
    let both =
        phivault_testkit::signed_in(&d.app.identity, "desk-nurse-tweety", vec![Role::FrontDesk, Role::Nurse], None)
            .await;
    let tweety = d.app.identity.find_user("desk-nurse-tweety").await.expect("account");
    let form = send_as_is(router, page(both.expose(), &format!("/desk/patient/{daffy}"))).await;
    let own = send_as_is(
        router,
        post(
            both.expose(),
            &format!("/desk/patient/{daffy}/care-team"),
            &[("csrf", &csrf(&form)), ("user", &tweety.id), ("change", "add")],
            BASE,
        ),
    )
    .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert!(own.text.contains("You cannot change your own care-team membership"), "{}", own.text);
    let events = trail(&d.app).await;
    assert!(events.iter().any(|e| e.action == "web.careteam.add"
        && e.outcome == Outcome::Denied
        && e.policies == vec!["no-self-assignment".to_owned()]));

    // No assignment and no appointment for an id no registration has.
    let invented = "no-such-patient-0001";
    let assign = send_as_is(
        router,
        post(
            &d.desk,
            &format!("/desk/patient/{invented}/care-team"),
            &[("csrf", &token), ("user", &dr.id), ("change", "add")],
            BASE,
        ),
    )
    .await;
    assert_eq!(assign.status, StatusCode::NOT_FOUND);
    let rows = d
        .app
        .store
        .assignments(phivault_service::access::AssignmentKind::CareTeam, None, Some(invented))
        .await
        .expect("rows");
    assert!(rows.is_empty(), "a standing grant to an id no record has yet would open whatever later takes it");
    let ghost = send_as_is(
        router,
        post(
            &d.desk,
            &format!("/desk/patient/{invented}/appointments"),
            &[("csrf", &token), ("date", "2099-12-10"), ("time", "09:30"), ("minutes", "30")],
            BASE,
        ),
    )
    .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
    let query = [("_count".to_owned(), "100".to_owned())];
    let request = phivault_fhir::search::parse_search("Appointment", &query, true).expect("query");
    assert_eq!(
        d.app.records.search("Appointment", &request, 0).await.expect("search").resources.len(),
        1,
        "only the real booking"
    );
}
