//! A person's own account page, as they and an attacker would use it: they see where they
//! are signed in and end the sign-in on a lost laptop (its next page is the sign-in page),
//! they cannot end anyone else's, and a password change needs the current password, ends
//! every other sign-in and keeps this one; forged forms change nothing; all recorded.

mod common;

use axum::http::StatusCode;
use common::{BASE, app_with, csrf, header, location, page, post, send_as_is, trail};
use phivault_audit::Outcome;
use phivault_identity::Role;

#[tokio::test]
async fn a_person_ends_their_own_other_sign_ins_and_changes_their_password() {
    let (app, _db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let router = &app.router;
    let here = phivault_testkit::signed_in(&app.identity, "nurse-tweety", vec![Role::Nurse], None).await;
    let here = here.expose().to_owned();
    let tweety = app.identity.find_user("nurse-tweety").await.expect("nurse").id;
    let laptop = phivault_testkit::session_for(&app.identity, &tweety, "grant-laptop").await.expose().to_owned();
    let other = phivault_testkit::signed_in(&app.identity, "nurse-sylvester", vec![Role::Nurse], None).await;
    let other = other.expose().to_owned();

    let shown = send_as_is(router, page(&here, "/account")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert!(shown.text.contains("2 sign-ins and app grants") && shown.text.contains("this browser"), "{}", shown.text);
    assert!(shown.text.contains("value=\"grant-laptop\""), "{}", shown.text);
    let token = csrf(&shown);

    // Forged, and another person's grant: nothing ends.
    let forged =
        send_as_is(router, post(&here, "/account/sessions/end", &[("csrf", "guess"), ("grant", "grant-laptop")], BASE))
            .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let theirs = send_as_is(
        router,
        post(&here, "/account/sessions/end", &[("csrf", &token), ("grant", "grant-nurse-sylvester")], BASE),
    )
    .await;
    assert!(theirs.text.contains("Nothing was ended"), "{}", theirs.text);
    assert_eq!(send_as_is(router, page(&other, "/patients")).await.status, StatusCode::OK, "theirs still works");
    // This browser's own grant is not ended from here (that is "Sign out").
    let own = send_as_is(
        router,
        post(&here, "/account/sessions/end", &[("csrf", &token), ("grant", "grant-nurse-tweety")], BASE),
    )
    .await;
    assert!(own.text.contains("Nothing was ended"), "{}", own.text);

    // The lost laptop's sign-in ends: its next page is the sign-in page.
    let ended =
        send_as_is(router, post(&here, "/account/sessions/end", &[("csrf", &token), ("grant", "grant-laptop")], BASE))
            .await;
    assert!(ended.text.contains("That sign-in has ended."), "{}", ended.text);
    let after = send_as_is(router, page(&laptop, "/patients")).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(location(&after).starts_with("/login"));
    assert_eq!(send_as_is(router, page(&here, "/patients")).await.status, StatusCode::OK);

    // The password: the current one is needed, the two new ones must agree, then it changes
    // and this browser goes on under a new cookie while the old one stops working.
    let laptop = phivault_testkit::session_for(&app.identity, &tweety, "grant-laptop-2").await.expose().to_owned();
    let change = |current: &str, new: &str, repeat: &str| {
        post(
            &here,
            "/account/password",
            &[("csrf", &token), ("current", current), ("new", new), ("repeat", repeat)],
            BASE,
        )
    };
    let wrong =
        send_as_is(router, change("not my password", "a brand new long password", "a brand new long password")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.text.contains("current password is wrong") && !wrong.text.contains("brand new"), "{}", wrong.text);
    let differ =
        send_as_is(router, change("a long enough test password", "a brand new long password", "another one")).await;
    assert!(differ.text.contains("differ"), "{}", differ.text);
    let done = send_as_is(
        router,
        change("a long enough test password", "a brand new long password", "a brand new long password"),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let cookie = header(&done, "set-cookie");
    let fresh = cookie.split(';').next().and_then(|c| c.split_once('=')).map(|(_, v)| v.to_owned()).expect("cookie");
    // This browser goes on (the test account never enrolled a second factor, so its new
    // session is at that step, not signed out).
    let going_on = send_as_is(router, page(&fresh, "/account")).await;
    assert!(
        going_on.status == StatusCode::OK || location(&going_on).starts_with("/login/enrol"),
        "{}",
        location(&going_on)
    );
    assert_eq!(
        send_as_is(router, page(&here, "/patients")).await.status,
        StatusCode::SEE_OTHER,
        "the old cookie is void"
    );
    assert_eq!(
        send_as_is(router, page(&laptop, "/patients")).await.status,
        StatusCode::SEE_OTHER,
        "other sign-ins end"
    );

    let entries = trail(&app).await;
    let ends: Vec<_> = entries.iter().filter(|e| e.action == "account.end_session").collect();
    assert_eq!(ends.len(), 3);
    let outcomes: Vec<Outcome> = ends.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Failure, Outcome::Failure, Outcome::Success], "nothing ended is no success");
    assert!(ends.iter().any(|e| e.target.as_deref() == Some("grant:grant-laptop")));
    let changes: Vec<_> = entries.iter().filter(|e| e.action == "account.password").map(|e| e.outcome).collect();
    assert_eq!(changes, vec![Outcome::Denied, Outcome::Success], "the mismatch never reached the service");
    let all: String = entries.iter().map(|e| String::from_utf8_lossy(&e.canonical_bytes()).into_owned()).collect();
    assert!(!all.contains("brand new") && !all.contains("long enough"), "no password in the trail");
}

/// Guessing the current password from a signed-in browser left unattended: wrong guesses
/// count toward the account's lockout as at sign-in; then the sign-in ends and the account
/// is locked for a while.
#[tokio::test]
async fn guessing_the_current_password_locks_the_account_and_ends_the_sign_in() {
    let (app, _db) =
        app_with(1 << 20, phivault_policy::Policies::defaults().expect("defaults"), Default::default()).await;
    let router = &app.router;
    let here = phivault_testkit::signed_in(&app.identity, "nurse-granny", vec![Role::Nurse], None).await;
    let here = here.expose().to_owned();
    let token = csrf(&send_as_is(router, page(&here, "/account")).await);
    let limit = app.identity.policy().max_failed_logins;
    let mut ended_after = None;
    for guess in 1..=limit + 2 {
        let fields = [
            ("csrf", token.as_str()),
            ("current", "a guess"),
            ("new", "a brand new long password"),
            ("repeat", "a brand new long password"),
        ];
        let reply = send_as_is(router, post(&here, "/account/password", &fields, BASE)).await;
        if reply.status == StatusCode::SEE_OTHER {
            assert!(location(&reply).starts_with("/login"), "{}", location(&reply));
            ended_after = Some(guess);
            break;
        }
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "guess {guess}: {}", reply.text);
    }
    assert_eq!(ended_after, Some(limit), "locked at the sign-in limit");
    assert_eq!(send_as_is(router, page(&here, "/patients")).await.status, StatusCode::SEE_OTHER, "signed out");
    let account = app.identity.find_user("nurse-granny").await.expect("account");
    assert!(account.summary(app.identity.now_ms()).locked_until_ms.is_some(), "locked out for a while");
    let changes: Vec<_> = trail(&app).await.into_iter().filter(|e| e.action == "account.password").collect();
    assert_eq!(changes.last().and_then(|e| e.reason.clone()).as_deref(), Some("locked_out"));
}
