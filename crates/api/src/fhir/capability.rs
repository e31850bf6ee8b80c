//! `GET /fhir/metadata`: exactly what this server implements.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use phivault_fhir::RESOURCE_TYPES;
use phivault_fhir::search::search_param_names;
use serde_json::{Value, json};

use super::response::fhir_json;
use crate::AppState;

/// The CapabilityStatement: every R4 type readable, creatable, updatable, with history
/// and search; no delete (records are kept; disposal is a retention decision).
pub async fn metadata(State(state): State<AppState>) -> Response {
    fhir_json(StatusCode::OK, &capability_statement(&state.config.base_url))
}

pub fn capability_statement(base_url: &str) -> Value {
    let resources: Vec<Value> = RESOURCE_TYPES
        .iter()
        .filter(|t| !matches!(**t, "Bundle" | "CapabilityStatement" | "OperationOutcome" | "Parameters"))
        .map(|t| {
            let interactions: Vec<Value> =
                ["read", "vread", "update", "history-instance", "history-type", "create", "search-type"]
                    .iter()
                    .map(|c| json!({"code": c}))
                    .collect();
            let params: Vec<Value> =
                search_param_names(t).into_iter().map(|(name, kind)| json!({"name": name, "type": kind})).collect();
            let includes: Vec<String> =
                phivault_fhir::search::reference_params(t).into_iter().map(|p| format!("{t}:{p}")).collect();
            // Reverse includes follow the patient compartment, on Patient searches.
            let revincludes: Vec<String> = if *t == "Patient" {
                phivault_fhir::patient_compartment_types()
                    .filter_map(|c| {
                        let p = ["patient", "subject", "beneficiary"]
                            .into_iter()
                            .find(|p| phivault_fhir::search::reference_paths(c, p).is_some())?;
                        Some(format!("{c}:{p}"))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            json!({
                "type": t,
                "searchInclude": includes,
                "searchRevInclude": revincludes,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": false,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "interaction": interactions,
                "searchParam": params
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "kind": "instance",
        "software": {"name": "phivault", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "phivault FHIR R4 server", "url": format!("{base_url}/fhir")},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"
                }]}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": format!("{base_url}/oauth/authorize")},
                        {"url": "token", "valueUri": format!("{base_url}/oauth/token")},
                        {"url": "revoke", "valueUri": format!("{base_url}/oauth/revoke")},
                        {"url": "introspect", "valueUri": format!("{base_url}/oauth/introspect")}
                    ]
                }],
                "description": "TLS 1.2/1.3 only. Every request needs a SMART on FHIR access token or a signed-in session; see /fhir/.well-known/smart-configuration."
            },
            "resource": resources,
            "interaction": [{"code": "batch"}, {"code": "transaction"}],
            "operation": [
                {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"},
                {"name": "patient-export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"},
                {"name": "group-export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"},
                {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                 "documentation": "Patient/{id}/$everything with _type and _since (no paging: a record with more than 20,000 resources of one type is refused; use Patient/$export)"}
            ]
        }]
    })
}
