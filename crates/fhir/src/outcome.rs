use serde_json::{Value, json};

/// An `OperationOutcome` with one issue. `diagnostics` must be free of PHI.
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }]
    })
}
