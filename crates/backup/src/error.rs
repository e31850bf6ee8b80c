use thiserror::Error;

/// What can go wrong reading or writing a backup. Messages name chunks, manifests, tables
/// and files, never their content.
#[derive(Debug, Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(String),
    #[error("the backup key is not usable: {0}")]
    Key(String),
    #[error("manifest {name}: {why}")]
    Manifest { name: String, why: String },
    #[error("chunk {id}: {why}")]
    Chunk { id: String, why: String },
    #[error("table {table}: {why}")]
    Table { table: String, why: String },
    #[error("{0}")]
    Repository(String),
    #[error("cryptography failed")]
    Crypto,
}

impl BackupError {
    pub(crate) fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        Self::Io(format!("{what}: {e}"))
    }
}
