//! `settings`: the operator's preferences and the console's small configuration values, as
//! text by key.

use rusqlite::{Connection, OptionalExtension};

use crate::Result;

pub(crate) const CREATE: &str = "CREATE TABLE settings (
         key   TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     ) STRICT;";

#[derive(Debug, Clone, Copy)]
pub struct Settings<'a>(pub(crate) &'a Connection);

impl Settings<'_> {
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }
}
