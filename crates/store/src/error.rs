//! What can go wrong in the store. The console maps each to its own error codes.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed (a full disk, a locked file, a damaged database).
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The database was written by a newer Gatehouse.
    #[error("schema version {found} is newer than the {supported} this build understands")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// Stored data that cannot be read back (a damaged raw-line block, a value no build
    /// writes).
    #[error("stored data is damaged: {0}")]
    Damaged(String),
}
