use phivault_crypto::CryptoError;
use phivault_ports::StoreError;

use crate::PasswordRejection;

/// Identity failures. Messages are safe to show the person at the keyboard: a failed login
/// never says whether the account exists, is locked, or only the password was wrong.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many failed sign-in attempts from this address; try again in {retry_after_s} seconds")]
    Throttled { retry_after_s: i64 },
    #[error("the code is wrong, expired or already used")]
    BadCode,
    /// Too many wrong codes after a correct password: the account is paused for a while
    /// and this sign-in ended. Said only to someone who has just given the password.
    #[error("too many wrong codes; sign-in is paused for a while, try again later")]
    LockedOut,
    #[error("not signed in, or the session ended; sign in again")]
    Unauthenticated,
    #[error("this step of the sign-in is not due now")]
    WrongStage,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error(transparent)]
    PasswordRejected(#[from] PasswordRejection),
    #[error("no such user")]
    NoSuchUser,
    #[error("no such client")]
    NoSuchClient,
    #[error("{0}")]
    Invalid(String),
    /// A second person's approval was asked of the requester or of the account holder.
    #[error("{0}")]
    SeparationOfDuties(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("cryptographic operation failed")]
    Crypto(#[from] CryptoError),
}
