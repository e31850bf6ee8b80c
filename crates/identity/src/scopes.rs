//! SMART on FHIR scopes (App Launch 2.x syntax, with the 1.0 `.read`/`.write` forms
//! understood). A scope narrows what the user's role allows; it never widens it.

use std::fmt;

/// Which kind of grant a clinical scope belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeContext {
    /// Data of the launch patient only.
    Patient,
    /// What the signed-in user may see.
    User,
    /// A backend service acting as itself.
    System,
}

/// SMART v2 permissions: create, read, update, delete, search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub const CREATE: Self = Self(1);
    pub const READ: Self = Self(2);
    pub const UPDATE: Self = Self(4);
    pub const DELETE: Self = Self(8);
    pub const SEARCH: Self = Self(16);
    pub const NONE: Self = Self(0);
    pub const ALL: Self = Self(31);

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => return Some(Self(Self::READ.0 | Self::SEARCH.0)),
            "write" => return Some(Self(Self::CREATE.0 | Self::UPDATE.0 | Self::DELETE.0)),
            "*" => return Some(Self::ALL),
            _ => {}
        }
        // v2: letters in the order c, r, u, d, s, each at most once.
        let mut bits = 0u8;
        let mut last = 0u8;
        for c in text.chars() {
            let bit = match c {
                'c' => 1,
                'r' => 2,
                'u' => 4,
                'd' => 8,
                's' => 16,
                _ => return None,
            };
            if bit <= last {
                return None;
            }
            last = bit;
            bits |= bit;
        }
        (bits != 0).then_some(Self(bits))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(1, 'c'), (2, 'r'), (4, 'u'), (8, 'd'), (16, 's')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One clinical scope, e.g. `patient/Observation.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicalScope {
    pub context: ScopeContext,
    /// `None` for `*` (every resource type).
    pub resource_type: Option<String>,
    pub permissions: Permissions,
}

impl ClinicalScope {
    fn parse(text: &str) -> Option<Self> {
        let (context, rest) = text.split_once('/')?;
        let context = match context {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            _ => return None,
        };
        // Scopes narrowed by search parameters (`?category=...`) are not granted: phivault
        // cannot yet enforce them, and granting the unqualified scope would widen access.
        if rest.contains('?') {
            return None;
        }
        let (resource, perms) = rest.split_once('.')?;
        let resource_type = match resource {
            "*" => None,
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()) => Some(t.to_owned()),
            _ => return None,
        };
        Some(Self { context, resource_type, permissions: Permissions::parse(perms)? })
    }

    fn covers_type(&self, resource_type: &str) -> bool {
        self.resource_type.as_deref().is_none_or(|t| t == resource_type)
    }
}

impl fmt::Display for ClinicalScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context = match self.context {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        };
        write!(f, "{context}/{}.{}", self.resource_type.as_deref().unwrap_or("*"), self.permissions)
    }
}

/// The scopes of a request or grant. Unknown or malformed scopes are dropped (RFC 6749
/// lets a server grant less than asked; the token response says what was granted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    pub clinical: Vec<ClinicalScope>,
    pub openid: bool,
    pub fhir_user: bool,
    pub launch_patient: bool,
    pub offline_access: bool,
    pub online_access: bool,
}

impl ScopeSet {
    pub fn parse(text: &str) -> Self {
        let mut set = ScopeSet::default();
        for scope in text.split_ascii_whitespace() {
            match scope {
                "openid" => set.openid = true,
                "fhirUser" => set.fhir_user = true,
                "launch/patient" => set.launch_patient = true,
                "offline_access" => set.offline_access = true,
                "online_access" => set.online_access = true,
                other => {
                    if let Some(c) = ClinicalScope::parse(other)
                        && !set.clinical.contains(&c)
                    {
                        set.clinical.push(c);
                    }
                }
            }
        }
        set
    }

    /// The part of `self` (requested) that `allowed` (a client's registration, or what the
    /// user's role permits) covers, permission by permission.
    pub fn narrow_to(&self, allowed: &ScopeSet) -> ScopeSet {
        let mut clinical: Vec<ClinicalScope> = Vec::new();
        for wanted in &self.clinical {
            for a in allowed.clinical.iter().filter(|a| a.context == wanted.context) {
                // A wildcard request meets a typed allowance in that type; a typed request
                // meets a wildcard or same-type allowance in its own type.
                let resource_type = match (&wanted.resource_type, &a.resource_type) {
                    (w, None) => w.clone(),
                    (None, Some(t)) => Some(t.clone()),
                    (Some(w), Some(t)) if w == t => Some(w.clone()),
                    _ => continue,
                };
                let permissions = wanted.permissions.intersect(a.permissions);
                if permissions.is_empty() {
                    continue;
                }
                match clinical.iter_mut().find(|c| c.context == wanted.context && c.resource_type == resource_type) {
                    Some(existing) => existing.permissions = existing.permissions.union(permissions),
                    None => clinical.push(ClinicalScope { context: wanted.context, resource_type, permissions }),
                }
            }
        }
        ScopeSet {
            clinical,
            openid: self.openid && allowed.openid,
            fhir_user: self.fhir_user && allowed.fhir_user,
            launch_patient: self.launch_patient && allowed.launch_patient,
            offline_access: self.offline_access && allowed.offline_access,
            online_access: self.online_access && allowed.online_access,
        }
    }

    /// Whether some scope of `context` grants `needed` on `resource_type`.
    pub fn allows(&self, context: ScopeContext, resource_type: &str, needed: Permissions) -> bool {
        self.clinical
            .iter()
            .any(|s| s.context == context && s.covers_type(resource_type) && s.permissions.contains(needed))
    }

    /// The contexts this set's clinical scopes use.
    pub fn contexts(&self) -> Vec<ScopeContext> {
        let mut c: Vec<ScopeContext> = self.clinical.iter().map(|s| s.context).collect();
        c.sort();
        c.dedup();
        c
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        for (on, name) in [
            (self.openid, "openid"),
            (self.fhir_user, "fhirUser"),
            (self.launch_patient, "launch/patient"),
            (self.offline_access, "offline_access"),
            (self.online_access, "online_access"),
        ] {
            if on {
                parts.push(name.to_owned());
            }
        }
        parts.extend(self.clinical.iter().map(ToString::to_string));
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v2_and_v1_forms_and_drops_the_rest() {
        let s = ScopeSet::parse(
            "openid fhirUser launch/patient patient/Observation.rs user/*.read system/Patient.cruds bogus user/Observation.rsx patient/Observation.rs?category=laboratory user/Patient.sr",
        );
        assert!(s.openid && s.fhir_user && s.launch_patient);
        assert_eq!(
            s.to_string(),
            "openid fhirUser launch/patient patient/Observation.rs user/*.rs system/Patient.cruds"
        );
        assert!(s.allows(ScopeContext::Patient, "Observation", Permissions::READ));
        assert!(!s.allows(ScopeContext::Patient, "Observation", Permissions::CREATE));
        assert!(!s.allows(ScopeContext::Patient, "Condition", Permissions::READ));
        assert!(s.allows(ScopeContext::User, "Condition", Permissions::SEARCH));
        assert!(!s.allows(ScopeContext::User, "Condition", Permissions::UPDATE));
    }

    #[test]
    fn narrowing_never_widens() {
        let requested = ScopeSet::parse("openid user/*.cruds patient/Observation.rs offline_access");
        let allowed = ScopeSet::parse("openid user/Observation.rs user/Patient.r patient/*.r");
        let granted = requested.narrow_to(&allowed);
        assert_eq!(granted.to_string(), "openid user/Observation.rs user/Patient.r patient/Observation.r");
        assert!(!granted.allows(ScopeContext::User, "Condition", Permissions::READ));
        assert!(!granted.offline_access, "not in the allowance");
        let everything = ScopeSet::parse("user/*.cruds");
        assert_eq!(ScopeSet::parse("user/Patient.rs").narrow_to(&everything).to_string(), "user/Patient.rs");
        assert_eq!(ScopeSet::parse("system/Patient.rs").narrow_to(&everything).to_string(), "", "contexts do not mix");
    }
}
