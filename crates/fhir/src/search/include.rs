//! `_include` and `_revinclude`: which references a search may follow, read from R4's
//! reference search parameters (`Observation:performer` is `Observation.performer`).
//!
//! Forward includes follow the elements below; reverse includes follow the patient
//! compartment only (`_revinclude=Observation:patient` on a Patient search), which is what
//! the compartment index answers. Other reverse references are refused, never ignored.

use serde_json::Value;

use crate::{FhirError, IssueType, is_resource_type};

/// One `_include` or `_revinclude` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The type whose references are followed (`Observation` in `Observation:performer`).
    pub source_type: String,
    /// The reference search parameter.
    pub param: &'static str,
    /// Only references to this type (`Observation:subject:Patient`).
    pub target: Option<String>,
    /// `_revinclude`: resources of `source_type` whose `param` names a match.
    pub reverse: bool,
    /// `:iterate`: also followed from included resources (one level further).
    pub iterate: bool,
}

/// R4 reference search parameters phivault can follow, by type: name and element paths
/// (a `Reference` or a list of them at each path).
/// One reference parameter: its name and the element paths it reads.
type ReferenceParam = (&'static str, &'static [&'static str]);

const REFERENCES: &[(&str, &[ReferenceParam])] = &[
    ("AllergyIntolerance", &[("patient", &["patient"]), ("recorder", &["recorder"]), ("asserter", &["asserter"])]),
    (
        "Appointment",
        &[
            ("actor", &["participant.actor"]),
            ("patient", &["participant.actor"]),
            ("practitioner", &["participant.actor"]),
            ("location", &["participant.actor"]),
        ],
    ),
    (
        "CarePlan",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("care-team", &["careTeam"]),
            ("goal", &["goal"]),
        ],
    ),
    (
        "CareTeam",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("participant", &["participant.member"]),
        ],
    ),
    (
        "Claim",
        &[
            ("patient", &["patient"]),
            ("provider", &["provider"]),
            ("insurer", &["insurer"]),
            ("facility", &["facility"]),
            ("encounter", &["item.encounter"]),
        ],
    ),
    (
        "Condition",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("asserter", &["asserter"]),
        ],
    ),
    (
        "Coverage",
        &[
            ("beneficiary", &["beneficiary"]),
            ("patient", &["beneficiary"]),
            ("payor", &["payor"]),
            ("subscriber", &["subscriber"]),
            ("policy-holder", &["policyHolder"]),
        ],
    ),
    ("Device", &[("patient", &["patient"])]),
    (
        "DiagnosticReport",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("performer", &["performer"]),
            ("result", &["result"]),
            ("based-on", &["basedOn"]),
        ],
    ),
    (
        "DocumentReference",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["context.encounter"]),
            ("author", &["author"]),
            ("custodian", &["custodian"]),
        ],
    ),
    (
        "Encounter",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("participant", &["participant.individual"]),
            ("practitioner", &["participant.individual"]),
            ("location", &["location.location"]),
            ("service-provider", &["serviceProvider"]),
            ("part-of", &["partOf"]),
            ("diagnosis", &["diagnosis.condition"]),
            ("appointment", &["appointment"]),
        ],
    ),
    (
        "ExplanationOfBenefit",
        &[
            ("patient", &["patient"]),
            ("provider", &["provider"]),
            ("claim", &["claim"]),
            ("coverage", &["insurance.coverage"]),
            ("care-team", &["careTeam.provider"]),
            ("facility", &["facility"]),
        ],
    ),
    ("Goal", &[("subject", &["subject"]), ("patient", &["subject"])]),
    ("ImagingStudy", &[("subject", &["subject"]), ("patient", &["subject"]), ("encounter", &["encounter"])]),
    ("Immunization", &[("patient", &["patient"]), ("performer", &["performer.actor"]), ("location", &["location"])]),
    ("Location", &[("organization", &["managingOrganization"]), ("partof", &["partOf"])]),
    (
        "MedicationAdministration",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("medication", &["medicationReference"]),
            ("performer", &["performer.actor"]),
            ("context", &["context"]),
        ],
    ),
    (
        "MedicationRequest",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("requester", &["requester"]),
            ("medication", &["medicationReference"]),
            ("intended-performer", &["performer"]),
        ],
    ),
    (
        "Observation",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("performer", &["performer"]),
            ("specimen", &["specimen"]),
            ("device", &["device"]),
            ("has-member", &["hasMember"]),
            ("derived-from", &["derivedFrom"]),
            ("based-on", &["basedOn"]),
            ("part-of", &["partOf"]),
            ("focus", &["focus"]),
        ],
    ),
    ("Organization", &[("partof", &["partOf"])]),
    (
        "Patient",
        &[
            ("general-practitioner", &["generalPractitioner"]),
            ("organization", &["managingOrganization"]),
            ("link", &["link.other"]),
        ],
    ),
    (
        "PractitionerRole",
        &[("practitioner", &["practitioner"]), ("organization", &["organization"]), ("location", &["location"])],
    ),
    (
        "Procedure",
        &[
            ("subject", &["subject"]),
            ("patient", &["subject"]),
            ("encounter", &["encounter"]),
            ("performer", &["performer.actor"]),
            ("location", &["location"]),
        ],
    ),
    ("Provenance", &[("target", &["target"]), ("agent", &["agent.who"]), ("patient", &["target"])]),
];

/// The reference parameters of `resource_type` phivault follows (for the CapabilityStatement).
pub fn reference_params(resource_type: &str) -> Vec<&'static str> {
    REFERENCES
        .iter()
        .filter(|(t, _)| *t == resource_type)
        .flat_map(|(_, params)| params.iter().map(|(n, _)| *n))
        .collect()
}

/// The element paths of `resource_type`'s reference parameter `param`, if phivault follows it.
pub fn reference_paths(resource_type: &str, param: &str) -> Option<(&'static str, &'static [&'static str])> {
    let (_, params) = REFERENCES.iter().find(|(t, _)| *t == resource_type)?;
    params.iter().find(|(name, _)| *name == param).map(|(name, paths)| (*name, *paths))
}

/// Parses one value of `_include` (`reverse` false) or `_revinclude` on a search of
/// `searched`, with its modifier (`iterate` or none). Messages name parameters by
/// position, never the client's text.
pub fn parse_include(
    searched: &str,
    modifier: Option<&str>,
    value: &str,
    reverse: bool,
    position: usize,
) -> Result<Include, FhirError> {
    let unsupported = |why: &str| {
        FhirError::new(IssueType::NotSupported, format!("query parameter {position} ({}): {why}", kind(reverse)))
    };
    let iterate = match modifier {
        None => false,
        Some("iterate") => true,
        Some(_) => return Err(unsupported("the only modifier is :iterate")),
    };
    let mut parts = value.split(':');
    let (Some(source_type), Some(param)) = (parts.next(), parts.next()) else {
        return Err(unsupported("the value is Type:parameter or Type:parameter:TargetType"));
    };
    let target = parts.next().map(str::to_owned);
    if parts.next().is_some()
        || !is_resource_type(source_type)
        || target.as_deref().is_some_and(|t| !is_resource_type(t))
    {
        return Err(unsupported("the value is Type:parameter or Type:parameter:TargetType"));
    }
    let Some((param, _)) = reference_paths(source_type, param) else {
        return Err(unsupported("not a reference parameter phivault follows (see /metadata)"));
    };
    if reverse {
        // Answered from the patient compartment index: the patient reference of a type, on
        // a search of Patients.
        if !matches!(param, "patient" | "subject" | "beneficiary") || searched != "Patient" && !iterate {
            return Err(unsupported("only the patient compartment is followed in reverse (Patient searches)"));
        }
    } else if source_type != searched && !iterate {
        return Err(unsupported("names another type than the one searched (use :iterate)"));
    }
    Ok(Include { source_type: source_type.to_owned(), param, target, reverse, iterate })
}

fn kind(reverse: bool) -> &'static str {
    if reverse { "_revinclude" } else { "_include" }
}

/// The records `resource` (of `include.source_type`) references through the include's
/// parameter, as `(type, id)`, in order and without repeats. Only local references
/// (`Type/id`): a contained, conditional or absolute one names no record here.
pub fn referenced(resource: &Value, include: &Include) -> Vec<(String, String)> {
    let Some((_, paths)) = reference_paths(&include.source_type, include.param) else { return Vec::new() };
    let mut out: Vec<(String, String)> = Vec::new();
    for path in paths {
        let mut current = vec![resource];
        for segment in path.split('.') {
            current = current
                .into_iter()
                .filter_map(|v| v.get(segment))
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect();
        }
        for reference in current.iter().filter_map(|r| r.get("reference").and_then(Value::as_str)) {
            if reference.contains("://") {
                continue;
            }
            let Some((t, id)) = crate::parse_relative_reference(reference) else { continue };
            let wanted = include.target.as_deref().is_none_or(|target| target == t);
            let pair = (t.to_owned(), id.to_owned());
            if wanted && !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn includes_parse_strictly_and_name_positions_only() {
        let include = parse_include("Observation", None, "Observation:performer:Practitioner", false, 2).expect("ok");
        assert_eq!((include.param, include.target.as_deref()), ("performer", Some("Practitioner")));
        let rev = parse_include("Patient", None, "Observation:patient", true, 1).expect("ok");
        assert!(rev.reverse && !rev.iterate);
        assert!(
            parse_include("Encounter", Some("iterate"), "Encounter:service-provider", false, 3).expect("ok").iterate
        );
        for (searched, modifier, value, reverse) in [
            ("Observation", None, "Daffy Duck", false),
            ("Observation", None, "Observation:code", false),
            ("Observation", None, "Encounter:service-provider", false),
            ("Observation", None, "*", false),
            ("Observation", Some("recurse"), "Observation:performer", false),
            ("Observation", None, "Observation:performer:Nobody", false),
            ("Practitioner", None, "Observation:performer", true),
            ("Patient", None, "Observation:performer", true),
        ] {
            let error = parse_include(searched, modifier, value, reverse, 4).expect_err(value);
            assert!(error.to_string().contains("query parameter 4") && !error.to_string().contains("Daffy"), "{error}");
        }
    }

    #[test]
    fn references_are_followed_locally_only() {
        let obs = json!({"resourceType": "Observation",
            "performer": [{"reference": "Practitioner/dr-1"}, {"reference": "Organization/org-1"},
                          {"reference": "Practitioner/dr-1"}, {"reference": "#contained"},
                          {"reference": "https://elsewhere.example/fhir/Practitioner/dr-2"},
                          {"reference": "Practitioner?identifier=x"}],
            "subject": {"reference": "Patient/p1"}});
        let all = parse_include("Observation", None, "Observation:performer", false, 1).expect("ok");
        assert_eq!(
            referenced(&obs, &all),
            vec![("Practitioner".into(), "dr-1".into()), ("Organization".into(), "org-1".into())]
        );
        let only = parse_include("Observation", None, "Observation:performer:Organization", false, 1).expect("ok");
        assert_eq!(referenced(&obs, &only), vec![("Organization".into(), "org-1".into())]);
        let enc = json!({"location": [{"location": {"reference": "Location/l1"}}]});
        let loc = parse_include("Encounter", None, "Encounter:location", false, 1).expect("ok");
        assert_eq!(referenced(&enc, &loc), vec![("Location".into(), "l1".into())]);
    }
}
