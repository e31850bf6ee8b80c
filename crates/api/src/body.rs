//! Reading a FHIR JSON request body: content type, size limit, parse errors, all answered
//! with an OperationOutcome and without echoing the body.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use phivault_fhir::IssueType;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// A parsed FHIR JSON body.
#[derive(Debug)]
pub struct FhirBody(pub Value);

impl FromRequest<AppState> for FhirBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/fhir+json" && mime != "application/json" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                IssueType::NotSupported,
                "send the resource as application/fhir+json",
            ));
        }
        let limit = state.config.max_body_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                IssueType::TooCostly,
                format!("the body exceeds the limit of {limit} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(Body::new(request.into_body()), limit).await.map_err(|_| too_large())?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                IssueType::Structure,
                format!("the body is not valid JSON (line {}, column {})", e.line(), e.column()),
            )
        })?;
        Ok(Self(value))
    }
}
