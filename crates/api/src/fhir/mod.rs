//! The FHIR R4 REST API. Safeguards: 45 CFR 164.312(a)(2)(iv) (records are encrypted
//! before storage), 164.312(c) (tampered records are refused), 164.312(e) (served over TLS).

mod bundle;
mod capability;
mod export;

pub use bundle::process_bundle;
pub use capability::metadata;
mod operations;
mod resources;
mod response;
mod search;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::method_not_allowed;

/// The FHIR JSON media type, as sent on every FHIR response.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Routes under `/fhir`. Methods not listed answer 405 with an OperationOutcome.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", post(bundle::process_bundle))
        .route("/$export", get(export::kick_off_system).post(export::kick_off_system))
        .route("/$export-status/{id}", get(export::status).delete(export::cancel))
        .route("/$export-file/{id}/{n}", get(export::download))
        .route("/{resource_type}/$export", get(export::kick_off_type).post(export::kick_off_type))
        .route(
            "/{resource_type}/{id}/{operation}",
            get(operations::instance_operation).post(operations::instance_operation),
        )
        .route("/{resource_type}", get(search::search_get).post(resources::create))
        .route("/{resource_type}/_search", post(search::search_post))
        .route("/{resource_type}/_history", get(search::type_history))
        .route("/{resource_type}/{id}", get(resources::read).put(resources::update))
        .route("/{resource_type}/{id}/_history", get(search::instance_history))
        .route("/{resource_type}/{id}/_history/{version}", get(resources::vread))
        .method_not_allowed_fallback(method_not_allowed)
}
