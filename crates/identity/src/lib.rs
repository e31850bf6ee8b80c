//! phivault's identity domain: who is calling, and how sure we are.
//!
//! Accounts with Argon2id passwords checked against NIST SP 800-63B rules and a breached
//! password list; lockout and per-address throttling kept in the database (shared by every
//! server process); TOTP second factor with single-use codes and recovery codes; server-side
//! sessions and OAuth tokens stored only as digests, with automatic logoff. The storage port
//! [`IdentityStore`] is implemented by `phivault-store`. Nothing here knows HTTP or SQL.

pub mod approval;
mod error;
pub mod oauth;
mod password_policy;
mod policy;
mod ports;
mod role;
pub mod scopes;
mod sealed_store;
mod service;
mod tokens;
pub mod totp;
mod user;

pub use approval::{Approved, CredentialChange, CredentialRequest, RequestState, RequestSummary};
pub use error::IdentityError;
pub use password_policy::{PasswordPolicy, PasswordRejection, common_password_count, is_common_password};
pub use policy::IdentityPolicy;
pub use ports::{ClientKind, ClientRecord, IdentityStore, Spent};
pub use role::{Role, UnknownRole, format_roles, parse_roles};
pub use service::{
    Enrolment, Identity, LoginSubject, NewAccount, Principal, SessionGrant, SessionSummary, SessionView,
};
pub use tokens::{BearerSecret, LoginStage, TokenKind, TokenRecord};
pub use user::{UserRecord, UserStatus, UserSummary};
