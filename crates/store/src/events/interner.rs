//! Strings from hosts (addresses, paths, actors, key prefixes, messages, sources) stored
//! once each in `strings` and referred to by id; new ones join the full-text index.

use rusqlite::params;

use super::HashMap;

/// Interning within one transaction: new strings are inserted and remembered, and added to
/// the full-text index at the end.
pub(super) struct Interner<'t, 'c> {
    tx: &'t rusqlite::Transaction<'c>,
    insert: rusqlite::CachedStatement<'t>,
    interned: &'t mut HashMap<String, i64>,
    names: &'t mut HashMap<i64, String>,
    new: Vec<i64>,
}

impl<'t, 'c> Interner<'t, 'c> {
    pub(super) fn new(
        tx: &'t rusqlite::Transaction<'c>,
        interned: &'t mut HashMap<String, i64>,
        names: &'t mut HashMap<i64, String>,
    ) -> rusqlite::Result<Self> {
        Ok(Interner {
            tx,
            insert: tx.prepare_cached("INSERT OR IGNORE INTO strings (value) VALUES (?1)")?,
            interned,
            names,
            new: Vec::new(),
        })
    }

    pub(super) fn intern(&mut self, value: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.interned.get(value) {
            return Ok(*id);
        }
        // Another process may have added it since the cache was filled.
        if self.insert.execute([value])? == 0 {
            let id =
                self.tx
                    .query_row("SELECT id FROM strings WHERE value = ?1", [value], |r| {
                        r.get(0)
                    })?;
            self.interned.insert(value.to_owned(), id);
            self.names.insert(id, value.to_owned());
            return Ok(id);
        }
        let id = self.tx.last_insert_rowid();
        self.interned.insert(value.to_owned(), id);
        self.names.insert(id, value.to_owned());
        self.new.push(id);
        Ok(id)
    }

    pub(super) fn intern_opt(&mut self, value: &Option<String>) -> rusqlite::Result<Option<i64>> {
        value.as_deref().map(|v| self.intern(v)).transpose()
    }

    pub(super) fn index_new_strings(&mut self) -> rusqlite::Result<()> {
        let mut fts = self
            .tx
            .prepare_cached("INSERT INTO strings_fts (rowid, value) VALUES (?1, ?2)")?;
        for id in self.new.drain(..) {
            if let Some(value) = self.names.get(&id) {
                fts.execute(params![id, value])?;
            }
        }
        Ok(())
    }
}
