//! The embedded store (SQLite in the data folder): API keys, kept hashed, and what the server
//! knows of its sessions beyond their containers' labels (owner, name, expiry that moved,
//! environment), so a restarted server keeps its promises.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::keys::{key_hash, mint_key, random_hex, KeyStore};

/// One API key, as listed (the key itself is shown once, when made, and never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct KeyInfo {
    /// Its id, for `keys revoke`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last request with it.
    pub last_used: Option<u64>,
}

/// What the server keeps of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session id.
    pub id: String,
    /// The key that made it.
    pub owner: String,
    /// Its name, unique per owner.
    pub name: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds when it closes.
    pub expires_at: u64,
    /// Seconds without a call before it closes (or pauses).
    pub idle_timeout: u64,
    /// Unix seconds of the last call.
    pub last_used: u64,
    /// Caller's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Its environment, as last set.
    pub env: BTreeMap<String, String>,
    /// Default timeout of each run, in milliseconds.
    pub run_timeout_ms: u64,
    /// Unix seconds since it was paused, when it is.
    pub paused_since: Option<u64>,
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Mutex<Connection>>,
    /// The server's secret, once read.
    secret: Arc<std::sync::OnceLock<Vec<u8>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// How a key is written. Every format is an ordinary key everywhere; only its look differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyFormat {
    /// `sp_` and 40 hex digits.
    #[default]
    Sandpit,
    /// `e2b_` and 40 hex digits: E2B's SDKs (2.25 to 2.45) refuse a key not matching
    /// `^e2b_[0-9a-f]+$` before they send anything.
    E2b,
}

impl KeyFormat {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            KeyFormat::Sandpit => "sp_",
            KeyFormat::E2b => "e2b_",
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Store {
    /// Opens (and makes, the first time) `data_dir/sandpit.db`.
    pub fn open(data_dir: &Path) -> ServiceResult<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            ServiceError::invalid(format!(
                "cannot make the data folder {}: {e}; choose another with --data-dir",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("sandpit.db");
        let db = Connection::open(&path)
            .map_err(|e| ServiceError::invalid(format!("cannot open {}: {e}", path.display())))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS keys (
                 id TEXT PRIMARY KEY, name TEXT NOT NULL, prefix TEXT NOT NULL,
                 hash TEXT NOT NULL UNIQUE, created INTEGER NOT NULL, last_used INTEGER,
                 revoked INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS sessions (
                 id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, created INTEGER NOT NULL,
                 expires_at INTEGER NOT NULL, idle_timeout INTEGER NOT NULL,
                 last_used INTEGER NOT NULL, metadata TEXT NOT NULL, env TEXT NOT NULL,
                 run_timeout_ms INTEGER NOT NULL, paused_since INTEGER);
             CREATE TABLE IF NOT EXISTS server (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS lost (
                 id TEXT PRIMARY KEY, owner TEXT NOT NULL, reason TEXT NOT NULL,
                 at INTEGER NOT NULL);",
        )?;
        Ok(Store {
            db: Arc::new(Mutex::new(db)),
            secret: Arc::default(),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().expect("store lock")
    }

    /// This data folder's server id (made once): labels tell its sessions from others'.
    pub fn server_id(&self) -> ServiceResult<String> {
        let db = self.db();
        if let Some(id) = db
            .query_row("SELECT value FROM server WHERE key = 'id'", [], |r| {
                r.get(0)
            })
            .optional()?
        {
            return Ok(id);
        }
        let id = random_hex(6)?;
        db.execute("INSERT INTO server (key, value) VALUES ('id', ?1)", [&id])?;
        Ok(id)
    }

    /// This data folder's secret (32 random bytes, made once, never shown): what the server
    /// signs with (E2B's sandbox access tokens).
    pub fn secret(&self) -> ServiceResult<Vec<u8>> {
        if let Some(secret) = self.secret.get() {
            return Ok(secret.clone());
        }
        let db = self.db();
        let stored: Option<String> = db
            .query_row("SELECT value FROM server WHERE key = 'secret'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let hex = match stored {
            Some(hex) => hex,
            None => {
                let hex = random_hex(32)?;
                db.execute(
                    "INSERT OR IGNORE INTO server (key, value) VALUES ('secret', ?1)",
                    [&hex],
                )?;
                db.query_row("SELECT value FROM server WHERE key = 'secret'", [], |r| {
                    r.get(0)
                })?
            }
        };
        let secret: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<_>>()
            .filter(|s: &Vec<u8>| s.len() == 32)
            .ok_or_else(|| {
                ServiceError::internal("the server's stored secret is not 64 hex digits")
            })?;
        Ok(self.secret.get_or_init(|| secret).clone())
    }

    /// Makes a key in `format`; returns its listing and the key itself (shown once, never
    /// stored).
    pub fn add_key(&self, name: &str, format: KeyFormat) -> ServiceResult<(KeyInfo, String)> {
        let key = mint_key(name, format)?;
        self.db().execute(
            "INSERT INTO keys (id, name, prefix, hash, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                key.info.id,
                key.info.name,
                key.info.prefix,
                key.hash,
                key.info.created as i64
            ],
        )?;
        Ok((key.info, key.secret))
    }

    /// The keys not revoked.
    pub fn list_keys(&self) -> ServiceResult<Vec<KeyInfo>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, name, prefix, created, last_used FROM keys WHERE revoked = 0 ORDER BY created, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                prefix: r.get(2)?,
                created: r.get::<_, i64>(3)? as u64,
                last_used: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a key by id (or by its full prefix); its requests are refused from now on.
    pub fn revoke_key(&self, id: &str) -> ServiceResult<KeyInfo> {
        let key = self
            .list_keys()?
            .into_iter()
            .find(|k| k.id == id || k.prefix == id)
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorKind::NotFound,
                    format!("no key {id}: `sandpit keys list` shows the ids"),
                )
            })?;
        self.db()
            .execute("UPDATE keys SET revoked = 1 WHERE id = ?1", [&key.id])?;
        Ok(key)
    }

    /// The key a request presented, when it is valid; notes its use (at most once a minute).
    pub fn verify(&self, secret: &str) -> ServiceResult<Option<KeyInfo>> {
        let db = self.db();
        let found = db
            .query_row(
                "SELECT id, name, prefix, created, last_used FROM keys WHERE hash = ?1 AND revoked = 0",
                [key_hash(secret)],
                |r| {
                    Ok(KeyInfo {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        prefix: r.get(2)?,
                        created: r.get::<_, i64>(3)? as u64,
                        last_used: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
                    })
                },
            )
            .optional()?;
        if let Some(key) = &found {
            let t = now();
            if key.last_used.is_none_or(|u| t >= u + 60) {
                db.execute(
                    "UPDATE keys SET last_used = ?1 WHERE id = ?2",
                    params![t as i64, key.id],
                )?;
            }
        }
        Ok(found)
    }

    /// Saves (inserts or replaces) a session's record.
    pub fn save_session(&self, r: &SessionRecord) -> ServiceResult<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO sessions
             (id, owner, name, created, expires_at, idle_timeout, last_used, metadata, env, run_timeout_ms, paused_since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.id,
                r.owner,
                r.name,
                r.created as i64,
                r.expires_at as i64,
                r.idle_timeout as i64,
                r.last_used as i64,
                serde_json::to_string(&r.metadata).unwrap_or_default(),
                serde_json::to_string(&r.env).unwrap_or_default(),
                r.run_timeout_ms as i64,
                r.paused_since.map(|t| t as i64),
            ],
        )?;
        Ok(())
    }

    /// Remembers that session `id` of `owner` was lost, and why: later calls say so (410)
    /// rather than that it never existed.
    pub fn mark_lost(&self, id: &str, owner: &str, reason: &str) -> ServiceResult<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO lost (id, owner, reason, at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, owner, reason, now() as i64],
        )?;
        Ok(())
    }

    /// The owner of lost session `id` and why it was lost.
    pub fn lost(&self, id: &str) -> ServiceResult<Option<(String, String)>> {
        Ok(self
            .db()
            .query_row("SELECT owner, reason FROM lost WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// Forgets the sessions lost before `t` (Unix seconds).
    pub fn forget_lost_before(&self, t: u64) -> ServiceResult<()> {
        self.db()
            .execute("DELETE FROM lost WHERE at < ?1", [t as i64])?;
        Ok(())
    }

    /// Forgets a session.
    pub fn delete_session(&self, id: &str) -> ServiceResult<()> {
        self.db()
            .execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every session record.
    pub fn sessions(&self) -> ServiceResult<Vec<SessionRecord>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, owner, name, created, expires_at, idle_timeout, last_used, metadata, env, run_timeout_ms, paused_since FROM sessions",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SessionRecord {
                id: r.get(0)?,
                owner: r.get(1)?,
                name: r.get(2)?,
                created: r.get::<_, i64>(3)? as u64,
                expires_at: r.get::<_, i64>(4)? as u64,
                idle_timeout: r.get::<_, i64>(5)? as u64,
                last_used: r.get::<_, i64>(6)? as u64,
                metadata: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
                env: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
                run_timeout_ms: r.get::<_, i64>(9)? as u64,
                paused_since: r.get::<_, Option<i64>>(10)?.map(|t| t as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl KeyStore for Store {
    fn verify(&self, secret: &str) -> ServiceResult<Option<KeyInfo>> {
        Store::verify(self, secret)
    }

    fn list_keys(&self) -> ServiceResult<Vec<KeyInfo>> {
        Store::list_keys(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_verified_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (info, secret) = store.add_key("ci", KeyFormat::Sandpit).unwrap();
        assert!(secret.starts_with("sp_") && secret.len() == 43);
        assert!(secret.starts_with(&info.prefix));
        // Only the hash is stored.
        let raw = std::fs::read(dir.path().join("sandpit.db")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&raw).contains(&secret));
        assert_eq!(store.verify(&secret).unwrap().unwrap().id, info.id);
        assert!(store.verify("sp_wrong").unwrap().is_none());
        assert_eq!(store.list_keys().unwrap().len(), 1);
        store.revoke_key(&info.id).unwrap();
        assert!(store.verify(&secret).unwrap().is_none());
        assert!(store.list_keys().unwrap().is_empty());
        assert_eq!(
            store.revoke_key("key_nope").unwrap_err().kind,
            ErrorKind::NotFound
        );
        // A second open sees the same data and the same server id.
        let id = store.server_id().unwrap();
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.server_id().unwrap(), id);
    }

    #[test]
    fn lost_sessions_are_remembered_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.lost("s1").unwrap(), None);
        store
            .mark_lost("s1", "key_a", "its container was removed")
            .unwrap();
        assert_eq!(
            store.lost("s1").unwrap(),
            Some(("key_a".into(), "its container was removed".into()))
        );
        store.forget_lost_before(now() + 1).unwrap();
        assert_eq!(store.lost("s1").unwrap(), None);
    }

    #[test]
    fn session_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = SessionRecord {
            id: "abc".into(),
            owner: "key_1".into(),
            name: Some("n".into()),
            created: 1,
            expires_at: 2,
            idle_timeout: 3,
            last_used: 4,
            metadata: [("a".to_string(), "b".to_string())].into_iter().collect(),
            env: BTreeMap::new(),
            run_timeout_ms: 5,
            paused_since: Some(6),
        };
        store.save_session(&r).unwrap();
        assert_eq!(store.sessions().unwrap(), vec![r]);
        store.delete_session("abc").unwrap();
        assert!(store.sessions().unwrap().is_empty());
    }
}
