//! Break-glass end to end through `phivault serve`: a nurse with no relationship is
//! refused, asks for emergency access, reads the patient, and the privacy officer's notice
//! arrives at a local SMTP sink. Then the policy directory is changed under the running
//! server: a broken file is refused and the last good set stays in force; a valid change
//! takes effect.

mod common;

use common::{Server, phivault};

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One HTTPS request on a fresh connection: (status, head, body).
async fn https(port: u16, cert: &[u8], method: &str, path: &str, token: &str, body: &str) -> (u16, String, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cert).expect("pem")).expect("root");
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let tls = connector.connect(ServerName::try_from("127.0.0.1").expect("name"), tcp).await.expect("handshake");
    let mut stream = BufReader::new(tls);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(request.as_bytes()).await.expect("write");
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("read");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
        head.push_str(&line);
    }
    let mut bytes = vec![0u8; length];
    stream.read_exact(&mut bytes).await.expect("body");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head, String::from_utf8_lossy(&bytes).into_owned())
}

/// A local SMTP sink: accepts messages and sends each DATA to `tx`.
async fn smtp_sink(listener: tokio::net::TcpListener, tx: tokio::sync::mpsc::UnboundedSender<String>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let _ = write.write_all(b"220 sink ESMTP\r\n").await;
            let (mut data, mut in_data) = (String::new(), false);
            loop {
                let mut line = String::new();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        let _ = tx.send(std::mem::take(&mut data));
                        let _ = write.write_all(b"250 queued\r\n").await;
                    } else {
                        data.push_str(&line);
                    }
                    continue;
                }
                let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "EHLO" | "HELO" => b"250 sink\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = write.write_all(reply).await;
            }
        });
    }
}

/// A syslog collector: reads each connection to its end, then closes (which is how the
/// shipper learns the batch arrived), and passes on what it read.
async fn syslog_sink(listener: tokio::net::TcpListener, tx: tokio::sync::mpsc::UnboundedSender<String>) {
    use tokio::io::AsyncReadExt;
    while let Ok((mut socket, _)) = listener.accept().await {
        let mut bytes = Vec::new();
        if socket.read_to_end(&mut bytes).await.is_ok() {
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

#[test]
fn break_glass_through_the_server_notifies_by_mail_and_policy_reloads_keep_the_last_good_set() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    assert!(phivault(&data, &["init", "--insecure-dev-keys"]).status.success());
    let bundle = tmp.path().join("daffy.json");
    let fake = phivault_demo::fake_patient_bundles().into_iter().next().expect("bundle");
    std::fs::write(&bundle, fake.to_string()).expect("bundle");
    assert!(phivault(&data, &["import", bundle.to_str().expect("utf8")]).status.success());

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("smtp port");
    let smtp_port = listener.local_addr().expect("addr").port();
    let (tx, mut mail) = tokio::sync::mpsc::unbounded_channel();
    runtime.spawn(smtp_sink(listener, tx));

    // The relay and a fast policy reload, set the way an operator edits phivault.toml.
    let config_path = data.join("phivault.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path).expect("config").parse().expect("toml");
    let mut notify = toml::Table::new();
    notify.insert("smtp_relay".into(), format!("smtp://127.0.0.1:{smtp_port}").into());
    notify.insert("from".into(), "phivault@clinic.example".into());
    notify.insert("privacy_officer".into(), "privacy@clinic.example".into());
    config.insert("notify".into(), notify.into());
    let policy = config.entry("policy").or_insert_with(|| toml::Table::new().into());
    policy.as_table_mut().expect("table").insert("reload_interval_secs".into(), 1.into());
    // The activity review every second, and the trail shipped to a syslog collector.
    let syslog = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("syslog port");
    let syslog_port = syslog.local_addr().expect("addr").port();
    let (syslog_tx, mut shipped) = tokio::sync::mpsc::unbounded_channel();
    runtime.spawn(syslog_sink(syslog, syslog_tx));
    let mut review = toml::Table::new();
    review.insert("alert_interval_secs".into(), 1.into());
    config.insert("review".into(), review.into());
    let audit = config.entry("audit").or_insert_with(|| toml::Table::new().into());
    let audit = audit.as_table_mut().expect("table");
    audit.insert("syslog_target".into(), format!("tcp://127.0.0.1:{syslog_port}").into());
    audit.insert("ship_interval_secs".into(), 1.into());
    audit.insert("checkpoint_interval_secs".into(), 1.into());
    std::fs::write(&config_path, config.to_string()).expect("config");

    let url = format!("sqlite://{}", data.join("phivault.db").display());
    let (nurse, patient) = runtime.block_on(async {
        let store = phivault_store::SqlStore::connect(&url).await.expect("store");
        let key_file = phivault_crypto::KeyFile::open(&data.join("keys.json"), phivault_crypto::Unlock::Nothing)
            .expect("key file");
        let identity = phivault_testkit::system_identity(store.clone(), key_file.ring().clone());
        let token =
            phivault_testkit::signed_in(&identity, "nurse-tweety", vec![phivault_identity::Role::Nurse], None).await;
        let patient: String = sqlx::query_scalar("SELECT id FROM resources WHERE resource_type = 'Patient' LIMIT 1")
            .fetch_one(&sqlx::SqlitePool::connect(&url).await.expect("raw"))
            .await
            .expect("patient");
        store.close().await;
        (token.expose().to_owned(), patient)
    });

    let server = Server::start(&data);
    let port = server.port;
    let cert = std::fs::read(data.join("tls/cert.pem")).expect("cert");
    let read = format!("/fhir/Patient/{patient}");
    runtime.block_on(async {
        assert_eq!(https(port, &cert, "GET", &read, &nurse, "").await.0, 403, "no relationship");
        let ask = format!(
            r#"{{"patient": "{patient}", "reason": "emergency-treatment", "note": "Collapsed at reception, no ID card"}}"#
        );
        let (status, _, body) = https(port, &cert, "POST", "/access/break-glass", &nurse, &ask).await;
        assert_eq!(status, 201, "{body}");
        let (status, head, _) = https(port, &cert, "GET", &read, &nurse, "").await;
        assert_eq!(status, 200);
        assert!(head.to_ascii_lowercase().contains("x-phivault-break-glass: active"), "{head}");
        // Two messages: the break-glass notice, and the activity review's alert on it.
        let (mut notice, mut alert) = (None, None);
        while notice.is_none() || alert.is_none() {
            let message = tokio::time::timeout(Duration::from_secs(20), mail.recv()).await.expect("mail in time");
            let message = message.expect("a message");
            if message.contains("phivault alert: break_glass") {
                alert = Some(message);
            } else {
                notice = Some(message);
            }
        }
        let (notice, alert) = (notice.expect("notice"), alert.expect("alert"));
        assert!(notice.contains("To: privacy@clinic.example"), "{notice}");
        assert!(notice.contains(&patient) && notice.contains("emergency-treatment"), "{notice}");
        for message in [&notice, &alert] {
            assert!(!message.contains("reception"), "the note stays behind sign-in: {message}");
        }
        assert!(alert.contains(&patient) && alert.contains("Account: user-"), "{alert}");
        // The collector receives the trail, start event and break-glass request included.
        let mut received = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(received.contains(" audit.start ")
            && received.contains(" break_glass.request ")
            && received.contains(" audit.checkpoint "))
        {
            assert!(Instant::now() < deadline, "the trail never reached the collector: {received}");
            if let Ok(Some(bytes)) = tokio::time::timeout(Duration::from_secs(2), shipped.recv()).await {
                received.push_str(&bytes);
            }
        }
        assert!(!received.contains("reception") && !received.contains("Collapsed"), "no note in the trail");

        // A broken policy file: refused, and the last good set stays in force.
        let extra = data.join("policy/zz-extra.cedar");
        std::fs::write(&extra, "@id(\"broken\")\nforbid (principal, action, resource) when { nonsense };\n")
            .expect("broken policy");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(https(port, &cert, "GET", &read, &nurse, "").await.0, 200, "the last good set stays");
        // A valid change takes effect: nurses frozen out (of break-glass too, so the chart
        // they could read a moment ago now answers as if it did not exist).
        std::fs::write(
            &extra,
            "@id(\"test-freeze-nurses\")\nforbid (principal in PhiVault::Role::\"nurse\", action, resource);\n",
        )
        .expect("policy");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if https(port, &cert, "GET", &read, &nurse, "").await.0 == 404 {
                break;
            }
            assert!(Instant::now() < deadline, "the valid change never took effect");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let search = phivault(&data, &["audit", "search", "--action", "policy.reload"]);
    let found = String::from_utf8_lossy(&search.stdout).into_owned();
    assert!(found.contains("\"failure\"") && found.contains("\"success\""), "both reloads are audited: {found}");
    assert!(found.contains("system:phivault") && !found.contains("os:"), "the server reloaded, not a console: {found}");
    let started = phivault(&data, &["audit", "search", "--action", "audit.start"]);
    let started = String::from_utf8_lossy(&started.stdout).into_owned();
    assert!(started.contains("config=sha256:"), "the start names the configuration: {started}");
}
