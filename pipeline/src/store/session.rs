//! Session-level advisory locks, each on a connection of its own taken out of the pool: held until released
//! or until that connection ends, which is what ties something to a process's life. A killed process's
//! locks go with its connections at once, so nothing waits for a timeout to learn that it died.
//!
//! Two uses: the scheduler's lock (one active scheduler per database) and each worker's liveness key (a
//! claim whose holder's key is free belongs to a dead worker).

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::runs::{Store, StoreError, query_error};

/// SQL true when the advisory lock of the bigint `key` (an expression) is held by a live session of this
/// database (the bigint form of the lock puts the key's high half in `classid`, its low half in `objid`).
pub(super) fn held_sql(key: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((l.classid::bigint << 32) | l.objid::bigint) = {key})"
    )
}

/// A held session-level advisory lock (see the module documentation).
#[derive(Debug)]
pub struct SessionLock {
    connection: PgConnection,
    key: i64,
}

impl SessionLock {
    pub fn key(&self) -> i64 {
        self.key
    }

    /// Whether the lock is still held. Its session holds it until it is released, so this asks whether
    /// the session is alive; `false` means the lock is gone (another session may hold it now).
    pub async fn is_held(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.connection).await.is_ok()
    }

    /// Releases the lock and closes its connection (closing alone would release it too).
    pub async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(self.key).execute(&mut self.connection).await;
        if let Err(err) = unlocked {
            tracing::warn!(error = %err, key = self.key, "Releasing an advisory lock failed; closing its connection releases it.");
        }
        let _ = self.connection.close().await;
    }
}

impl Store {
    /// Takes the session lock of `key` without waiting. `None` when another session holds it.
    pub async fn try_session_lock(&self, key: i64) -> Result<Option<SessionLock>, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(StoreError::Connect)?.detach();
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut connection)
            .await
            .map_err(query_error("take an advisory lock"))?;
        if acquired {
            Ok(Some(SessionLock { connection, key }))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}
