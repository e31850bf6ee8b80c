//! HTTPS read by id through the real TLS listener over keep-alive client connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use phivault_api::listener::{ConnectionLimits, serve_tls};
use phivault_api::{ApiConfig, AppState};
use phivault_service::access::GuardedRecords;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Process CPU seconds so far (user + system), from /proc/self/stat.
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the stat line (11 and 12 after the command).
    (ticks(11) + ticks(12)) / 100.0
}

/// The client side of one keep-alive connection to [`Server`].
pub(crate) type Connection = BufReader<tokio_rustls::client::TlsStream<TcpStream>>;

/// The real TLS listener serving the API on a loopback port, and a client config trusting
/// its self-signed certificate.
pub(crate) struct Server {
    addr: std::net::SocketAddr,
    connector: tokio_rustls::TlsConnector,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start(
        records: GuardedRecords,
        identity: phivault_identity::Identity,
        audit: phivault_audit::AuditLog,
        alerts: Arc<dyn phivault_audit::alerts::AlertStore>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
        std::fs::write(dir.path().join("c.pem"), certified.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("k.pem"), certified.signing_key.serialize_pem()).expect("key");
        let tls = phivault_api::tls::server_config(&dir.path().join("c.pem"), &dir.path().join("k.pem")).expect("tls");
        let state = AppState {
            records,
            identity,
            audit,
            notifier: None,
            alerts,
            exports: None,
            config: Arc::new(ApiConfig {
                base_url: "https://127.0.0.1".into(),
                max_body_bytes: 1 << 20,
                request_timeout: Duration::from_secs(30),
                trusted_proxies: vec![],
                zones: phivault_policy::Zones::default(),
                cors_origins: Vec::new(),
                local_offset_minutes: 0,
            }),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task =
            tokio::spawn(serve_tls(listener, tls, phivault_api::router(state), ConnectionLimits::default(), async {
                let _ = stopped.await;
            }));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(certified.cert.pem().as_bytes()).expect("pem")).expect("root");
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Self { addr, connector: tokio_rustls::TlsConnector::from(Arc::new(config)), stop, task }
    }

    /// A new keep-alive connection, TLS handshake done.
    pub(crate) async fn connect(&self) -> Connection {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        BufReader::new(self.connector.connect(name, tcp).await.expect("handshake"))
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// `GET /fhir/Patient/{id}` on `stream`; panics unless the answer is 200.
pub(crate) async fn get_patient(stream: &mut Connection, id: &str, token: &str) {
    let request =
        format!("GET /fhir/Patient/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    exchange(stream, &request).await;
}

/// Sends `request` (a whole HTTP/1.1 request) on `stream` and reads the answer; panics
/// unless it is 200. The body's length.
pub(crate) async fn exchange(stream: &mut Connection, request: &str) -> usize {
    stream.get_mut().write_all(request.as_bytes()).await.expect("write");
    let mut length = 0;
    let mut status = String::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("read");
        if status.is_empty() {
            status = line.clone();
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
    }
    assert!(status.contains(" 200 "), "{status}");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("body");
    length
}

/// (mean µs latency, µs of process CPU per request) reading `ids` in turn; every read
/// must succeed.
pub async fn read_ids(
    records: GuardedRecords,
    identity: phivault_identity::Identity,
    audit: phivault_audit::AuditLog,
    alerts: Arc<dyn phivault_audit::alerts::AlertStore>,
    token: &str,
    ids: &[String],
) -> (f64, f64) {
    let server = Server::start(records, identity, audit, alerts).await;
    let mut stream = server.connect().await;
    let n = 2000;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for k in 0..n {
        get_patient(&mut stream, &ids[(k * 31) % ids.len()], token).await;
    }
    let latency = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let cpu = (cpu_seconds() - cpu_before) * 1e6 / n as f64;
    drop(stream);
    server.stop().await;
    (latency, cpu)
}

/// (mean µs latency, µs of process CPU per request), reading patients spread over `loaded`.
pub async fn read_by_id(
    records: GuardedRecords,
    identity: phivault_identity::Identity,
    audit: phivault_audit::AuditLog,
    alerts: Arc<dyn phivault_audit::alerts::AlertStore>,
    token: &str,
    loaded: usize,
) -> (f64, f64) {
    // The same 2,000 patients as before (k * 104,729 mod loaded), read in `read_ids`'s order.
    let ids: Vec<String> = (0..2000).map(|k| format!("bench-{}", (k * 104_729) % loaded)).collect();
    read_ids(records, identity, audit, alerts, token, &ids).await
}
