//! Decision tables: (principal, action, resource) → expected decision, as TOML. One ships
//! with the default policies (`defaults/cases.toml`); operators add their own and run them
//! with `phivault policy test` before loading changed policies.

use serde::Deserialize;

use crate::facts::{Action, RecordFacts, RequestFacts, Subject, Target, TargetKind, UserFacts};
use crate::{Policies, PolicyError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

/// One row of a decision table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub principal: CasePrincipal,
    pub action: String,
    /// For record actions.
    #[serde(default)]
    pub resource: Option<CaseRecord>,
    /// For patient actions (break_glass, erase).
    #[serde(default)]
    pub patient: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    /// The request's purpose of use (`treatment` when not given).
    #[serde(default)]
    pub purpose: Option<String>,
    /// `allow` or `deny`.
    pub expect: String,
    /// With `allow`: the view expected (names of the views whose mask applies), if any.
    #[serde(default)]
    pub view: Option<String>,
}

/// The principal of a case: a user (roles and relationships) or a backend client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePrincipal {
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub own_patient: Option<String>,
    #[serde(default)]
    pub care_team: Vec<String>,
    #[serde(default)]
    pub department_patients: Vec<String>,
    #[serde(default)]
    pub emergency_access: Vec<String>,
    #[serde(default)]
    pub cleared_categories: Vec<String>,
    #[serde(default = "yes")]
    pub mfa: bool,
    #[serde(default)]
    pub authentication_age_secs: i64,
    /// A backend service instead of a user.
    #[serde(default)]
    pub client: Option<String>,
}

fn yes() -> bool {
    true
}

/// The record of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRecord {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default)]
    pub patient: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// What was decided, with the determining policies (`allow by a,b`).
    pub got: String,
    pub expected: String,
}

/// Parses a decision table.
pub fn parse(text: &str) -> Result<Vec<Case>, PolicyError> {
    let file: CaseFile = toml::from_str(text).map_err(|e| PolicyError::Config(format!("cases: {}", e.message())))?;
    for case in &file.cases {
        case.request()?;
    }
    Ok(file.cases)
}

impl CasePrincipal {
    /// The subject this principal stands for.
    pub fn subject(&self) -> Subject {
        if let Some(client_id) = &self.client {
            return Subject::Client { client_id: client_id.clone() };
        }
        Subject::User(UserFacts {
            user_id: "case-user".into(),
            roles: self.roles.clone(),
            own_patient: self.own_patient.clone(),
            care_team: self.care_team.clone(),
            department_patients: self.department_patients.clone(),
            emergency_access: self.emergency_access.clone(),
            cleared_categories: self.cleared_categories.clone(),
            mfa: self.mfa,
            authentication_age_secs: self.authentication_age_secs,
            via_app: false,
        })
    }
}

impl Case {
    /// The request this case describes: subject, action, target, request facts.
    pub fn request(&self) -> Result<(Subject, Action, Target, RequestFacts), PolicyError> {
        let bad = |why: &str| PolicyError::Config(format!("case `{}`: {why}", self.name));
        let action = Action::parse(&self.action).ok_or_else(|| bad("unknown action"))?;
        let target = match (action.target(), &self.resource, &self.patient) {
            (TargetKind::Record, Some(r), None) => Target::Record(RecordFacts {
                resource_type: r.resource_type.clone(),
                id: Some("case-record".into()),
                patient: r.patient.clone(),
                labels: r.labels.clone(),
            }),
            (TargetKind::Patient, None, Some(p)) => Target::Patient(p.clone()),
            (TargetKind::System, None, None) => Target::System,
            (TargetKind::Record, ..) => return Err(bad("a record action needs `resource` (and no `patient`)")),
            (TargetKind::Patient, ..) => return Err(bad("a patient action needs `patient` (and no `resource`)")),
            (TargetKind::System, ..) => return Err(bad("a system action takes no `resource` or `patient`")),
        };
        if !matches!(self.expect.as_str(), "allow" | "deny") {
            return Err(bad("`expect` must be allow or deny"));
        }
        let mut facts = RequestFacts::default();
        if let Some(purpose) = &self.purpose {
            facts.purpose_of_use = purpose.clone();
        }
        if let Some(zone) = &self.zone {
            facts.zone = zone.clone();
        }
        Ok((self.principal.subject(), action, target, facts))
    }
}

/// Runs every case against `policies`.
pub fn run(policies: &Policies, cases: &[Case]) -> Result<Vec<CaseResult>, PolicyError> {
    let mut results = Vec::new();
    for case in cases {
        let (subject, action, target, facts) = case.request()?;
        let decision = policies.decide(&subject, action, &target, &facts);
        let verdict = if decision.allowed { "allow" } else { "deny" };
        let view = decision.mask.views.join("+");
        let view_matches = !decision.allowed || case.view.as_deref().unwrap_or("") == view;
        let mut got = format!("{verdict} ({})", decision.audit_reason());
        if !view.is_empty() {
            got.push_str(&format!(" view {view}"));
        }
        let expected = match &case.view {
            Some(v) => format!("{} view {v}", case.expect),
            None => case.expect.clone(),
        };
        results.push(CaseResult {
            name: case.name.clone(),
            passed: verdict == case.expect && view_matches,
            got,
            expected,
        });
    }
    Ok(results)
}
