//! Bundles and page cursors, through a record service on a real (temporary) SQLite store:
//! what a client sends reaches the same code the API runs.

use std::sync::OnceLock;

use phivault_service::Records;
use phivault_testkit::TestDb;
use serde_json::Value;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    records: Records,
    _db: TestDb,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (store, db, _) = runtime.block_on(phivault_testkit::fresh_store("sqlite"));
        Fixture { records: phivault_testkit::records(store), runtime, _db: db }
    })
}

/// A batch or transaction Bundle, processed (and, when valid, stored).
pub fn fhir_bundle(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let f = fixture();
    let _ = f.runtime.block_on(f.records.process_bundle(body));
}

/// A next-page link as a client sends it back, and a cursor sealed from the input's
/// query: it opens to exactly what was sealed, and not once a byte of it is changed.
pub fn page_cursor(data: &[u8]) {
    let f = fixture();
    let (token, rest) = crate::split_nul(data);
    if let Ok(token) = std::str::from_utf8(token) {
        assert!(f.records.open_page_cursor("Patient", token).is_err(), "a cursor nobody sealed opened");
    }
    let Some(rest) = rest else { return };
    let Ok(query) = std::str::from_utf8(rest) else { return };
    let pairs = phivault_fhir::parse_query_string(query);
    let offset = u64::try_from(rest.len()).unwrap_or(0);
    let sealed = f.records.seal_page_cursor("Observation", &pairs, offset).expect("seal");
    let opened = f.records.open_page_cursor("Observation", &sealed).expect("open");
    assert_eq!((opened.query, opened.offset), (pairs, offset));
    assert!(f.records.open_page_cursor("Patient", &sealed).is_err(), "a cursor opened for another target");
    let mut altered = sealed.into_bytes();
    let at = usize::from(data[0]) % altered.len();
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    if let Ok(altered) = String::from_utf8(altered) {
        assert!(f.records.open_page_cursor("Observation", &altered).is_err(), "an altered cursor opened");
    }
}
