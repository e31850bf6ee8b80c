//! The HTTPS listener (and an optional plain-HTTP listener that only redirects).
//!
//! Each connection gets a TLS handshake deadline, an HTTP header-read deadline (which also
//! ends idle keep-alive connections), and the peer address as a request extension. On
//! shutdown, the listener stops accepting and lets in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::client_ip::PeerAddr;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub handshake_timeout: Duration,
    /// Deadline for a request's headers; an idle keep-alive connection is closed after it.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

fn http_builder(limits: ConnectionLimits, http2: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // ALPN already chose the protocol: no sniffing read (which would have no deadline).
    builder = if http2 { builder.http2_only() } else { builder.http1_only() };
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(64);
    builder
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then drains.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builders = Arc::new([http_builder(limits, false), http_builder(limits, true)]);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builders = builders.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(app.map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            }));
            let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = &builders[usize::from(http2)];
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period ended with requests still in flight");
    }
}

/// Serves plain HTTP that only redirects to `https_base` (same path), never content.
pub async fn serve_redirect(listener: TcpListener, https_base: String, shutdown: impl Future<Output = ()>) {
    let https_base = Arc::new(https_base);
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted { Ok(pair) => pair, Err(_) => continue },
            () = &mut shutdown => return,
        };
        let base = https_base.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let base = base.clone();
                async move {
                    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    // Redirect to the configured host only: never to a Host header's choice.
                    let response = Response::builder()
                        .status(StatusCode::PERMANENT_REDIRECT)
                        .header(header::LOCATION, format!("{base}{path}"))
                        .body(Body::empty());
                    Ok::<_, axum::http::Error>(response.unwrap_or_default())
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
