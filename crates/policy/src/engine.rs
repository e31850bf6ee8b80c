//! The policy set: Cedar policies validated against phivault's schema, their views, and
//! decisions that name the policies that determined them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::facts::{Action, RecordFacts, RequestFacts, Subject, Target, UserFacts, category};
use crate::view::{FieldMask, Views};
use crate::{PolicyError, Retention, defaults};

/// One policy file: its name (for messages) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    pub name: String,
    pub text: String,
}

/// A subject ready for many decisions ([`Policies::prepare`]).
#[derive(Debug, Clone)]
pub struct PreparedSubject {
    uid: EntityUid,
    entities: Entities,
}

/// What a decision says, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The policies that determined it: for an allow, the permits that matched; for a
    /// deny, the forbids that matched (empty when nothing permitted: default deny).
    pub policy_ids: Vec<String>,
    /// Fields to remove from what is shown (empty: everything).
    pub mask: FieldMask,
    /// A de-identification profile the output must go through (`@deidentify`).
    pub deidentify: Option<String>,
    /// Policies that could not be evaluated for this request (they count as not matching).
    pub errors: Vec<String>,
}

impl Decision {
    fn denied(errors: Vec<String>) -> Self {
        Self { allowed: false, policy_ids: Vec::new(), mask: FieldMask::default(), deidentify: None, errors }
    }

    /// The determining policy ids joined for an audit entry: `policy:a,b`, or
    /// `policy:default-deny`.
    pub fn audit_reason(&self) -> String {
        if self.policy_ids.is_empty() {
            "policy:default-deny".into()
        } else {
            format!("policy:{}", self.policy_ids.join(","))
        }
    }
}

/// A validated policy set with its views. Immutable: reloading builds a new one.
#[derive(Debug, Clone)]
pub struct Policies {
    set: cedar_policy::PolicySet,
    /// For each action, only the policies whose action scope admits it: the same decisions
    /// (a policy scoped to other actions never matches), at a fraction of the evaluation.
    by_action: HashMap<Action, cedar_policy::PolicySet>,
    views: Views,
    retention: Retention,
    /// Policy id → file it came from.
    origins: BTreeMap<String, String>,
    /// Policy id → its `@view` and `@deidentify` annotations, read once: looking an
    /// annotation up in the set costs more than the rest of an allow's bookkeeping.
    annotations: HashMap<String, (Option<String>, Option<String>)>,
    /// Whether some policy names a record by its id (`PhiVault::Record::"..."`): only
    /// then can two records with the same facts get different decisions.
    names_records: bool,
}

/// The schema's entity type names, parsed once: parsing one costs a run of Cedar's
/// parser, and a decision names dozens of entities.
static TYPE_NAMES: std::sync::LazyLock<HashMap<&'static str, EntityTypeName>> = std::sync::LazyLock::new(|| {
    ["User", "Client", "Role", "Patient", "Record", "System", "Action"]
        .into_iter()
        .map(|name| {
            #[expect(clippy::expect_used, reason = "the names are constants of the built-in schema")]
            let parsed = EntityTypeName::from_str(&format!("PhiVault::{name}")).expect("a valid Cedar type name");
            (name, parsed)
        })
        .collect()
});

fn type_name(name: &str) -> EntityTypeName {
    match TYPE_NAMES.get(name) {
        Some(parsed) => parsed.clone(),
        #[expect(clippy::expect_used, reason = "only the schema's names are asked for")]
        None => EntityTypeName::from_str(&format!("PhiVault::{name}")).expect("a valid Cedar type name"),
    }
}

fn uid(type_: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(type_), EntityId::new(id))
}

fn action_uid(action: Action) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name("Action"), EntityId::new(action.name()))
}

fn string_set(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().map(|s| RestrictedExpression::new_string(s.clone())))
}

fn patient_set(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().map(|p| RestrictedExpression::new_entity_uid(uid("Patient", p))))
}

impl Policies {
    /// The policies shipped with phivault.
    pub fn defaults() -> Result<Self, PolicyError> {
        Self::from_sources(&defaults::policy_sources(), defaults::VIEWS)
    }

    /// Replaces the retention periods (from `retention.toml`).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The retention periods.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// Policies from a directory: every `*.cedar` file, and `views.toml` if present.
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read_error = |e: std::io::Error| PolicyError::Config(format!("cannot read {}: {e}", dir.display()));
        let mut sources = Vec::new();
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).map_err(read_error)?.collect::<Result<_, _>>().map_err(read_error)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "cedar") {
                let text = std::fs::read_to_string(&path).map_err(read_error)?;
                sources.push(PolicySource { name: entry.file_name().to_string_lossy().into_owned(), text });
            }
        }
        if sources.is_empty() {
            return Err(PolicyError::Config(format!("{} holds no .cedar policy files", dir.display())));
        }
        let views = match std::fs::read_to_string(dir.join("views.toml")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(read_error(e)),
        };
        let retention = match std::fs::read_to_string(dir.join("retention.toml")) {
            Ok(text) => Retention::parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Retention::parse(defaults::RETENTION)?,
            Err(e) => return Err(read_error(e)),
        };
        Ok(Self::from_sources(&sources, &views)?.with_retention(retention))
    }

    /// Parses and validates `sources` (strict mode, against the built-in schema). Every
    /// policy needs a unique `@id`, and every `@view` must name a view in `views`.
    /// All problems are reported together.
    pub fn from_sources(sources: &[PolicySource], views: &str) -> Result<Self, PolicyError> {
        let schema = Self::schema()?;
        let views = Views::parse(views)?;
        let mut problems = Vec::new();
        let mut set = cedar_policy::PolicySet::new();
        let mut origins = BTreeMap::new();
        for source in sources {
            let parsed = match cedar_policy::PolicySet::from_str(&source.text) {
                Ok(parsed) => parsed,
                Err(e) => {
                    problems.push(format!("{}: {e}", source.name));
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(format!("{}: policy templates are not supported", source.name));
            }
            for policy in parsed.policies() {
                let Some(id) = policy.annotation("id") else {
                    problems.push(format!("{}: every policy needs an @id(\"...\") annotation", source.name));
                    continue;
                };
                if let Some(view) = policy.annotation("view")
                    && views.get(view).is_none()
                {
                    problems.push(format!(
                        "{}: policy {id} names view `{view}`, which views.toml does not define",
                        source.name
                    ));
                }
                if let Some(earlier) = origins.insert(id.to_owned(), source.name.clone()) {
                    problems.push(format!("{}: policy id `{id}` is also used in {earlier}", source.name));
                    continue;
                }
                if let Err(e) = set.add(policy.new_id(PolicyId::new(id))) {
                    problems.push(format!("{}: {e}", source.name));
                }
            }
        }
        // Validated once here; requests are then built by this crate to the schema's shape.
        let validation = Validator::new(schema).validate(&set, ValidationMode::Strict);
        for error in validation.validation_errors() {
            let file = origins.get(AsRef::<str>::as_ref(error.policy_id())).map_or("?", String::as_str);
            problems.push(format!("{file}: policy {}: {error}", error.policy_id()));
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        let retention = Retention::parse(defaults::RETENTION)?;
        let by_action = by_action(&set).map_err(|e| PolicyError::Invalid(vec![e]))?;
        let annotations = set
            .policies()
            .map(|p| {
                let own = |key: &str| p.annotation(key).map(str::to_owned);
                (p.id().to_string(), (own("view"), own("deidentify")))
            })
            .collect();
        // From the parsed policy, not its text: a comment may sit between any two tokens.
        let record_type = type_name("Record");
        let names_records =
            set.policies().any(|p| p.entity_literals().iter().any(|uid| uid.type_name() == &record_type));
        Ok(Self { set, views, retention, origins, by_action, annotations, names_records })
    }

    /// Whether a record's decision follows from its facts alone (type, category, patient,
    /// labels) and not its id: true unless some policy names a record by id. The access
    /// layer then decides once per distinct set of facts in a request.
    pub fn decisions_follow_record_facts(&self) -> bool {
        !self.names_records
    }

    /// The built-in schema. Operators replace policies, not the schema: the server fills in
    /// exactly these attributes.
    pub fn schema() -> Result<Schema, PolicyError> {
        Schema::from_cedarschema_str(defaults::SCHEMA)
            .map(|(schema, _warnings)| schema)
            .map_err(|e| PolicyError::Invalid(vec![format!("schema: {e}")]))
    }

    /// The ids of every policy, with the file each came from.
    pub fn policy_ids(&self) -> impl Iterator<Item = (&str, &str)> {
        self.origins.iter().map(|(id, file)| (id.as_str(), file.as_str()))
    }

    /// The text of one policy.
    pub fn policy_text(&self, id: &str) -> Option<String> {
        self.set.policy(&PolicyId::new(id)).map(ToString::to_string)
    }

    /// The views the policies can name.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// Decides whether `subject` may do `action` on `target`. Anything that cannot be
    /// evaluated (a malformed fact, a target of the wrong kind) is a deny.
    pub fn decide(&self, subject: &Subject, action: Action, target: &Target, request: &RequestFacts) -> Decision {
        match self.prepare(subject) {
            Ok(prepared) => self.decide_prepared(&prepared, action, target, request),
            Err(e) => Decision::denied(vec![e]),
        }
    }

    /// The subject's Cedar entity, built once for the many decisions of one request (a
    /// search decides every result): building a care team of hundreds is the costly part.
    pub fn prepare(&self, subject: &Subject) -> Result<PreparedSubject, String> {
        let entity = match subject {
            Subject::User(user) => user_entity(user)?,
            Subject::Client { client_id } => Entity::new_no_attrs(uid("Client", client_id), HashSet::new()),
        };
        let uid = entity.uid();
        let entities = Entities::from_entities([entity], None).map_err(|e| e.to_string())?;
        Ok(PreparedSubject { uid, entities })
    }

    /// [`Policies::decide`] for a prepared subject.
    pub fn decide_prepared(
        &self,
        subject: &PreparedSubject,
        action: Action,
        target: &Target,
        request: &RequestFacts,
    ) -> Decision {
        match self.evaluate(subject, action, target, request) {
            Ok(decision) => decision,
            Err(e) => Decision::denied(vec![e]),
        }
    }

    fn evaluate(
        &self,
        subject: &PreparedSubject,
        action: Action,
        target: &Target,
        request: &RequestFacts,
    ) -> Result<Decision, String> {
        let principal = subject.uid.clone();
        let (resource, entities) = match target {
            Target::Record(record) => {
                let entity = record_entity(record)?;
                let id = entity.uid();
                let entities = subject.entities.clone().add_entities([entity], None).map_err(|e| e.to_string())?;
                (id, entities)
            }
            Target::Patient(patient) => (uid("Patient", patient), subject.entities.clone()),
            Target::System => (uid("System", "phivault"), subject.entities.clone()),
        };
        let context = Context::from_pairs([
            ("zone".to_owned(), RestrictedExpression::new_string(request.zone.clone())),
            ("hour".to_owned(), RestrictedExpression::new_long(request.hour)),
            ("purpose_of_use".to_owned(), RestrictedExpression::new_string(request.purpose_of_use.clone())),
        ])
        .map_err(|e| e.to_string())?;
        let cedar_request =
            Request::new(principal, action_uid(action), resource, context, None).map_err(|e| e.to_string())?;
        let set = self.by_action.get(&action).unwrap_or(&self.set);
        let response = Authorizer::new().is_authorized(&cedar_request, set, &entities);
        let mut policy_ids: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        policy_ids.sort();
        let errors: Vec<String> = response.diagnostics().errors().map(ToString::to_string).collect();
        if response.decision() != CedarDecision::Allow {
            return Ok(Decision { allowed: false, policy_ids, mask: FieldMask::default(), deidentify: None, errors });
        }
        // Each permit alone would grant its own view; together they grant the union of
        // what each shows, so a field stays masked only if every permit masks it.
        let mut mask: Option<FieldMask> = None;
        let mut deidentify: Option<String> = None;
        let mut every_permit_deidentifies = true;
        for id in &policy_ids {
            let (view_name, deidentify_profile) =
                self.annotations.get(id).map_or((None, None), |(v, d)| (v.as_deref(), d.as_deref()));
            let view = view_name.and_then(|v| self.views.get(v)).cloned().unwrap_or_default();
            mask = Some(match mask {
                None => view,
                Some(m) => m.intersect(&view),
            });
            match deidentify_profile {
                Some(profile) => deidentify = Some(profile.to_owned()),
                None => every_permit_deidentifies = false,
            }
        }
        Ok(Decision {
            allowed: true,
            policy_ids,
            mask: mask.unwrap_or_default(),
            deidentify: if every_permit_deidentifies { deidentify } else { None },
            errors,
        })
    }
}

/// Splits `set` by the actions each policy's scope admits (the schema has no action groups,
/// so `action in [...]` admits exactly the listed actions).
fn by_action(set: &cedar_policy::PolicySet) -> Result<HashMap<Action, cedar_policy::PolicySet>, String> {
    let mut split: HashMap<Action, cedar_policy::PolicySet> =
        Action::ALL.iter().map(|a| (*a, cedar_policy::PolicySet::new())).collect();
    for policy in set.policies() {
        let admitted: Vec<Action> = match policy.action_constraint() {
            cedar_policy::ActionConstraint::Any => Action::ALL.to_vec(),
            cedar_policy::ActionConstraint::Eq(uid) => Action::parse(uid.id().unescaped()).into_iter().collect(),
            cedar_policy::ActionConstraint::In(uids) => {
                uids.iter().filter_map(|uid| Action::parse(uid.id().unescaped())).collect()
            }
        };
        for action in admitted {
            if let Some(subset) = split.get_mut(&action) {
                subset.add(policy.clone()).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(split)
}

fn user_entity(user: &UserFacts) -> Result<Entity, String> {
    let mut attrs: HashMap<String, RestrictedExpression> = HashMap::from([
        ("care_team".to_owned(), patient_set(&user.care_team)),
        ("department_patients".to_owned(), patient_set(&user.department_patients)),
        ("emergency_access".to_owned(), patient_set(&user.emergency_access)),
        ("cleared_categories".to_owned(), string_set(&user.cleared_categories)),
        ("mfa".to_owned(), RestrictedExpression::new_bool(user.mfa)),
        ("authentication_age_secs".to_owned(), RestrictedExpression::new_long(user.authentication_age_secs)),
        ("via_app".to_owned(), RestrictedExpression::new_bool(user.via_app)),
    ]);
    if let Some(own) = &user.own_patient {
        attrs.insert("own_patient".to_owned(), RestrictedExpression::new_entity_uid(uid("Patient", own)));
    }
    let roles = user.roles.iter().map(|r| uid("Role", r)).collect();
    Entity::new(uid("User", &user.user_id), attrs, roles).map_err(|e| e.to_string())
}

fn record_entity(record: &RecordFacts) -> Result<Entity, String> {
    let id = match &record.id {
        Some(id) => format!("{}/{id}", record.resource_type),
        None => format!("{}/(new)", record.resource_type),
    };
    let mut attrs: HashMap<String, RestrictedExpression> = HashMap::from([
        ("type".to_owned(), RestrictedExpression::new_string(record.resource_type.clone())),
        ("category".to_owned(), RestrictedExpression::new_string(category(&record.resource_type).to_owned())),
        ("labels".to_owned(), string_set(&record.labels)),
    ]);
    if let Some(patient) = &record.patient {
        attrs.insert("patient".to_owned(), RestrictedExpression::new_entity_uid(uid("Patient", patient)));
    }
    Entity::new(uid("Record", &id), attrs, HashSet::new()).map_err(|e| e.to_string())
}
