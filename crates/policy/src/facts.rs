//! What an access decision is made from: facts about who asks, about the record, and about
//! the request. They hold ids, roles and labels only, never PHI values, so a decision (and
//! its explanation) can be logged whole.

use serde_json::Value;

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A signed-in person (directly, or through an app holding their access token).
    User(UserFacts),
    /// A backend service acting on its own behalf (SMART backend services).
    Client { client_id: String },
}

/// Facts about a signed-in user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    pub user_id: String,
    /// Role names as in `phivault user create --role` (`physician`, `front_desk`, ...).
    pub roles: Vec<String>,
    /// A patient account's own Patient id.
    pub own_patient: Option<String>,
    /// Patients whose care team the user is on.
    pub care_team: Vec<String>,
    /// Patients with a recent Encounter in one of the user's departments.
    pub department_patients: Vec<String>,
    /// Patients the user holds a live break-glass grant for.
    pub emergency_access: Vec<String>,
    /// Sensitive categories the user is cleared to see (`behavioral_health`, ...).
    pub cleared_categories: Vec<String>,
    pub mfa: bool,
    pub authentication_age_secs: i64,
    /// Whether the request comes through a third-party app's access token.
    pub via_app: bool,
}

/// Facts about a record, read from its resource (or, for a search's scope, assumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFacts {
    pub resource_type: String,
    pub id: Option<String>,
    /// The patient whose compartment holds it.
    pub patient: Option<String>,
    /// `meta.security` codes.
    pub labels: Vec<String>,
}

impl RecordFacts {
    /// Facts of `resource` (a FHIR resource of `resource_type` with id `id`), its compartment
    /// patient given by the caller (the service computes compartments once, for storage too).
    pub fn of(resource_type: &str, id: Option<&str>, patient: Option<String>, resource: &Value) -> Self {
        Self {
            resource_type: resource_type.to_owned(),
            id: id.map(str::to_owned),
            patient,
            labels: security_labels(resource),
        }
    }
}

/// The `meta.security` codes of a resource, sorted and without duplicates.
pub fn security_labels(resource: &Value) -> Vec<String> {
    let mut labels: Vec<String> = resource
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|coding| coding.get("code").and_then(Value::as_str))
        .filter(|code| !code.is_empty() && code.len() <= 64)
        .map(str::to_owned)
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// Facts about the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// Network zone of the client address (see [`crate::Zones`]).
    pub zone: String,
    /// Hour of day, 0-23, UTC.
    pub hour: i64,
    pub purpose_of_use: String,
}

impl Default for RequestFacts {
    fn default() -> Self {
        Self { zone: crate::zones::ANY_ZONE.into(), hour: 12, purpose_of_use: "treatment".into() }
    }
}

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Search,
    History,
    Create,
    Update,
    Delete,
    Export,
    BreakGlass,
    Erase,
    ManageUsers,
    ManageCareTeams,
    ReadAudit,
    ReviewBreakGlass,
    ManageSystem,
    /// Approve a credential change another administrator asked for (separation of duties).
    ApproveCredentials,
    /// Switch emergency read-only mode on or off (164.308(a)(7)(ii)(C)).
    SetEmergencyMode,
}

impl Action {
    /// Every action, in schema order.
    pub const ALL: [Action; 16] = [
        Action::Read,
        Action::Search,
        Action::History,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Export,
        Action::BreakGlass,
        Action::Erase,
        Action::ManageUsers,
        Action::ManageCareTeams,
        Action::ReadAudit,
        Action::ReviewBreakGlass,
        Action::ManageSystem,
        Action::ApproveCredentials,
        Action::SetEmergencyMode,
    ];

    /// The Cedar action name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Search => "search",
            Action::History => "history",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Export => "export",
            Action::BreakGlass => "break_glass",
            Action::Erase => "erase",
            Action::ManageUsers => "manage_users",
            Action::ManageCareTeams => "manage_care_teams",
            Action::ReadAudit => "read_audit",
            Action::ReviewBreakGlass => "review_break_glass",
            Action::ManageSystem => "manage_system",
            Action::ApproveCredentials => "approve_credentials",
            Action::SetEmergencyMode => "set_emergency_mode",
        }
    }

    /// Parses a Cedar action name.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// What the action applies to.
    pub fn target(self) -> TargetKind {
        match self {
            Action::Read
            | Action::Search
            | Action::History
            | Action::Create
            | Action::Update
            | Action::Delete
            | Action::Export => TargetKind::Record,
            Action::BreakGlass | Action::Erase => TargetKind::Patient,
            _ => TargetKind::System,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of thing an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Record,
    Patient,
    System,
}

/// What a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Record(RecordFacts),
    Patient(String),
    System,
}

/// The category a resource type belongs to, as policies see it (`resource.category`).
/// Types not named here are `clinical` when they can sit in a patient's compartment
/// and `other` when they are definitional (terminology, profiles, ...).
pub fn category(resource_type: &str) -> &'static str {
    match resource_type {
        "Patient" | "RelatedPerson" | "Person" => "demographics",
        "Appointment" | "AppointmentResponse" | "Schedule" | "Slot" => "scheduling",
        "Account"
        | "ChargeItem"
        | "Claim"
        | "ClaimResponse"
        | "Coverage"
        | "CoverageEligibilityRequest"
        | "CoverageEligibilityResponse"
        | "EnrollmentRequest"
        | "EnrollmentResponse"
        | "ExplanationOfBenefit"
        | "Invoice"
        | "PaymentNotice"
        | "PaymentReconciliation"
        | "InsurancePlan" => "financial",
        "Encounter" | "EpisodeOfCare" => "encounter",
        "DocumentReference"
        | "DocumentManifest"
        | "Binary"
        | "ClinicalImpression"
        | "Communication"
        | "CommunicationRequest"
        | "Composition"
        | "Media"
        | "QuestionnaireResponse" => "notes",
        "CareTeam" => "care_team",
        "Practitioner"
        | "PractitionerRole"
        | "Organization"
        | "OrganizationAffiliation"
        | "Location"
        | "HealthcareService"
        | "Endpoint" => "directory",
        "ActivityDefinition"
        | "CapabilityStatement"
        | "CodeSystem"
        | "CompartmentDefinition"
        | "ConceptMap"
        | "GraphDefinition"
        | "ImplementationGuide"
        | "Library"
        | "Measure"
        | "MessageDefinition"
        | "NamingSystem"
        | "OperationDefinition"
        | "PlanDefinition"
        | "Questionnaire"
        | "SearchParameter"
        | "StructureDefinition"
        | "StructureMap"
        | "TerminologyCapabilities"
        | "ValueSet"
        | "ObservationDefinition"
        | "SpecimenDefinition"
        | "ChargeItemDefinition"
        | "EventDefinition"
        | "ExampleScenario"
        | "TestScript"
        | "TestReport"
        | "Subscription"
        | "Bundle"
        | "OperationOutcome"
        | "Parameters"
        | "AuditEvent" => "other",
        _ => "clinical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_read_from_meta_security() {
        let r = json!({"meta": {"security": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
            {"code": "ETH"}, {"code": "PSY"}, {"display": "no code"}, {"code": ""}
        ]}});
        assert_eq!(security_labels(&r), ["ETH", "PSY"]);
        assert!(security_labels(&json!({"meta": {"security": "not a list"}})).is_empty());
    }

    #[test]
    fn categories_group_types() {
        assert_eq!(category("Patient"), "demographics");
        assert_eq!(category("Observation"), "clinical");
        assert_eq!(category("DocumentReference"), "notes");
        assert_eq!(category("Coverage"), "financial");
        assert_eq!(category("ValueSet"), "other");
        for action in Action::ALL {
            assert_eq!(Action::parse(action.name()), Some(action));
        }
    }
}
