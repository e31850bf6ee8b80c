//! Shipping the trail to a SIEM as syslog: each entry becomes one RFC 5424 message,
//! framed by octet counting (RFC 6587 §3.4.1, the framing RFC 5425 requires over TLS) and
//! sent over TCP or TLS. The message carries the entry's exact canonical bytes, so the
//! receiver can recompute its leaf hash and match it against a signed checkpoint.
//!
//! This is the one module of the crate that does network IO; [`message`] and [`frame`]
//! stay pure.
//!
//! Safeguards: 45 CFR 164.312(b) audit controls (a copy of the trail off the host);
//! 164.312(e)(1) transmission security (TLS).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fhir::{instant, node_parts};
use crate::{AuditEvent, Outcome};

/// Facility 13, "log audit" (RFC 5424 §6.2.1).
const FACILITY_LOG_AUDIT: u8 = 13;
/// The structured-data element; 32473 is the enterprise number RFC 5612 sets aside for
/// examples, used until phivault has one of its own.
pub const SD_ID: &str = "phivault@32473";
const APP_NAME: &str = "phivault";

/// Entry `seq` as one RFC 5424 message (without framing). Severity is notice for a
/// success and warning for a refusal or failure. Header fields are reduced to printable
/// US-ASCII and clipped to their RFC 5424 lengths; MSG is the canonical entry JSON, sent
/// without a BOM so its bytes are exactly the hashed ones.
pub fn message(seq: u64, event: &AuditEvent) -> String {
    let (severity, outcome) = match event.outcome {
        Outcome::Success => (5, "success"),
        Outcome::Denied => (4, "denied"),
        Outcome::Failure => (4, "failure"),
    };
    let (host, pid) = node_parts(&event.node);
    let mut sd = format!("[{SD_ID} seq=\"{seq}\" outcome=\"{outcome}\"");
    let joined = |ids: &[String]| (!ids.is_empty()).then(|| ids.join(","));
    let params = [
        ("reason", event.reason.clone()),
        ("user", event.user_id.clone()),
        ("client", event.client_id.clone()),
        ("ip", event.source_ip.clone()),
        ("patients", joined(&event.patient_ids)),
        ("request", event.request_id.clone()),
    ];
    for (name, value) in params {
        if let Some(value) = value {
            sd.push_str(&format!(" {name}=\"{}\"", param_value(&value)));
        }
    }
    sd.push(']');
    format!(
        "<{}>1 {} {} {APP_NAME} {} {} {sd} {}",
        FACILITY_LOG_AUDIT * 8 + severity,
        instant(event.time_ms),
        header_field(host, 255),
        header_field(pid.unwrap_or(""), 128),
        header_field(&event.action, 32),
        String::from_utf8_lossy(&event.canonical_bytes()),
    )
}

/// A signed checkpoint as one RFC 5424 message (MSGID `audit.checkpoint`, MSG the
/// checkpoint's JSON): the collector becomes a second witness outside the database, so a
/// rewrite of the trail behind a checkpoint shows even if the witness file is lost.
pub fn checkpoint_message(checkpoint: &crate::Checkpoint, node: &str) -> String {
    let (host, pid) = node_parts(node);
    let sd = format!(
        "[{SD_ID} size=\"{}\" root=\"{}\" key=\"{}\"]",
        checkpoint.tree_size,
        param_value(&checkpoint.root),
        param_value(&checkpoint.key_id)
    );
    format!(
        "<{}>1 {} {} {APP_NAME} {} audit.checkpoint {sd} {}",
        FACILITY_LOG_AUDIT * 8 + 5,
        instant(checkpoint.time_ms),
        header_field(host, 255),
        header_field(pid.unwrap_or(""), 128),
        serde_json::to_string(checkpoint).unwrap_or_default(),
    )
}

/// `message` framed by octet counting: `<length> <message>`.
pub fn frame(message: &str) -> Vec<u8> {
    let mut framed = format!("{} ", message.len()).into_bytes();
    framed.extend_from_slice(message.as_bytes());
    framed
}

/// A header field as RFC 5424 allows it: printable US-ASCII (anything else becomes `_`),
/// at most `max` characters, `-` (NILVALUE) when empty.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text.chars().map(|c| if c.is_ascii_graphic() { c } else { '_' }).take(max).collect();
    if field.is_empty() { "-".into() } else { field }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped (RFC 5424 §6.3.3); control characters dropped,
/// since some receivers split on them whatever the framing says.
fn param_value(text: &str) -> String {
    let mut value = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            value.push('\\');
        }
        value.push(c);
    }
    value
}

/// Where the trail is shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipTarget {
    /// Plain TCP: only for a collector on the same host or a protected network.
    Tcp { host: String, port: u16 },
    /// TLS (RFC 5425), trusting only the CA certificates in the `ca` PEM file.
    Tls { host: String, port: u16, ca: PathBuf },
}

/// Why shipping failed. Messages name the collector and files, never entry contents.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("{0}")]
    Target(String),
    #[error("cannot read a CA certificate from {0}")]
    Ca(String),
    #[error("cannot connect to the syslog collector {0}")]
    Connect(String, #[source] std::io::Error),
    #[error("the TLS handshake with the syslog collector {0} failed")]
    Handshake(String, #[source] std::io::Error),
    #[error("sending to the syslog collector {0} failed")]
    Send(String, #[source] std::io::Error),
    #[error("the syslog collector {0} did not answer in time")]
    Timeout(String),
}

impl ShipTarget {
    /// Parses `tcp://host:port` or `tls://host:port` (IPv6 hosts in brackets). TLS needs
    /// `ca`, and it is checked here so a bad file is refused at start, not at first send;
    /// a CA with plain TCP is refused, as it suggests TLS was meant.
    pub fn parse(url: &str, ca: Option<&Path>) -> Result<Self, ShipError> {
        let bad =
            || ShipError::Target(format!("the syslog target must be tcp://HOST:PORT or tls://HOST:PORT, not {url}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains(['/', '[', ']']) {
            return Err(bad());
        }
        let host = host.to_owned();
        match (scheme, ca) {
            ("tcp", None) => Ok(Self::Tcp { host, port }),
            ("tcp", Some(_)) => {
                Err(ShipError::Target("a CA certificate was given for tcp://; use tls:// to encrypt".into()))
            }
            ("tls", Some(ca)) => {
                client_config(ca)?;
                Ok(Self::Tls { host, port, ca: ca.to_owned() })
            }
            ("tls", None) => Err(ShipError::Target(
                "tls:// needs the CA certificate (PEM) that signed the collector's certificate".into(),
            )),
            _ => Err(bad()),
        }
    }

    fn host_port(&self) -> (&str, u16) {
        match self {
            Self::Tcp { host, port } | Self::Tls { host, port, .. } => (host, *port),
        }
    }
}

impl std::fmt::Display for ShipTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if matches!(self, Self::Tcp { .. }) { "tcp" } else { "tls" };
        let (host, port) = self.host_port();
        if host.contains(':') { write!(f, "{scheme}://[{host}]:{port}") } else { write!(f, "{scheme}://{host}:{port}") }
    }
}

/// A TLS 1.3/1.2 client trusting only the certificates in `ca`.
fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, ShipError> {
    let ca_error = || ShipError::Ca(ca.display().to_string());
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|_| ca_error())?;
    for cert in certs {
        roots.add(cert.map_err(|_| ca_error())?).map_err(|_| ca_error())?;
    }
    if roots.is_empty() {
        return Err(ca_error());
    }
    // The binaries install their provider first; this covers a caller that did not.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config =
        rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// For sending one batch and seeing the collector close.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `bytes` (framed messages) over one new connection and returns once the
/// collector has taken them: after sending, this side closes (TLS close_notify, then
/// TCP FIN) and waits for the collector to close in turn, which it does only after reading
/// to the end. Syslog has no application acknowledgement; this is the closest a sender
/// can get, and without it a batch still in flight when the collector dies would be lost.
pub async fn deliver(target: &ShipTarget, bytes: &[u8]) -> Result<(), ShipError> {
    let name = target.to_string();
    let (host, port) = target.host_port();
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ShipError::Timeout(name.clone()))?
        .map_err(|e| ShipError::Connect(name.clone(), e))?;
    match target {
        ShipTarget::Tcp { .. } => send_and_close(tcp, bytes, &name).await,
        ShipTarget::Tls { ca, .. } => {
            let server = ServerName::try_from(host.to_owned())
                .map_err(|_| ShipError::Target(format!("{host} is not a valid TLS server name")))?;
            let connector = tokio_rustls::TlsConnector::from(client_config(ca)?);
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server, tcp))
                .await
                .map_err(|_| ShipError::Timeout(name.clone()))?
                .map_err(|e| ShipError::Handshake(name.clone(), e))?;
            send_and_close(tls, bytes, &name).await
        }
    }
}

async fn send_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    bytes: &[u8],
    name: &str,
) -> Result<(), ShipError> {
    let exchange = async {
        stream.write_all(bytes).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut discard = [0u8; 1024];
        loop {
            match stream.read(&mut discard).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                // Closed without TLS close_notify: still closed after reading everything.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| ShipError::Timeout(name.to_owned()))?
        .map_err(|e| ShipError::Send(name.to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(1_800_000_000_123, "read", outcome, "vault-a/4242");
        e.user_id = Some("user-daffy".into());
        e.patient_ids = vec!["p1".into(), "p2".into()];
        e.reason = Some("403 \"x\" [y] \\z".into());
        e
    }

    #[test]
    fn messages_follow_rfc_5424() {
        let msg = message(7, &event(Outcome::Success));
        let json = String::from_utf8(event(Outcome::Success).canonical_bytes()).expect("utf8");
        assert_eq!(
            msg,
            format!(
                "<109>1 2027-01-15T08:00:00.123Z vault-a phivault 4242 read [phivault@32473 seq=\"7\" \
                 outcome=\"success\" reason=\"403 \\\"x\\\" [y\\] \\\\z\" user=\"user-daffy\" patients=\"p1,p2\"] {json}"
            )
        );
        assert!(message(7, &event(Outcome::Denied)).starts_with("<108>1 "));
        assert!(message(7, &event(Outcome::Failure)).contains("outcome=\"failure\""));
    }

    #[test]
    fn checkpoints_travel_as_their_own_messages() {
        let (signer, _) = crate::CheckpointSigner::generate().expect("key");
        let cp = signer.sign(12, &[1; 32], &[2; 32], 1_800_000_000_123);
        let msg = checkpoint_message(&cp, "vault-a/4242");
        assert!(msg.starts_with("<109>1 2027-01-15T08:00:00.123Z vault-a phivault 4242 audit.checkpoint "), "{msg}");
        assert!(msg.contains(&format!("size=\"12\" root=\"{}\"", cp.root)), "{msg}");
        let json = msg.rsplit_once("] ").expect("structured data then message").1;
        let back: crate::Checkpoint = serde_json::from_str(json).expect("the checkpoint itself");
        assert_eq!(back, cp);
        assert!(back.verify(&signer.public_key()));
    }

    #[test]
    fn header_fields_are_printable_ascii_and_clipped() {
        let e = AuditEvent::new(0, "a very long action name with spaces, beyond 32", Outcome::Success, "hôst name");
        let msg = message(0, &e);
        let header: Vec<&str> = msg.splitn(7, ' ').collect();
        assert_eq!(
            header[..6],
            ["<109>1", "1970-01-01T00:00:00.000Z", "h_st_name", "phivault", "-", "a_very_long_action_name_with_spa"]
        );
        assert_eq!(header_field("", 5), "-");
        assert_eq!(param_value("a\nb\"]"), "ab\\\"\\]");
    }

    #[test]
    fn frames_count_octets_not_characters() {
        let framed = frame("<109>1 é");
        assert_eq!(framed, "9 <109>1 é".as_bytes());
    }

    #[test]
    fn targets_parse_and_refuse_mistakes() {
        assert_eq!(
            ShipTarget::parse("tcp://127.0.0.1:5514", None).expect("tcp"),
            ShipTarget::Tcp { host: "127.0.0.1".into(), port: 5514 }
        );
        let v6 = ShipTarget::parse("tcp://[::1]:514", None).expect("v6");
        assert_eq!((v6.to_string(), v6.host_port()), ("tcp://[::1]:514".into(), ("::1", 514)));
        for (url, ca) in [
            ("udp://host:514", None),
            ("tcp://host", None),
            ("tcp://host:99999", None),
            ("tcp://:514", None),
            ("tls://host:6514", None),
            ("tcp://host:514", Some(Path::new("ca.pem"))),
            ("tls://host:6514", Some(Path::new("/nonexistent/ca.pem"))),
        ] {
            assert!(matches!(ShipTarget::parse(url, ca), Err(ShipError::Target(_) | ShipError::Ca(_))), "{url}");
        }
    }

    #[tokio::test]
    async fn delivery_waits_for_the_collector_to_read_everything() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let collector = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut received = Vec::new();
            socket.read_to_end(&mut received).await.expect("read");
            received
        });
        let target = ShipTarget::Tcp { host: "127.0.0.1".into(), port };
        let bytes = frame(&message(1, &event(Outcome::Success)));
        deliver(&target, &bytes).await.expect("delivered");
        assert_eq!(collector.await.expect("collector"), bytes);

        let closed = ShipTarget::Tcp { host: "127.0.0.1".into(), port: 1 };
        assert!(matches!(deliver(&closed, &bytes).await, Err(ShipError::Connect(..))));
    }
}
