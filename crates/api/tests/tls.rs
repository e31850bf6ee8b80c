//! The real listener: TLS versions and suites, security headers over the wire, header
//! timeouts, graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use phivault_api::listener::{ConnectionLimits, serve_tls};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

struct Server {
    addr: std::net::SocketAddr,
    cert_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    _db: phivault_testkit::TestDb,
}

async fn start(header_read_timeout: Duration) -> Server {
    phivault_api::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
    let tls = phivault_api::tls::server_config(&cert_path, &key_path).expect("tls config");
    let (app, db) = common::app().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits =
        ConnectionLimits { header_read_timeout, shutdown_grace: Duration::from_secs(5), ..ConnectionLimits::default() };
    let task = tokio::spawn(serve_tls(listener, tls, app.router, limits, async {
        let _ = stopped.await;
    }));
    Server { addr, cert_pem: certified.cert.pem(), stop: Some(stop), task, _dir: dir, _db: db }
}

fn connector(server: &Server, versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).expect("pem"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn get_over_tls(
    server: &Server,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
) -> (String, rustls::ProtocolVersion, String) {
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut tls = connector(server, versions)
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("handshake");
    let (version, suite) = {
        let (_, conn) = tls.get_ref();
        (
            conn.protocol_version().expect("version"),
            format!("{:?}", conn.negotiated_cipher_suite().expect("suite").suite()),
        )
    };
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut response = String::new();
    tls.read_to_string(&mut response).await.expect("read");
    (response, version, suite)
}

#[tokio::test]
async fn serves_tls13_and_tls12_with_aead_suites_and_security_headers() {
    let server = start(Duration::from_secs(5)).await;
    let (response, version, suite) = get_over_tls(&server, &[&rustls::version::TLS13], "/healthz").await;
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    assert!(suite.contains("GCM") || suite.contains("CHACHA20"), "{suite}");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("strict-transport-security: max-age=31536000; includesubdomains"));
    assert!(lower.contains("cache-control: no-store"));

    let (response, version, suite) = get_over_tls(&server, &[&rustls::version::TLS12], "/fhir/metadata").await;
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
    assert!(suite.contains("ECDHE") && (suite.contains("GCM") || suite.contains("CHACHA20")), "{suite}");
    assert!(response.contains("CapabilityStatement"));
}

#[tokio::test]
async fn plaintext_http_on_the_tls_port_gets_nothing() {
    let server = start(Duration::from_secs(5)).await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.write_all(b"GET /fhir/Patient HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("Bundle"), "no content without TLS");
}

#[tokio::test]
async fn idle_connections_are_closed_and_shutdown_is_graceful() {
    let mut server = start(Duration::from_millis(500)).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut tls = connector(&server, &[&rustls::version::TLS13])
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("handshake");
    let mut buf = Vec::new();
    // Send no request: the header-read deadline closes the connection.
    let closed = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "idle connection was not closed");

    let _ = server.stop.take().expect("stop").send(());
    tokio::time::timeout(Duration::from_secs(10), &mut server.task).await.expect("server stopped").expect("task");
    assert!(TcpStream::connect(server.addr).await.is_err(), "listener closed after shutdown");
}

#[tokio::test]
async fn plain_http_listener_only_redirects_to_the_configured_host() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task =
        tokio::spawn(phivault_api::listener::serve_redirect(listener, "https://records.example:8443".into(), async {
            let _ = stopped.await;
        }));
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /fhir/Patient/abc?x=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
        .await
        .expect("answer")
        .expect("read");
    assert!(response.starts_with("HTTP/1.1 308"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("location: https://records.example:8443/fhir/patient/abc?x=1"), "{response}");
    assert!(!lower.contains("evil.example"), "never redirect to the client's Host header");
    assert!(response.ends_with("\r\n\r\n"), "no content over plain HTTP: {response}");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stopped").expect("task");
}
