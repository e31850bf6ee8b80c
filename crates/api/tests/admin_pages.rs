//! The administrator's and the approver's pages, as a browser uses them and as an insider
//! would try them: an administrator lists people, ends a person's sign-ins and deactivates
//! them (their next page is the sign-in page), requests an account and a reset but never
//! sees a password; the privacy officer approves and alone sees the password, once; the
//! administrator cannot approve their own request; forged forms and other roles change
//! nothing; every page and verb is in the trail.

mod common;

use axum::http::StatusCode;
use common::{BASE, app_with, csrf, location, page, post, send_as_is, trail};
use phivault_audit::Outcome;
use phivault_identity::Role;

#[tokio::test]
async fn administrators_manage_accounts_and_only_a_second_person_sees_a_password() {
    let (app, _db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let router = &app.router;
    let admin = phivault_testkit::signed_in(&app.identity, "admin-bugs", vec![Role::Admin], None).await;
    let admin = admin.expose().to_owned();
    let officer = phivault_testkit::signed_in(&app.identity, "po-granny", vec![Role::PrivacyOfficer], None).await;
    let officer = officer.expose().to_owned();
    let nurse = phivault_testkit::signed_in(&app.identity, "nurse-tweety", vec![Role::Nurse], None).await;
    let nurse = nurse.expose().to_owned();
    let tweety = app.identity.find_user("nurse-tweety").await.expect("nurse").id;

    // Only administrators see people; the nurse is refused (and recorded).
    let listed = send_as_is(router, page(&admin, "/people")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(listed.text.contains("nurse-tweety") && listed.text.contains(&format!("/people/{tweety}")));
    assert!(!listed.text.contains("argon2") && !listed.text.contains("$"), "no hashes");
    let refused = send_as_is(router, page(&nurse, "/people")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.text.contains("nurse-tweety</td>"));
    assert_eq!(send_as_is(router, page(&nurse, "/approvals")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send_as_is(router, page(&admin, "/approvals")).await.status, StatusCode::FORBIDDEN, "not the admin's");

    // The nurse's page shows their live sign-in; a forged or cross-site form changes nothing.
    let shown = send_as_is(router, page(&admin, &format!("/people/{tweety}"))).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert!(shown.text.contains("1 live sign-ins"), "{}", shown.text);
    let token = csrf(&shown);
    let deactivate = format!("/people/{tweety}/deactivate");
    let forged = send_as_is(router, post(&admin, &deactivate, &[("csrf", "guess"), ("confirm", "yes")], BASE)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross =
        send_as_is(router, post(&admin, &deactivate, &[("csrf", &token), ("confirm", "yes")], "https://evil.example"))
            .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    // The nurse cannot use the administrator's verbs on anyone (their own CSRF token).
    let own = csrf(&send_as_is(router, page(&nurse, "/account")).await);
    let by_nurse = send_as_is(router, post(&nurse, &deactivate, &[("csrf", &own), ("confirm", "yes")], BASE)).await;
    assert_eq!(by_nurse.status, StatusCode::FORBIDDEN);
    assert_eq!(send_as_is(router, page(&nurse, "/patients")).await.status, StatusCode::OK, "still signed in");

    // Unconfirmed: nothing happens. Confirmed: the nurse's next page is the sign-in page.
    let unconfirmed = send_as_is(router, post(&admin, &deactivate, &[("csrf", &token)], BASE)).await;
    assert!(unconfirmed.text.contains("Nothing was changed"), "{}", unconfirmed.text);
    assert_eq!(send_as_is(router, page(&nurse, "/patients")).await.status, StatusCode::OK);
    let done = send_as_is(router, post(&admin, &deactivate, &[("csrf", &token), ("confirm", "yes")], BASE)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("deactivated") && done.text.contains("No live sign-ins"), "{}", done.text);
    let after = send_as_is(router, page(&nurse, "/patients")).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(location(&after).starts_with("/login"), "{}", location(&after));

    // A new account: requested by the administrator, who sees no password...
    let form = send_as_is(router, page(&admin, "/people/new")).await;
    let token = csrf(&form);
    let fields = [
        ("csrf", token.as_str()),
        ("display_name", "Dr Porky Pig"),
        ("username", "dr-porky"),
        ("role", "physician"),
        ("role", "nurse"),
    ];
    let requested = send_as_is(router, post(&admin, "/people/new", &fields, BASE)).await;
    assert_eq!(requested.status, StatusCode::SEE_OTHER, "{}", requested.text);
    let porky = app.identity.find_user("dr-porky").await.expect("made");
    assert_eq!(location(&requested), format!("/people/{}", porky.id));
    let porky_page = send_as_is(router, page(&admin, &location(&requested))).await;
    assert!(porky_page.text.contains("physician, nurse"), "{}", porky_page.text);
    assert!(!porky_page.text.to_lowercase().contains("password:"), "{}", porky_page.text);
    let none = send_as_is(
        router,
        post(&admin, "/people/new", &[("csrf", &token), ("display_name", "X"), ("username", "x-y")], BASE),
    )
    .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.text.contains("Tick at least one role") && none.text.contains("value=\"x-y\""), "typed values kept");

    // ...the privacy officer approves and alone sees it, once.
    let queue = send_as_is(router, page(&officer, "/approvals")).await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text);
    assert!(queue.text.contains("Dr Porky Pig (dr-porky)") && queue.text.contains("admin-bugs"), "{}", queue.text);
    assert!(queue.text.contains("roles: physician, nurse"), "what the approval opens: {}", queue.text);
    let start = queue.text.find("/approvals/").expect("a request") + "/approvals/".len();
    let request = queue.text[start..].split('/').next().expect("id").to_owned();
    // The administrator cannot approve it (not their role, and not their own request).
    let admin_token = csrf(&send_as_is(router, page(&admin, "/people")).await);
    let self_approved =
        send_as_is(router, post(&admin, &format!("/approvals/{request}/approve"), &[("csrf", &admin_token)], BASE))
            .await;
    assert_eq!(self_approved.status, StatusCode::FORBIDDEN);
    assert!(!self_approved.text.contains("<code>"), "{}", self_approved.text);
    let officer_token = csrf(&queue);
    let approved =
        send_as_is(router, post(&officer, &format!("/approvals/{request}/approve"), &[("csrf", &officer_token)], BASE))
            .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert!(approved.text.contains("Give this password to <strong>dr-porky</strong> in person"), "{}", approved.text);
    let again =
        send_as_is(router, post(&officer, &format!("/approvals/{request}/approve"), &[("csrf", &officer_token)], BASE))
            .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "decided once: {}", again.text);
    assert!(send_as_is(router, page(&officer, "/approvals")).await.text.contains("Nothing is waiting"));

    // The trail: every page and verb, with the account by id, never a password.
    let entries = trail(&app).await;
    let named =
        |action: &str, outcome: Outcome| entries.iter().filter(|e| e.action == action && e.outcome == outcome).count();
    assert!(named("web.admin.user.list", Outcome::Success) >= 2);
    assert!(named("web.admin.user.list", Outcome::Denied) >= 1, "the nurse's refusal");
    let deactivated = entries.iter().find(|e| e.action == "web.admin.user.deactivate" && e.outcome == Outcome::Success);
    assert_eq!(deactivated.and_then(|e| e.target.clone()), Some(format!("user:{tweety}")));
    assert!(
        entries.iter().any(|e| e.action == "web.admin.user.deactivate"
            && e.outcome == Outcome::Failure
            && e.reason.as_deref() == Some("unchanged")),
        "the unconfirmed deactivation changed nothing and is recorded so"
    );
    assert!(
        named("web.admin.user.create", Outcome::Success) == 1
            && named("web.admin.approval.approve", Outcome::Success) == 1
    );
    assert!(
        named("web.admin.approval.approve", Outcome::Denied) >= 2,
        "the administrator's try and the second approval"
    );
    let password_start = approved.text.find("<code>").expect("code") + "<code>".len();
    let password = approved.text[password_start..].split('<').next().expect("password");
    let all = entries.iter().map(|e| String::from_utf8_lossy(&e.canonical_bytes()).into_owned()).collect::<String>();
    assert!(!all.contains(password), "no password in the trail");
}
