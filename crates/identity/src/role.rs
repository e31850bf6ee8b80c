//! Roles. A user holds one or more; what each may do with PHI is decided by the policy
//! layer, but some identity rules (MFA, idle timeout) are set per role here.

use std::fmt;
use std::str::FromStr;

/// A role a user account can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Admin,
    Physician,
    Nurse,
    FrontDesk,
    Billing,
    Researcher,
    PrivacyOfficer,
    /// A patient; the account is linked to its Patient resource.
    Patient,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Physician,
        Role::Nurse,
        Role::FrontDesk,
        Role::Billing,
        Role::Researcher,
        Role::PrivacyOfficer,
        Role::Patient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Physician => "physician",
            Role::Nurse => "nurse",
            Role::FrontDesk => "front_desk",
            Role::Billing => "billing",
            Role::Researcher => "researcher",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Patient => "patient",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}; roles are admin, physician, nurse, front_desk, billing, researcher, privacy_officer, patient"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Parses a comma-separated role list (as stored, or as typed on the command line).
pub fn parse_roles(list: &str) -> Result<Vec<Role>, UnknownRole> {
    let mut roles: Vec<Role> =
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Role::from_str).collect::<Result<_, _>>()?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// The stored form of a role list.
pub fn format_roles(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_is_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(parse_roles("nurse, physician,nurse").expect("roles"), vec![Role::Physician, Role::Nurse]);
        assert_eq!(parse_roles("nurse,superuser"), Err(UnknownRole("superuser".into())));
        assert_eq!(format_roles(&[Role::Admin, Role::PrivacyOfficer]), "admin,privacy_officer");
    }
}
