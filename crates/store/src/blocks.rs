//! `blocks`: the addresses this console blocked on a host, until lifted or expired (for the
//! offenders' "blocked" column).

use rusqlite::{params, Connection};

use crate::Result;

pub(crate) const CREATE: &str = "CREATE TABLE blocks (
         id         INTEGER PRIMARY KEY,
         instance   TEXT NOT NULL,
         ip         TEXT NOT NULL,
         blocked_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         lifted_at  INTEGER
     ) STRICT;
     CREATE INDEX blocks_by_ip ON blocks (ip, expires_at);";

#[derive(Debug, Clone, Copy)]
pub struct Blocks<'a>(pub(crate) &'a Connection);

impl Blocks<'_> {
    pub fn placed(&self, instance: &str, ip: &str, now: i64, expires_at: i64) -> Result<()> {
        self.0.execute(
            "INSERT INTO blocks (instance, ip, blocked_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![instance, ip, now, expires_at],
        )?;
        Ok(())
    }

    pub fn lifted(&self, instance: &str, ip: &str, now: i64) -> Result<()> {
        self.0.execute(
            "UPDATE blocks SET lifted_at = ?3 WHERE instance = ?1 AND ip = ?2 AND lifted_at IS NULL",
            params![instance, ip, now],
        )?;
        Ok(())
    }

    /// Addresses blocked now (on any instance).
    pub fn active(&self, now: i64) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare(
            "SELECT DISTINCT ip FROM blocks WHERE lifted_at IS NULL AND expires_at > ?1",
        )?;
        let rows = stmt.query_map([now], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
