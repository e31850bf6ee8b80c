//! The FHIR REST API as a client sees it, including bad input.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{BASE, app, app_with_limit, daffy, get, send, with_json};
use serde_json::json;

#[tokio::test]
async fn create_read_update_with_etags_and_locations() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.headers["etag"], "W/\"1\"");
    assert_eq!(created.headers["location"], format!("{BASE}/fhir/Patient/{id}/_history/1").as_str());
    assert!(created.headers["content-type"].to_str().expect("ct").starts_with("application/fhir+json"));

    let read = send(&app, get(&format!("/fhir/Patient/{id}"))).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["name"][0]["family"], "Duck");
    assert!(read.headers.contains_key("last-modified"));

    let mut body = read.body.clone();
    body["gender"] = json!("other");
    let updated = send(&app, with_json("PUT", &format!("/fhir/Patient/{id}"), &body, &[("if-match", "W/\"1\"")])).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.headers["etag"], "W/\"2\"");
    let stale = send(&app, with_json("PUT", &format!("/fhir/Patient/{id}"), &body, &[("if-match", "W/\"1\"")])).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.body["resourceType"], "OperationOutcome");

    let v1 = send(&app, get(&format!("/fhir/Patient/{id}/_history/1"))).await;
    assert_eq!(v1.body["gender"], "male");
    let history = send(&app, get(&format!("/fhir/Patient/{id}/_history"))).await;
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["total"], 2);
    let minimal = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[("prefer", "return=minimal")])).await;
    assert_eq!(minimal.status, StatusCode::CREATED);
    assert!(minimal.text.is_empty());
}

#[tokio::test]
async fn conditional_create_returns_the_existing_match() {
    let (app, _db) = app().await;
    let condition = [("if-none-exist", "identifier=urn:mrn|123456789")];
    let first = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &condition)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &condition)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["id"], first.body["id"]);
    send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let ambiguous = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &condition)).await;
    assert_eq!(ambiguous.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn bad_input_gets_operation_outcomes_without_phi() {
    let (app, _db) = app_with_limit(4096).await;
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (
            Request::post("/fhir/Patient")
                .header("content-type", "application/fhir+json")
                .body(Body::from("{\"resourceType\": \"Patient\", \"name\": [{\"family\": \"Duck\""))
                .expect("req"),
            StatusCode::BAD_REQUEST,
        ),
        (with_json("POST", "/fhir/Patient", &json!({"name": [{"family": "Duck"}]}), &[]), StatusCode::BAD_REQUEST),
        (
            with_json("POST", "/fhir/Patient", &json!({"resourceType": "Observation", "status": "final"}), &[]),
            StatusCode::BAD_REQUEST,
        ),
        (
            with_json(
                "PUT",
                "/fhir/Patient/abc",
                &json!({"resourceType": "Patient", "id": "xyz", "name": [{"family": "Duck"}]}),
                &[],
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            with_json(
                "POST",
                "/fhir/Patient",
                &json!({"resourceType": "Patient", "birthDate": "1937-02-30", "name": [{"family": "Duck"}]}),
                &[],
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            with_json("POST", "/fhir/Patient", &json!({"resourceType": "Patient", "note": "Duck ".repeat(2000)}), &[]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Request::post("/fhir/Patient").header("content-type", "text/plain").body(Body::from("Duck")).expect("req"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (get("/fhir/Patient/not%20an%20id"), StatusCode::BAD_REQUEST),
        (get("/fhir/Patientz/1"), StatusCode::NOT_FOUND),
        (get("/fhir/Patient/missing"), StatusCode::NOT_FOUND),
        (get("/fhir/Patient/missing/_history/x"), StatusCode::BAD_REQUEST),
        (get("/fhir/Patient?birthdate=gtDuck"), StatusCode::BAD_REQUEST),
        (get("/fhir/Patient?name:contains=Duck"), StatusCode::BAD_REQUEST),
        (get("/fhir/Patient?_page=forged-cursor"), StatusCode::BAD_REQUEST),
        (Request::delete("/fhir/Patient/abc").body(Body::empty()).expect("req"), StatusCode::METHOD_NOT_ALLOWED),
        (get("/nowhere"), StatusCode::NOT_FOUND),
    ];
    for (i, (request, expected)) in cases.into_iter().enumerate() {
        let reply = send(&app, request).await;
        assert_eq!(reply.status, expected, "case {i}: {}", reply.text);
        assert_eq!(reply.body["resourceType"], "OperationOutcome", "case {i}");
        assert!(!reply.text.contains("Duck") && !reply.text.contains("1937"), "case {i} echoes input: {}", reply.text);
    }
}

/// The review's cases: an unsupported parameter used to be dropped and the search widened
/// to every record. Now refused by default, named by position; lenient only when asked.
#[tokio::test]
async fn a_search_never_silently_widens_unknown_parameters_are_refused_unless_lenient_is_asked() {
    let (app, _db) = app().await;
    send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let mut porky = daffy();
    porky["name"] = json!([{"family": "Pig", "given": ["Porky"]}]);
    send(&app, with_json("POST", "/fhir/Patient", &porky, &[])).await;
    for query in [
        "/fhir/Patient?family=Duck&shoe-size=42",
        "/fhir/Patient?address-city=Nowhere",
        "/fhir/Patient?_has:Observation:patient:code=1234",
        "/fhir/Observation?patient.family=Duck",
        "/fhir/Patient?family=Duck&_include=Patient:shoe-size",
    ] {
        let refused = send(&app, get(query)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}: {}", refused.text);
        assert_eq!(refused.body["resourceType"], "OperationOutcome");
        let text = &refused.text;
        assert!(text.contains("query parameter "), "{query}: names the position: {text}");
        assert!(!text.contains("Duck") && !text.contains("Nowhere") && !text.contains("shoe"), "{query}: {text}");
    }
    // POST _search is refused the same way, whether the parameter is in the URL or the body.
    let form = |uri: &str, body: &str| {
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .expect("req")
    };
    let in_body = send(&app, form("/fhir/Patient/_search", "family=Duck&shoe-size=42")).await;
    assert_eq!(in_body.status, StatusCode::BAD_REQUEST, "{}", in_body.text);
    assert!(in_body.text.contains("query parameter 2"), "{}", in_body.text);
    let in_url = send(&app, form("/fhir/Patient/_search?shoe-size=42", "family=Duck")).await;
    assert_eq!(in_url.status, StatusCode::BAD_REQUEST, "{}", in_url.text);
    // URL and body parameters are merged: the URL's narrows the body's.
    let merged = send(&app, form("/fhir/Patient/_search?given=Porky", "family=Duck")).await;
    assert_eq!((merged.status, &merged.body["total"]), (StatusCode::OK, &json!(0)), "{}", merged.text);
    let both = send(&app, form("/fhir/Patient/_search?family=Duck", "given=Daffy")).await;
    assert_eq!(both.body["total"], 1, "{}", both.text);

    // Lenient, when asked: the dropped parameter is named by position, the applied ones by
    // name, and the self link repeats the search as applied.
    let lenient = Request::get("/fhir/Patient?family=Duck&shoe-size=42")
        .header("prefer", "handling=lenient")
        .body(Body::empty())
        .expect("req");
    let lenient = send(&app, lenient).await;
    assert_eq!(lenient.status, StatusCode::OK, "{}", lenient.text);
    assert_eq!(lenient.body["total"], 1);
    let outcome = &lenient.body["entry"][1];
    assert_eq!(outcome["search"]["mode"], "outcome");
    let diagnostics = outcome["resource"]["issue"][0]["diagnostics"].as_str().expect("text");
    assert!(diagnostics.contains("positions 2") && diagnostics.contains("applied: family"), "{diagnostics}");
    assert!(!diagnostics.contains("shoe-size") && !diagnostics.contains("Duck"), "{diagnostics}");
    let links = lenient.body["link"].as_array().expect("links");
    let self_link = links.iter().find(|l| l["relation"] == "self").expect("self")["url"].as_str().expect("url");
    assert!(!self_link.contains("Duck") && !self_link.contains("shoe"), "sealed: {self_link}");
    let again = send(&app, get(self_link.trim_start_matches(BASE))).await;
    assert_eq!(again.status, StatusCode::OK, "the self link is a strict-clean search: {}", again.text);
    assert_eq!(again.body["total"], 1);
    assert_eq!(again.body["entry"].as_array().expect("entries").len(), 1, "no outcome: nothing was dropped");
}

#[tokio::test]
async fn paging_links_are_opaque_and_carry_no_search_values() {
    let (app, _db) = app().await;
    for _ in 0..5 {
        send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    }
    let page1 = send(&app, get("/fhir/Patient?family=Duck&_count=2")).await;
    assert_eq!(page1.body["total"], 5);
    assert_eq!(page1.body["entry"].as_array().expect("entries").len(), 2);
    let links = page1.body["link"].as_array().expect("links");
    for link in links {
        let url = link["url"].as_str().expect("url");
        assert!(!url.contains("Duck") && !url.contains("family"), "{url}");
    }
    let next = links.iter().find(|l| l["relation"] == "next").expect("next")["url"]
        .as_str()
        .expect("url")
        .trim_start_matches(BASE)
        .to_owned();
    let page2 = send(&app, get(&next)).await;
    assert_eq!(page2.status, StatusCode::OK);
    assert_eq!(page2.body["entry"].as_array().expect("entries").len(), 2);
    assert_ne!(page2.body["entry"][0]["resource"]["id"], page1.body["entry"][0]["resource"]["id"]);
    // A cursor is bound to its resource type.
    let misdirected = next.replace("/fhir/Patient?", "/fhir/Observation?");
    assert_eq!(send(&app, get(&misdirected)).await.status, StatusCode::BAD_REQUEST);
    // POST _search keeps values out of the URL entirely.
    let form = Request::post("/fhir/Patient/_search")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("family=Duck&_count=1"))
        .expect("req");
    let posted = send(&app, form).await;
    assert_eq!(posted.body["total"], 5);
}

#[tokio::test]
async fn transaction_with_one_bad_entry_writes_nothing() {
    let (app, _db) = app().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8c6f6a7e-0000-4000-8000-000000000001", "resource": daffy(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:8c6f6a7e-0000-4000-8000-000000000001"}}, "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Observation", "status": "not-a-status"}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let refused = send(&app, with_json("POST", "/fhir", &bundle, &[])).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("entry 2"), "{}", refused.text);
    assert_eq!(send(&app, get("/fhir/Patient")).await.body["total"], 0);
    assert_eq!(send(&app, get("/fhir/Observation")).await.body["total"], 0);

    let mut good = bundle.clone();
    good["entry"].as_array_mut().expect("entries").pop();
    let accepted = send(&app, with_json("POST", "/fhir", &good, &[])).await;
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(accepted.body["type"], "transaction-response");
    assert_eq!(accepted.body["entry"][1]["response"]["status"], "201 Created");
    let observations = send(&app, get("/fhir/Observation")).await;
    let subject = observations.body["entry"][0]["resource"]["subject"]["reference"].as_str().expect("ref").to_owned();
    assert!(subject.starts_with("Patient/") && !subject.contains("urn:uuid"));
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let (app, _db) = app().await;
    for uri in ["/healthz", "/readyz", "/fhir/metadata", "/fhir/Patient", "/nowhere"] {
        let reply = send(&app, get(uri)).await;
        assert_eq!(reply.headers["strict-transport-security"], "max-age=31536000; includeSubDomains", "{uri}");
        assert!(
            reply.headers["content-security-policy"].to_str().expect("csp").starts_with("default-src 'self'"),
            "{uri}"
        );
        assert_eq!(reply.headers["x-content-type-options"], "nosniff");
        assert_eq!(reply.headers["x-frame-options"], "DENY");
        assert_eq!(reply.headers["referrer-policy"], "strict-origin-when-cross-origin");
        assert_eq!(reply.headers["cache-control"], "no-store");
        assert!(reply.headers.contains_key("x-request-id"));
    }
    let metadata = send(&app, get("/fhir/metadata")).await;
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");
    let patient = metadata.body["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient")
        .clone();
    assert!(patient["searchParam"].as_array().expect("params").iter().any(|p| p["name"] == "birthdate"));
    assert!(
        !patient["interaction"].as_array().expect("interactions").iter().any(|i| i["code"] == "delete"),
        "no delete is advertised"
    );
}

/// A Bundle sent over the API holds at most 10,000 entries: a bigger one is refused before
/// any entry is looked at or written (before it is even parsed into memory: its entries are
/// counted on the bytes), with a message that says to split it.
#[tokio::test]
async fn a_bundle_over_the_entry_limit_is_refused_whole() {
    let (app, _db) = app_with_limit(8 * 1024 * 1024).await;
    let entry = json!({"resource": {"resourceType": "Organization", "name": "Acme (fake)"},
        "request": {"method": "POST", "url": "Organization"}});
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": vec![entry; 10_001]});
    let r = send(&app, with_json("POST", "/fhir", &bundle, &[])).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", &r.text[..r.text.len().min(300)]);
    assert!(r.text.contains("at most 10000 entries; this one has 10001"), "{}", r.text);
    // The same, hidden behind a repeated `entry` key (the parse keeps the last, empty one).
    let entries = serde_json::to_string(&bundle["entry"]).expect("json");
    let sneaky = format!("{{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":{entries},\"entry\":[]}}");
    let request =
        Request::post("/fhir").header("content-type", "application/fhir+json").body(Body::from(sneaky)).expect("req");
    let r = send(&app, request).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", &r.text[..r.text.len().min(300)]);
    // Or behind a body that breaks after the array: refused as not JSON, from the counting pass.
    let broken = r#"{"resourceType":"Bundle","type":"batch","entry":[{}],"x":"#.to_owned();
    let request =
        Request::post("/fhir").header("content-type", "application/fhir+json").body(Body::from(broken)).expect("req");
    let r = send(&app, request).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("not valid JSON"), "{}", r.text);
    let raw = phivault_testkit::raw_pool(&app.url).await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE resource_type = 'Organization'")
        .fetch_one(&raw)
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing was written");
}

/// Incremental sync: `_since` returns only the versions written since, `_at` the version
/// current at that moment, and malformed or unknown history parameters are refused
/// instead of silently returning every version.
#[tokio::test]
async fn history_since_and_at_select_versions_and_garbage_is_refused() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = phivault_fhir::format_instant(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64,
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for gender in ["female", "unknown"] {
        let mut body = daffy();
        body["id"] = json!(id);
        body["gender"] = json!(gender);
        let r = send(&app, with_json("PUT", &format!("/fhir/Patient/{id}"), &body, &[])).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let versions = |reply: &common::Reply| -> Vec<String> {
        reply.body["entry"]
            .as_array()
            .map(|e| e.iter().map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    };
    let all = send(&app, get(&format!("/fhir/Patient/{id}/_history"))).await;
    assert_eq!(versions(&all), ["3", "2", "1"]);
    let since = send(&app, get(&format!("/fhir/Patient/{id}/_history?_since={between}"))).await;
    assert_eq!(since.status, StatusCode::OK, "{}", since.text);
    assert_eq!(versions(&since), ["3", "2"], "only what was written since");
    let typed = send(&app, get(&format!("/fhir/Patient/_history?_since={between}"))).await;
    assert_eq!(versions(&typed), ["3", "2"]);
    let at = send(&app, get(&format!("/fhir/Patient/{id}/_history?_at={between}"))).await;
    assert_eq!(versions(&at), ["1"], "the version current at that moment");
    let future = send(&app, get(&format!("/fhir/Patient/{id}/_history?_since=2099-01-01"))).await;
    assert_eq!(future.status, StatusCode::OK, "an empty page, not a missing resource: {}", future.text);
    assert!(versions(&future).is_empty());
    for bad in ["_since=garbage", "_since=ge2026-01-01", "_at=yesterday", "_elements=id"] {
        let r = send(&app, get(&format!("/fhir/Patient/{id}/_history?{bad}"))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    let missing =
        send(&app, get("/fhir/Patient/00000000-0000-4000-8000-000000000000/_history?_since=2020-01-01")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// `_summary=count` answers the number of matches and no resource.
#[tokio::test]
async fn summary_count_gives_the_total_and_no_resources() {
    let (app, _db) = app().await;
    for _ in 0..3 {
        assert_eq!(send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await.status, StatusCode::CREATED);
    }
    let r = send(&app, get("/fhir/Patient?family=Duck&_summary=count")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], 3, "{}", r.text);
    assert!(r.body["entry"].as_array().is_none_or(Vec::is_empty), "{}", r.text);
    assert!(!r.text.contains("Daffy"), "no resource content: {}", r.text);
}

/// FHIR decimals carry their precision: what was written is what is read back, digit for
/// digit (the review found `1.50` → `1.5` and `42.451840000000004` → `42.45184`), through a
/// create, a read, a search, a history and a transaction. (An exponent comes back with a
/// lower-case `e`: serde_json writes it so; the value and its precision are unchanged.)
#[tokio::test]
async fn decimals_come_back_exactly_as_written() {
    let (app, _db) = app().await;
    let literals = ["1.50", "0.010", "42.451840000000004", "-0.0", "3.0", "12345678901234567890.123456789", "1e+2"];
    let raw = |value: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"text":"weight"}},"valueQuantity":{{"value":{value},"unit":"kg"}}}}"#
        )
    };
    let post = |body: String| {
        Request::post("/fhir/Observation").header("content-type", "application/fhir+json").body(Body::from(body))
    };
    let mut ids = Vec::new();
    for value in literals {
        let created = send(&app, post(raw(value)).expect("req")).await;
        assert_eq!(created.status, StatusCode::CREATED, "{value}: {}", created.text);
        assert!(created.text.contains(&format!(r#""value":{value},"#)), "{value} on create: {}", created.text);
        let id = created.body["id"].as_str().expect("id").to_owned();
        let read = send(&app, get(&format!("/fhir/Observation/{id}"))).await;
        assert!(read.text.contains(&format!(r#""value":{value},"#)), "{value} on read: {}", read.text);
        let history = send(&app, get(&format!("/fhir/Observation/{id}/_history"))).await;
        assert!(history.text.contains(&format!(r#""value":{value},"#)), "{value} in history");
        ids.push(id);
    }
    let all = send(&app, get("/fhir/Observation?_count=50")).await;
    for value in literals {
        assert!(all.text.contains(&format!(r#""value":{value},"#)), "{value} in a search: {}", all.text);
    }
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"transaction","entry":[{{"resource":{},"request":{{"method":"POST","url":"Observation"}}}}]}}"#,
        raw("0.0100")
    );
    let request = Request::post("/fhir").header("content-type", "application/fhir+json").body(Body::from(bundle));
    let done = send(&app, request.expect("req")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let location = done.body["entry"][0]["response"]["location"].as_str().expect("location");
    let id = location.split('/').nth(1).expect("id");
    let read = send(&app, get(&format!("/fhir/Observation/{id}"))).await;
    assert!(read.text.contains(r#""value":0.0100,"#), "in a transaction: {}", read.text);
}

/// A browser SMART app on a listed origin: its preflight is answered before any token is
/// looked at, and it may read the responses; a page on any other origin gets no permission
/// (the browser then withholds the response), nor do the sign-in and administration pages;
/// no origin is ever allowed to send cookies.
#[tokio::test]
async fn cors_lets_listed_browser_apps_call_the_api_and_no_one_else() {
    let (app, _db) = app().await;
    let preflight = |origin: &str, uri: &str| {
        Request::options(uri)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .expect("req")
    };
    let listed = common::send_as_is(&app.router, preflight(common::APP_ORIGIN, "/fhir/Patient")).await;
    assert_eq!(listed.status, StatusCode::NO_CONTENT, "no token needed for a preflight: {}", listed.text);
    assert_eq!(listed.headers["access-control-allow-origin"], common::APP_ORIGIN);
    assert!(listed.headers["access-control-allow-headers"].to_str().expect("h").contains("authorization"));
    assert!(!listed.headers.contains_key("access-control-allow-credentials"), "never cookies");
    let token = common::send_as_is(&app.router, preflight(common::APP_ORIGIN, "/oauth/token")).await;
    assert_eq!(token.headers["access-control-allow-origin"], common::APP_ORIGIN, "the token endpoint too");

    for (origin, uri) in [
        ("https://evil.example", "/fhir/Patient"),
        ("https://app.example.evil.example", "/fhir/Patient"),
        ("null", "/fhir/Patient"),
        (common::APP_ORIGIN, "/admin/users"),
        (common::APP_ORIGIN, "/login"),
    ] {
        let refused = common::send_as_is(&app.router, preflight(origin, uri)).await;
        assert!(!refused.headers.contains_key("access-control-allow-origin"), "{origin} {uri}: {:?}", refused.headers);
    }

    // The actual request: the listed origin may read it (and its ETag, Location); another may not.
    send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let mut read = get("/fhir/Patient?family=Duck");
    read.headers_mut().insert("origin", common::APP_ORIGIN.parse().expect("origin"));
    let allowed = send(&app, read).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.headers["access-control-allow-origin"], common::APP_ORIGIN);
    assert!(allowed.headers["access-control-expose-headers"].to_str().expect("h").contains("etag"));
    let mut other = get("/fhir/Patient?family=Duck");
    other.headers_mut().insert("origin", "https://evil.example".parse().expect("origin"));
    let other = send(&app, other).await;
    assert!(!other.headers.contains_key("access-control-allow-origin"), "{:?}", other.headers);
    assert!(other.headers.get_all("vary").iter().any(|v| v == "origin"), "caches keep origins apart");
}

/// The review's transaction cases: a reference equal to another entry's absolute fullUrl, and
/// a relative reference under an absolute fullUrl, point at the entry's stored record (they
/// used to be stored unrewritten and dangle); two entries with one fullUrl are refused (bdl-7).
#[tokio::test]
async fn transaction_references_to_absolute_full_urls_resolve_and_duplicates_are_refused() {
    let (app, _db) = app().await;
    let base = "http://example.org/fhir";
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Duck", "given": ["Daffy"]}]});
    let obs = |subject: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": subject}})
    };
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": format!("{base}/Patient/abc"), "resource": patient, "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": format!("{base}/Observation/o1"), "resource": obs(&format!("{base}/Patient/abc")),
            "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": format!("{base}/Observation/o2"), "resource": obs("Patient/abc"),
            "request": {"method": "POST", "url": "Observation"}}]});
    let done = send(&app, with_json("POST", "/fhir", &bundle, &[])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let location = |i: usize| done.body["entry"][i]["response"]["location"].as_str().expect("location").to_owned();
    let patient_ref = location(0).split("/_history").next().expect("ref").to_owned();
    for i in [1, 2] {
        let id = location(i).split('/').nth(1).expect("id").to_owned();
        let read = send(&app, get(&format!("/fhir/Observation/{id}"))).await;
        assert_eq!(read.body["subject"]["reference"], patient_ref, "entry {i}: {}", read.text);
    }

    let twice = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8c1f0a5e-0000-4000-8000-000000000001", "resource": obs("Patient/x"), "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:8c1f0a5e-0000-4000-8000-000000000001", "resource": obs("Patient/x"), "request": {"method": "POST", "url": "Observation"}}]});
    let refused = send(&app, with_json("POST", "/fhir", &twice, &[])).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.text.contains("entry 1") && refused.text.contains("bdl-7"), "{}", refused.text);
}

/// XML is not served: a client asking for it (by `_format` or `Accept`) gets 406 with an
/// OperationOutcome, not JSON under a 200 it would fail to parse; JSON in any spelling works.
#[tokio::test]
async fn a_client_asking_for_xml_gets_406_and_json_is_served_in_every_spelling() {
    let (app, _db) = app().await;
    let with_accept = |uri: &str, accept: &str| {
        let mut request = get(uri);
        request.headers_mut().insert("accept", accept.parse().expect("accept"));
        request
    };
    for request in [
        get("/fhir/Patient?_format=xml"),
        get("/fhir/Patient?_format=application/fhir%2Bxml"),
        with_accept("/fhir/Patient", "application/fhir+xml"),
        with_accept("/fhir/Patient", "application/xml;q=0.9, text/xml"),
    ] {
        let refused = send(&app, request).await;
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE, "{}", refused.text);
        assert_eq!(refused.body["resourceType"], "OperationOutcome");
    }
    for request in [
        get("/fhir/Patient?_format=json"),
        get("/fhir/Patient?_format=application/fhir%2Bjson"),
        with_accept("/fhir/Patient", "application/fhir+json"),
        with_accept("/fhir/Patient", "application/xml, application/json;q=0.5"),
        with_accept("/fhir/Patient", "*/*"),
        get("/fhir/Patient"),
    ] {
        let served = send(&app, request).await;
        assert_eq!(served.status, StatusCode::OK, "{}", served.text);
    }
}

/// `POST /fhir/` (fhir-kit-client's `transaction()` sends the trailing slash) is the same
/// endpoint as `POST /fhir`.
#[tokio::test]
async fn a_bundle_posted_to_the_base_with_a_trailing_slash_is_processed() {
    let (app, _db) = app().await;
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": daffy(), "request": {"method": "POST", "url": "Patient"}}]});
    let done = send(&app, with_json("POST", "/fhir/", &bundle, &[])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.body["type"], "batch-response");
}

/// Interactions that do not exist answer 405 with the methods the endpoint takes (they were
/// 403, which reads as "not allowed for you"), after authentication as every FHIR request.
#[tokio::test]
async fn interactions_that_do_not_exist_answer_405_with_allow() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let post_instance = send(&app, with_json("POST", &format!("/fhir/Patient/{id}"), &daffy(), &[])).await;
    assert_eq!(post_instance.status, StatusCode::METHOD_NOT_ALLOWED, "{}", post_instance.text);
    assert_eq!(post_instance.headers["allow"], "GET, PUT");
    assert_eq!(post_instance.body["resourceType"], "OperationOutcome");
    let put_type = send(&app, with_json("PUT", "/fhir/Patient", &daffy(), &[])).await;
    assert_eq!(put_type.status, StatusCode::METHOD_NOT_ALLOWED, "{}", put_type.text);
    assert_eq!(put_type.headers["allow"], "GET, POST");
    let anonymous = common::send_as_is(&app.router, with_json("PUT", "/fhir/Patient", &daffy(), &[])).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "authentication first");
}

/// `_elements` and `_summary=text|data` on a search and a read: only what was named (with
/// `id` and `meta`), marked SUBSETTED; such a view cannot be written back as the record, and
/// `_summary=true` (which needs R4's summary flags) is refused rather than answered in full.
#[tokio::test]
async fn elements_and_summary_return_marked_subsets_that_cannot_be_written_back() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let found = send(&app, get("/fhir/Patient?family=Duck&_elements=birthDate")).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let resource = &found.body["entry"][0]["resource"];
    assert!(resource.get("name").is_none() && resource.get("identifier").is_none(), "{resource}");
    assert_eq!(resource["id"], id.as_str());
    assert_eq!(resource["meta"]["tag"][0]["code"], "SUBSETTED");
    let read = send(&app, get(&format!("/fhir/Patient/{id}?_summary=data"))).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(read.body.get("name").is_some() && read.body.get("text").is_none());
    let subset = send(&app, get(&format!("/fhir/Patient/{id}?_elements=gender"))).await;
    let etag = subset.headers["etag"].to_str().expect("etag").to_owned();
    let written =
        send(&app, with_json("PUT", &format!("/fhir/Patient/{id}"), &subset.body, &[("if-match", &etag)])).await;
    assert_eq!(written.status, StatusCode::BAD_REQUEST, "{}", written.text);
    let whole = send(&app, get(&format!("/fhir/Patient/{id}"))).await;
    assert_eq!(whole.body["name"][0]["family"], "Duck", "nothing was lost");
    assert!(whole.body["meta"].get("tag").is_none());
    let refused = send(&app, get("/fhir/Patient?family=Duck&_summary=true")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    // History the same way.
    let history = send(&app, get(&format!("/fhir/Patient/{id}/_history?_summary=text"))).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert!(history.body["entry"][0]["resource"].get("name").is_none(), "{}", history.text);
    let refused = send(&app, get(&format!("/fhir/Patient/{id}/_history?_summary=true"))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
}

/// Birth dates searched at the precision people know them: the year, the month, the day, and
/// a birth date recorded to the month only. (Not yet: a day-precision `ge`/`lt` against a
/// month-only birth date in that month, which needs a precision marker in the index terms.)
#[tokio::test]
async fn birthdate_search_matches_at_year_month_and_day_precision() {
    let (app, _db) = app().await;
    send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    // A birth date recorded to the month only (R4 allows it).
    let mut porky = daffy();
    porky["birthDate"] = json!("2001-07");
    porky["identifier"] = json!([{"system": "urn:mrn", "value": "987654321"}]);
    send(&app, with_json("POST", "/fhir/Patient", &porky, &[])).await;
    for (query, expected) in [
        ("birthdate=2001-07", 1),
        ("birthdate=2001", 1),
        ("birthdate=2001-07-15", 0),
        ("birthdate=lt2001-01-01", 1),
        ("birthdate=1937", 1),
        ("birthdate=1937-04", 1),
        ("birthdate=1937-04-17", 1),
        ("birthdate=1937-05", 0),
        ("birthdate=1937-04-18", 0),
    ] {
        let found = send(&app, get(&format!("/fhir/Patient?{query}"))).await;
        assert_eq!(found.status, StatusCode::OK, "{query}: {}", found.text);
        assert_eq!(found.body["total"], expected, "{query}");
    }
}

/// Conditional read: `If-None-Match` with the current version, or `If-Modified-Since` at or
/// after the last change, answers 304 with no body (and the validators); anything else, a
/// malformed date included, the resource.
#[tokio::test]
async fn a_conditional_read_answers_304_only_for_a_current_copy() {
    let (app, _db) = app().await;
    let created = send(&app, with_json("POST", "/fhir/Patient", &daffy(), &[])).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let read = |headers: Vec<(&'static str, String)>| {
        let mut request = get(&format!("/fhir/Patient/{id}"));
        for (name, value) in headers {
            request.headers_mut().insert(name, value.parse().expect("header"));
        }
        request
    };
    let first = send(&app, read(vec![])).await;
    let modified = common::header(&first, "last-modified");
    assert_eq!(common::header(&first, "etag"), "W/\"1\"");
    let same = send(&app, read(vec![("if-none-match", "W/\"1\"".into())])).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert!(same.text.is_empty() && common::header(&same, "etag") == "W/\"1\"", "{}", same.text);
    let listed = send(&app, read(vec![("if-none-match", "W/\"7\", \"1\"".into())])).await;
    assert_eq!(listed.status, StatusCode::NOT_MODIFIED, "any tag of a list, strong or weak");
    assert_eq!(send(&app, read(vec![("if-modified-since", modified.clone())])).await.status, StatusCode::NOT_MODIFIED);
    for stale in [
        ("if-none-match", "W/\"2\"".to_owned()),
        ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT".to_owned()),
        ("if-modified-since", "yesterday".to_owned()),
    ] {
        let reply = send(&app, read(vec![stale.clone()])).await;
        assert_eq!(reply.status, StatusCode::OK, "{stale:?}");
        assert_eq!(reply.body["id"], id.as_str());
    }
    // A trimmed copy is never confirmed as current: the tag is the whole version's.
    let mut trimmed = get(&format!("/fhir/Patient/{id}?_elements=gender"));
    trimmed.headers_mut().insert("if-none-match", "W/\"1\"".parse().expect("header"));
    assert_eq!(send(&app, trimmed).await.status, StatusCode::OK);
    // If-None-Match decides when both are sent.
    let both = send(&app, read(vec![("if-none-match", "W/\"9\"".into()), ("if-modified-since", modified)])).await;
    assert_eq!(both.status, StatusCode::OK);
    // A new version: the old tag no longer matches.
    let mut changed = daffy();
    changed["id"] = json!(id);
    changed["gender"] = json!("male");
    let put = send(&app, with_json("PUT", &format!("/fhir/Patient/{id}"), &changed, &[])).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(send(&app, read(vec![("if-none-match", "W/\"1\"".into())])).await.status, StatusCode::OK);
}
