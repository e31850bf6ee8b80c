//! `phivault audit export` in every format and `phivault audit ship` to a syslog
//! collector over TCP and TLS, as an operator runs them.

mod common;

use common::{phivault, text};

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = phivault(data_dir, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    text(&out)
}

/// A data dir whose trail holds a few entries of obviously fake administration, one
/// of them a failure.
fn data_dir_with_entries(tmp: &Path) -> PathBuf {
    let data = tmp.join("data");
    ok(&data, &["init", "--insecure-dev-keys"]);
    ok(&data, &["user", "add", "daffy", "--name", "Dr Daffy Duck", "--roles", "physician,nurse"]);
    ok(&data, &["user", "lock", "daffy"]);
    let refused = phivault(&data, &["user", "add", "porky", "--name", "Porky Pig", "--roles", "surgeon"]);
    assert!(!refused.status.success());
    data
}

fn export(data: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["audit", "export", "--out", out.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    ok(data, &args)
}

/// `(seq, event)` of every entry, through the jsonl export.
fn entries(data: &Path, tmp: &Path, name: &str) -> Vec<(u64, Value)> {
    let out = tmp.join(name);
    export(data, &out, &["--format", "jsonl"]);
    std::fs::read_to_string(&out)
        .expect("jsonl")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("jsonl line");
            (v["seq"].as_u64().expect("seq"), v["event"].clone())
        })
        .collect()
}

#[test]
fn exports_in_every_format_agree_on_the_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_dir_with_entries(tmp.path());

    let verifier = tmp.path().join("trail.verifier");
    // `init`'s entry, two user commands and one refused one; every export then adds its own
    // entry after what it copied.
    assert!(export(&data, &verifier, &[]).contains("exported 4 entries"));
    let stored: Vec<phivault_audit::StoredEntry> = std::fs::read_to_string(&verifier)
        .expect("export")
        .lines()
        .map(|l| phivault_audit::export::parse_line(l).expect("verifier line"))
        .collect();
    assert_eq!(stored.len(), 4);

    let jsonl = entries(&data, tmp.path(), "trail.jsonl");
    assert_eq!(jsonl.len(), 5);
    for ((seq, event), entry) in jsonl.iter().zip(&stored) {
        assert_eq!(*seq, entry.seq);
        assert_eq!(event.to_string().as_bytes(), entry.bytes, "jsonl carries the canonical entry");
    }
    let actions: Vec<&str> = jsonl.iter().map(|(_, e)| e["action"].as_str().expect("action")).collect();
    assert_eq!(
        actions,
        ["cli.init.bootstrap_admin", "cli.user.add", "cli.user.lock", "cli.user.add", "cli.audit.export"]
    );
    assert_eq!(jsonl[4].1["reason"], "4 entries, format verifier", "the export is itself recorded");

    let ndjson = tmp.path().join("trail.ndjson");
    assert!(export(&data, &ndjson, &["--format", "fhir-ndjson"]).contains("exported 6 entries"));
    let resources: Vec<Value> = std::fs::read_to_string(&ndjson)
        .expect("ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect();
    assert_eq!(resources.len(), 6);
    for (resource, (seq, event)) in resources.iter().zip(&jsonl) {
        assert_eq!(resource["resourceType"], "AuditEvent");
        assert_eq!(resource["id"], format!("audit-{seq}"));
        assert_eq!(resource["subtype"][0]["code"], event["action"]);
        assert_eq!(resource["agent"][0]["who"]["identifier"]["value"], event["user_id"]);
    }
    assert_eq!(resources[3]["outcome"], "8", "the refused command failed");

    let bundle_file = tmp.path().join("trail.bundle.json");
    assert!(export(&data, &bundle_file, &["--format", "fhir-bundle"]).contains("exported 7 entries"));
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&bundle_file).expect("bundle")).expect("json");
    assert_eq!((&bundle["resourceType"], &bundle["type"]), (&Value::from("Bundle"), &Value::from("collection")));
    let bundled = bundle["entry"].as_array().expect("entries");
    assert_eq!(bundled.len(), 7);
    assert_eq!(bundled[3]["fullUrl"], format!("AuditEvent/audit-{}", jsonl[3].0));
    assert_eq!(bundled[3]["resource"], resources[3]);

    // Time windows select entries; the verifier format takes the whole trail only.
    let later = tmp.path().join("later.jsonl");
    assert!(export(&data, &later, &["--format", "jsonl", "--since", "2999-01-01T00:00:00Z"]).contains("exported 0"));
    let earlier = tmp.path().join("earlier.ndjson");
    let until = ["--format", "fhir-ndjson", "--until", "2999-01-01T00:00:00Z"];
    assert!(export(&data, &earlier, &until).contains("exported 9 entries"));
    let unused = tmp.path().join("unused");
    let unused = unused.to_str().expect("utf8");
    let windowed = phivault(&data, &["audit", "export", "--out", unused, "--since", "2020-01-01T00:00:00Z"]);
    assert!(!windowed.status.success() && text(&windowed).contains("the verifier needs every entry"));
    let garbled = phivault(&data, &["audit", "export", "--out", unused, "--format", "jsonl", "--since", "yesterday"]);
    assert!(text(&garbled).contains("RFC 3339"), "{}", text(&garbled));

    // Owner-only, never overwritten, nothing left behind.
    #[cfg(unix)]
    for file in [&verifier, &ndjson, &bundle_file] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let before = std::fs::read(&ndjson).expect("ndjson");
    let again = phivault(&data, &["audit", "export", "--out", ndjson.to_str().expect("utf8"), "--format", "jsonl"]);
    assert!(!again.status.success() && text(&again).contains("refusing to overwrite"), "{}", text(&again));
    assert_eq!(std::fs::read(&ndjson).expect("ndjson"), before);
    let partials = std::fs::read_dir(tmp.path()).expect("dir").filter_map(Result::ok);
    assert!(partials.map(|e| e.file_name()).all(|n| !n.to_string_lossy().ends_with(".partial")));
}

/// A syslog collector on 127.0.0.1: each connection is read to its end, then closed.
/// Returns the port and what each connection carried.
fn collector(tls: Option<Arc<rustls::ServerConfig>>) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { continue };
            let mut bytes = Vec::new();
            let read = match &tls {
                None => (&socket).read_to_end(&mut bytes),
                Some(config) => {
                    let session = rustls::ServerConnection::new(config.clone()).expect("session");
                    rustls::StreamOwned::new(session, socket).read_to_end(&mut bytes)
                }
            };
            if read.is_ok() {
                sink.lock().expect("lock").push(bytes);
            }
        }
    });
    (port, received)
}

/// The octet-counted frames in `bytes`, as messages.
fn frames(mut bytes: &[u8]) -> Vec<String> {
    let mut messages = Vec::new();
    while !bytes.is_empty() {
        let space = bytes.iter().position(|b| *b == b' ').expect("a length and a space");
        let length: usize = std::str::from_utf8(&bytes[..space]).expect("ascii").parse().expect("length");
        let message = &bytes[space + 1..space + 1 + length];
        messages.push(String::from_utf8(message.to_vec()).expect("utf8"));
        bytes = &bytes[space + 1 + length..];
    }
    messages
}

/// Checks that `messages` are the RFC 5424 forms of `expected`, in order.
fn assert_messages_match(messages: &[String], expected: &[(u64, Value)]) {
    assert_eq!(messages.len(), expected.len(), "{messages:#?}");
    for (message, (seq, event)) in messages.iter().zip(expected) {
        let fields: Vec<&str> = message.splitn(7, ' ').collect();
        let pri = if event["outcome"] == "success" { "<109>1" } else { "<108>1" };
        assert_eq!((fields[0], fields[3]), (pri, "phivault"), "{message}");
        assert_eq!(fields[5], event["action"].as_str().expect("action"), "MSGID is the action");
        let structured = format!("[phivault@32473 seq=\"{seq}\" outcome=\"{}\"", event["outcome"].as_str().expect("o"));
        assert!(fields[6].starts_with(&structured), "{message}");
        let (_, json) = fields[6].split_once("\"] ").expect("structured data, then MSG");
        assert_eq!(json, event.to_string(), "MSG is the canonical entry");
    }
}

fn cursor(data: &Path) -> String {
    std::fs::read_to_string(data.join("audit/syslog.cursor")).expect("cursor")
}

#[test]
fn ship_sends_each_entry_once_over_tcp_and_tls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = data_dir_with_entries(tmp.path());

    let (port, received) = collector(None);
    let to = format!("tcp://127.0.0.1:{port}");
    assert!(ok(&data, &["audit", "ship", "--to", &to]).contains("shipped 4 entries"));
    // Nothing new, nothing sent (not even a connection).
    assert!(ok(&data, &["audit", "ship", "--to", &to]).contains("shipped 0 entries"));
    assert_eq!(received.lock().expect("lock").len(), 1);
    // (Each export reads the trail, then records itself after it.)
    let all = entries(&data, tmp.path(), "all.jsonl");
    assert_messages_match(&frames(&received.lock().expect("lock").concat()), &all);
    assert_eq!(cursor(&data).trim(), (all[3].0 + 1).to_string());

    // Then only what is new: the export's entry and the unlock.
    ok(&data, &["user", "unlock", "daffy"]);
    assert!(ok(&data, &["audit", "ship", "--to", &to]).contains("shipped 2 entries"));
    let all = entries(&data, tmp.path(), "all-2.jsonl");
    let connections = received.lock().expect("lock").clone();
    assert_eq!(connections.len(), 2);
    assert_messages_match(&frames(&connections[1]), &all[4..]);

    // TLS, trusting only the collector's CA; a fresh cursor sends the whole trail again.
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let (cert, key, ca) =
        (tmp.path().join("collector.pem"), tmp.path().join("collector.key"), tmp.path().join("ca.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    std::fs::write(&ca, certified.cert.pem()).expect("ca");
    phivault_api::tls::install_crypto_provider();
    let (tls_port, tls_received) = collector(Some(phivault_api::tls::server_config(&cert, &key).expect("tls")));
    let tls_to = format!("tls://127.0.0.1:{tls_port}");

    let no_ca = phivault(&data, &["audit", "ship", "--to", &tls_to]);
    assert!(!no_ca.status.success() && text(&no_ca).contains("needs the CA certificate"), "{}", text(&no_ca));
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let wrong_ca = tmp.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, stranger.cert.pem()).expect("wrong ca");
    std::fs::remove_file(data.join("audit/syslog.cursor")).expect("reset the cursor");
    let untrusted = phivault(&data, &["audit", "ship", "--to", &tls_to, "--ca", wrong_ca.to_str().expect("utf8")]);
    assert!(!untrusted.status.success() && text(&untrusted).contains("TLS handshake"), "{}", text(&untrusted));
    assert!(!data.join("audit/syslog.cursor").exists(), "a refused batch does not move the cursor");

    let ca_arg = ca.to_str().expect("utf8");
    assert!(ok(&data, &["audit", "ship", "--to", &tls_to, "--ca", ca_arg]).contains("shipped 7 entries"));
    let shipped = frames(&tls_received.lock().expect("lock").concat());
    assert_eq!(shipped.len(), 7, "the six entries read above and the export that read them");
    assert_messages_match(&shipped[..all.len()], &all);
    assert!(ok(&data, &["audit", "ship", "--to", &tls_to, "--ca", ca_arg]).contains("shipped 0 entries"));
    assert_eq!(tls_received.lock().expect("lock").len(), 1, "only the accepted connection carried entries");

    // A collector that is down: the cursor stays, and the next run catches up.
    ok(&data, &["user", "lock", "daffy"]);
    let down = phivault(&data, &["audit", "ship", "--to", "tcp://127.0.0.1:1"]);
    assert!(!down.status.success() && text(&down).contains("cannot connect"), "{}", text(&down));
    assert!(ok(&data, &["audit", "ship", "--to", &to]).contains("shipped 1 entries"));
}

/// `phivault audit search ... | head`: a reader that stops early ends the listing quietly,
/// never with a panic (println! panics on a closed pipe).
#[test]
fn a_listing_piped_into_a_reader_that_stops_early_ends_quietly() {
    use std::io::Read;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    assert!(common::phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // Well over a pipe's 64 KiB of output.
    common::append_reads(&runtime, &url, 0, 2_000);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_phivault"))
        .arg("--data-dir")
        .arg(&data)
        .args(["audit", "search", "--action", "read", "--limit", "5000"])
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 16];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("the listing starts");
    // The reader is gone (dropped above): the rest of the listing meets a closed pipe.
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(first.starts_with(b"{\"seq\":"), "{}", String::from_utf8_lossy(&first));
}
