//! phivault's HTTPS adapter: the FHIR R4 REST API at `/fhir`, health endpoints, security
//! headers, client-address handling, and the TLS listener. Handlers call the service;
//! they hold no business rules.

mod admin;
mod alerts;
pub mod audit;
pub mod auth;
mod body;
mod break_glass;
mod client_ip;
mod cors;
mod emergency;
mod erase;
mod error;
pub mod fhir;
mod headers;
mod health;
pub mod listener;
mod middleware;
mod oauth;
mod review;
pub mod tls;
mod web;
/// What a chart page reads (for the benchmark of its cost).
pub use web::CHART_QUERIES;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use phivault_identity::Identity;
use phivault_service::access::GuardedRecords;

pub use client_ip::{ClientIp, IpNet, PeerAddr};
pub use middleware::RequestId;

/// Settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Public base URL (`https://host:port`), used in Location headers and Bundle links.
    pub base_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Network zones the policies can test (`context.zone`).
    pub zones: phivault_policy::Zones,
    /// Origins (`https://app.example`) whose browser apps may call the API (CORS); none by
    /// default.
    pub cors_origins: Vec<String>,
    /// The clinic's offset from UTC in minutes, for times people read and type on the
    /// pages (appointments); the same offset as the after-hours rule's working hours.
    pub local_offset_minutes: i32,
}

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub records: GuardedRecords,
    pub identity: Identity,
    pub audit: phivault_audit::AuditLog,
    pub config: Arc<ApiConfig>,
    /// Where break-glass grants are sent for the privacy officer (none: audit trail only).
    pub notifier: Option<Arc<dyn phivault_service::access::Notifier>>,
    /// The activity review's alert queue.
    pub alerts: Arc<dyn phivault_audit::alerts::AlertStore>,
    /// Bulk Data export jobs; `None` answers `$export` with 501 (a server built without a
    /// job store, such as the benchmarks').
    pub exports: Option<phivault_service::bulk::Exporter>,
}

/// The whole HTTP application: `/fhir` (authenticated), sign-in pages, the admin API,
/// `/healthz`, `/readyz`, with middleware.
pub fn router(state: AppState) -> Router {
    let authenticated = axum::middleware::from_fn_with_state(state.clone(), auth::require_caller);
    let guarded_fhir = |routes: Router<AppState>| {
        routes
            .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::gate::fhir_gate))
            .route_layer(authenticated.clone())
            .route_layer(axum::middleware::from_fn_with_state(state.clone(), audit::audit_fhir))
    };
    let fhir = guarded_fhir(fhir::routes());
    // `POST /fhir/` (some clients add the slash) is the base's Bundle endpoint, behind the
    // same authentication, decision and audit layers.
    let fhir_base_slash = guarded_fhir(Router::new().route("/fhir/", axum::routing::post(fhir::process_bundle)));
    let access = break_glass::routes()
        .route("/accounting", axum::routing::get(review::accounting))
        .route_layer(authenticated.clone());
    let audit_review =
        alerts::routes().route("/entries", axum::routing::get(review::entries)).route_layer(authenticated.clone());
    let emergency = emergency::routes().route_layer(authenticated.clone());
    let admin = admin::routes()
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admin::require_admin))
        .route_layer(authenticated)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), audit::audit_admin));
    Router::new()
        .merge(health::routes())
        .merge(web::routes())
        .merge(oauth::routes())
        .route("/fhir/metadata", axum::routing::get(fhir::metadata))
        .nest("/fhir", fhir)
        .merge(fhir_base_slash)
        .nest("/admin", admin)
        .nest("/access", access)
        .nest("/audit", audit_review)
        .merge(emergency)
        .fallback(error::not_found_fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), emergency::mark_responses))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::request_context))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}
