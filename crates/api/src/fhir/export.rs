//! FHIR Bulk Data `$export` (the Bulk Data Access IG's asynchronous pattern): kick-off at
//! `/$export`, `/Patient/$export` or `/Group/{id}/$export` answers 202 with a status URL;
//! the status URL answers 202 while the job runs and the manifest when it is done; files
//! are downloaded from `/$export-file/{job}/{n}` by the account or client that asked, and
//! `DELETE` on the status URL cancels. Each export is decided record by record by the
//! policies, de-identified when a policy or the request says so, and recorded in the audit
//! trail with its counts and the patients it covered before its files can be downloaded.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use phivault_audit::{AuditEvent, Outcome};
use phivault_fhir::{FhirError, IssueType, format_instant, parse_query_string};
use phivault_service::access::Accessor;
use phivault_service::bulk::{ExportJob, ExportRequest, ExportTarget, Exporter, JobStatus};
use serde_json::{Value, json};

use crate::AppState;
use crate::audit::ReleaseAfterAudit;
use crate::auth::Caller;
use crate::error::ApiError;

/// Patients named per `export.patients` audit entry.
const PATIENTS_PER_ENTRY: usize = 500;

fn exporter(state: &AppState) -> Result<&Exporter, ApiError> {
    state.exports.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, IssueType::NotSupported, "bulk export is not enabled on this server")
    })
}

/// The account or client that owns a job.
fn owner(caller: &Caller) -> String {
    let p = &caller.principal;
    match (&p.user_id, &p.client_id) {
        (Some(user), _) => user.clone(),
        (None, Some(client)) => format!("client:{client}"),
        (None, None) => String::new(),
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::from(FhirError::invalid(message))
}

/// Parses the kick-off parameters; the manifest's `request` is rebuilt from what was
/// understood, so no client text is stored or echoed.
fn parse_request(
    target: ExportTarget,
    path: &str,
    parameters: Vec<(String, String)>,
) -> Result<ExportRequest, ApiError> {
    let mut types: Vec<String> = Vec::new();
    let mut since_ms = None;
    let mut deidentify = None;
    for (i, (name, value)) in parameters.into_iter().enumerate() {
        match name.as_str() {
            "_type" => {
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !phivault_fhir::is_resource_type(t) {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            IssueType::NotSupported,
                            "_type names an unknown resource type",
                        ));
                    }
                    if !types.iter().any(|known| known == t) {
                        types.push(t.to_owned());
                    }
                }
            }
            "_since" => {
                let instant = time::OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| invalid("_since must be an instant such as 2026-01-01T00:00:00Z"))?;
                since_ms = Some((instant.unix_timestamp_nanos() / 1_000_000) as i64);
            }
            "_outputFormat" => {
                if !matches!(value.as_str(), "application/fhir+ndjson" | "application/ndjson" | "ndjson") {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        IssueType::NotSupported,
                        "_outputFormat must be application/fhir+ndjson",
                    ));
                }
            }
            "_deidentify" => {
                let profile = phivault_service::bulk::KNOWN_PROFILES
                    .iter()
                    .find(|p| **p == value)
                    .ok_or_else(|| invalid("_deidentify is safe-harbor or limited-data-set"))?;
                deidentify = Some((*profile).to_owned());
            }
            "_typeFilter" | "_elements" | "includeAssociatedData" | "patient" => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::NotSupported,
                    "_typeFilter, _elements, includeAssociatedData and patient are not supported",
                ));
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::NotSupported,
                    format!("parameter #{} is not supported by $export", i + 1),
                ));
            }
        }
    }
    let mut understood: Vec<String> = Vec::new();
    if !types.is_empty() {
        understood.push(format!("_type={}", types.join(",")));
    }
    if let Some(since) = since_ms {
        understood.push(format!("_since={}", format_instant(since)));
    }
    if let Some(profile) = &deidentify {
        understood.push(format!("_deidentify={profile}"));
    }
    let request = if understood.is_empty() { path.to_owned() } else { format!("{path}?{}", understood.join("&")) };
    Ok(ExportRequest { target, types, since_ms, deidentify, request })
}

/// The kick-off's parameters: the query string, and for `POST` a FHIR `Parameters` body
/// (Bulk Data IG 2.0), whose primitive values are read as their query-string spelling.
/// A `GET` with a body is refused rather than half understood.
pub struct KickOffParameters(pub(crate) Vec<(String, String)>);

/// A kick-off's `Parameters` is a handful of values; anything larger is not one.
const KICK_OFF_BODY_LIMIT: usize = 64 * 1024;

impl FromRequest<AppState> for KickOffParameters {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        let body = axum::body::to_bytes(request.into_body(), KICK_OFF_BODY_LIMIT)
            .await
            .map_err(|_| invalid("the kick-off body is not a Parameters resource of at most 64 KiB"))?;
        kick_off_parameters(&method, query.as_deref(), &body).map(Self)
    }
}

fn kick_off_parameters(method: &Method, query: Option<&str>, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let mut parameters = parse_query_string(query.unwrap_or(""));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(parameters);
    }
    if method != Method::POST {
        return Err(invalid("a GET kick-off carries no body; POST a Parameters resource instead"));
    }
    let resource: Value =
        serde_json::from_slice(body).map_err(|_| invalid("the kick-off body must be a FHIR Parameters resource"))?;
    if resource.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(invalid("the kick-off body must be a FHIR Parameters resource"));
    }
    for (i, parameter) in resource.get("parameter").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default();
        let value =
            ["valueString", "valueInstant", "valueCode", "valueBoolean"].iter().find_map(|field| {
                match parameter.get(*field) {
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(Value::Bool(flag)) => Some(flag.to_string()),
                    _ => None,
                }
            });
        match (name, value) {
            ("", _) => return Err(invalid(&format!("parameter #{} has no name", i + 1))),
            (name, Some(value)) => parameters.push((name.to_owned(), value)),
            // A reference or an object: the parameters that take one are unsupported, and
            // keeping their names lets the parser say so.
            (name @ ("patient" | "_typeFilter" | "_elements" | "includeAssociatedData"), None) => {
                parameters.push((name.to_owned(), String::new()));
            }
            // Any other value type (`_type` as an integer) would be read as empty, which
            // for `_type` means every type: refused rather than half understood.
            (_, None) => {
                return Err(invalid(&format!("parameter #{} has a value type $export does not read", i + 1)));
            }
        }
    }
    Ok(parameters)
}

/// `GET` or `POST /fhir/$export`.
pub async fn kick_off_system(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    KickOffParameters(parameters): KickOffParameters,
) -> Result<Response, ApiError> {
    kick_off(state, accessor, caller, headers, ExportTarget::System, "/$export".into(), parameters).await
}

/// `GET` or `POST /fhir/{type}/$export`: Patient only.
pub async fn kick_off_type(
    State(state): State<AppState>,
    Extension(accessor): Extension<Accessor>,
    Extension(caller): Extension<Caller>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    KickOffParameters(parameters): KickOffParameters,
) -> Result<Response, ApiError> {
    if resource_type != "Patient" {
        return Err(ApiError::new(StatusCode::NOT_FOUND, IssueType::NotSupported, "$export is defined on Patient"));
    }
    kick_off(state, accessor, caller, headers, ExportTarget::AllPatients, "/Patient/$export".into(), parameters).await
}

/// `GET` or `POST /fhir/{type}/{id}/{operation}`: `Group/{id}/$export`.
pub(crate) async fn kick_off_group(
    state: AppState,
    accessor: Accessor,
    caller: Caller,
    id: String,
    headers: HeaderMap,
    parameters: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    if !phivault_fhir::is_valid_id(&id) {
        return Err(invalid("invalid Group id"));
    }
    let path = format!("/Group/{id}/$export");
    kick_off(state, accessor, caller, headers, ExportTarget::Group(id), path, parameters).await
}

async fn kick_off(
    state: AppState,
    accessor: Accessor,
    caller: Caller,
    headers: HeaderMap,
    target: ExportTarget,
    path: String,
    parameters: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let exports = exporter(&state)?.clone();
    let asks_async = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("respond-async")));
    if !asks_async {
        return Err(invalid("$export runs asynchronously: send Prefer: respond-async"));
    }
    let request = parse_request(target, &path, parameters)?;
    if let Err(e) = exports.sweep().await {
        tracing::warn!(error = %e, "cannot delete expired exports");
    }
    let granted = exports.kick_off(&accessor, &owner(&caller), request).await?;
    let (job, level) = granted.value;
    let status_url = format!("{}/fhir/$export-status/{}", state.config.base_url, job.id);
    // The job runs only once the kick-off's own audit entry is durable: a kick-off answered
    // 503 because the trail was down must not go on exporting behind the client's back.
    let (release, released) = ReleaseAfterAudit::new();
    let run_state = state.clone();
    tokio::spawn(async move {
        if released.await.is_err() {
            exports.fail(job, "the kick-off could not be recorded in the audit trail, so nothing was exported").await;
            return;
        }
        run_and_record(run_state, exports, job, accessor, level, caller).await;
    });
    let mut response = (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, super::FHIR_JSON)], "").into_response();
    response.extensions_mut().insert(release);
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::CONTENT_LOCATION, location);
    }
    super::response::decided(&mut response, granted.policy_ids);
    Ok(response)
}

/// Runs the job; records `export.complete` (counts) and `export.patients` (the patients
/// whose records went out, for their accounting of disclosures) before the files become
/// downloadable; a job whose entries cannot be written fails instead (fail closed).
async fn run_and_record(
    state: AppState,
    exports: Exporter,
    job: ExportJob,
    accessor: Accessor,
    level: phivault_service::access::ExportLevel,
    caller: Caller,
) {
    let job_id = job.id.clone();
    let (outcome, ready) = exports.run(job, accessor, level).await;
    let p = &caller.principal;
    let event = |action: &str, result: Outcome| {
        let mut e = AuditEvent::new(state.identity.now_ms(), action, result, state.audit.node());
        e.user_id = p.user_id.clone();
        e.roles = p.roles.iter().map(|r| r.as_str().to_owned()).collect();
        e.client_id = p.client_id.clone();
        e.grant_id = Some(p.grant_id.clone());
        e.target = Some(format!("export:{job_id}"));
        e.policies = outcome.policy_ids.clone();
        e
    };
    let mut complete = event("export.complete", if ready.is_some() { Outcome::Success } else { Outcome::Failure });
    let counts: Vec<String> = outcome.counts.iter().map(|(t, n)| format!("{t}={n}")).collect();
    complete.reason = Some(match &outcome.error {
        Some(error) => phivault_audit::clip(error, 200),
        None => match outcome.smallest_class {
            Some(k) => format!("{} deidentified k={k}", counts.join(" ")),
            None => format!("{}{}", counts.join(" "), if outcome.deidentified { " deidentified" } else { "" }),
        },
    });
    complete.resource_type = None;
    let mut recorded = state.audit.record(&complete).await.is_ok();
    let patients: Vec<String> = outcome.patients.iter().cloned().collect();
    for part in patients.chunks(PATIENTS_PER_ENTRY) {
        let mut entry = event("export.patients", Outcome::Success);
        entry.patient_ids = part.to_vec();
        recorded &= state.audit.record(&entry).await.is_ok();
    }
    let Some(job) = ready else { return };
    if !recorded {
        exports.fail(job, "the audit trail could not be written, so nothing was released").await;
        return;
    }
    // `export.complete` went first (nothing is released unrecorded); when the files then
    // never become downloadable, a second entry says so, so the trail does not over-report.
    let withdrawn = match exports.publish(job).await {
        Ok(true) => return,
        Ok(false) => "cancelled before its files were released",
        Err(e) => {
            tracing::error!(job = %job_id, error = %e, "cannot publish a finished export");
            "its files could not be released"
        }
    };
    let mut entry = event("export.withdrawn", Outcome::Failure);
    entry.reason = Some(withdrawn.to_owned());
    if state.audit.record(&entry).await.is_err() {
        tracing::error!(job = %job_id, "cannot record that a finished export was withdrawn");
    }
}

/// `GET /fhir/$export-status/{id}`.
pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(accessor): Extension<Accessor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let exports = exporter(&state)?;
    let job = exports.job(&owner(&caller), &id).await?.ok_or_else(not_found)?;
    still_allowed(&state, &accessor, &job).await?;
    match job.status {
        JobStatus::Running => {
            let mut response = StatusCode::ACCEPTED.into_response();
            let progress = format!("{} records written", job.written);
            if let Ok(v) = HeaderValue::from_str(&progress) {
                response.headers_mut().insert("x-progress", v);
            }
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            Ok(response)
        }
        JobStatus::Complete => {
            let base = &state.config.base_url;
            let output: Vec<serde_json::Value> = job
                .files
                .iter()
                .enumerate()
                .map(|(n, f)| {
                    json!({"type": f.resource_type, "url": format!("{base}/fhir/$export-file/{}/{n}", job.id),
                           "count": f.count})
                })
                .collect();
            let manifest = json!({
                "transactionTime": format_instant(job.transaction_ms),
                "request": format!("{base}/fhir{}", job.request),
                "requiresAccessToken": true,
                "output": output,
                "error": [],
                "extension": {
                    "expires": format_instant(job.expires_ms),
                    "smallestEquivalenceClass": job.smallest_class,
                },
            });
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], manifest.to_string()).into_response())
        }
        JobStatus::Failed => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            job.error.unwrap_or_else(|| "the export failed".into()),
        )),
        JobStatus::Cancelled => Err(not_found()),
    }
}

/// The owner must still be allowed to export what the job holds: a researcher whose role
/// was withdrawn after the kick-off does not download the files (the policies decide, now).
async fn still_allowed(state: &AppState, accessor: &Accessor, job: &ExportJob) -> Result<(), ApiError> {
    state.records.exportable_types(accessor, &job.types).await?;
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, IssueType::NotFound, "no such export (unknown, expired or cancelled)")
}

/// `DELETE /fhir/$export-status/{id}`: cancels and deletes the files.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if exporter(&state)?.cancel(&owner(&caller), &id).await? {
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(not_found())
    }
}

/// `GET /fhir/$export-file/{id}/{n}`: one file as NDJSON, decrypted chunk by chunk as it
/// is sent, so memory stays at one chunk whatever the file's size.
pub async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(accessor): Extension<Accessor>,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let exports = exporter(&state)?.clone();
    let job = exports.job(&owner(&caller), &id).await?.ok_or_else(not_found)?;
    still_allowed(&state, &accessor, &job).await?;
    let file_no: u32 = n.parse().map_err(|_| not_found())?;
    if job.status != JobStatus::Complete || file_no as usize >= job.files.len() {
        return Err(not_found());
    }
    // The first chunk is opened before answering, so a damaged file is an error, not a
    // 200 that stops short.
    let first = exports.chunk(&job, file_no, 0).await?.ok_or_else(not_found)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        let mut chunk = 1;
        loop {
            match exports.chunk(&job, file_no, chunk).await {
                Ok(Some(bytes)) => {
                    if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    // The client sees a cut-off body; the cause is in the log.
                    tracing::error!(job = %job.id, error = %e, "an export file could not be read to its end");
                    let _ = tx.send(Err(std::io::Error::other("export file unreadable"))).await;
                    return;
                }
            }
            chunk += 1;
        }
    });
    let body = Body::new(ChannelBody(rx));
    Ok(([(header::CONTENT_TYPE, "application/fhir+ndjson")], body).into_response())
}

/// A response body fed by a channel of chunks.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|item| item.map(|chunk| chunk.map(http_body::Frame::data)))
    }
}
