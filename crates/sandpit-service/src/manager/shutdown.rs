//! Shutdown: the warm pools and the parked one-shot sandboxes close, the sessions stay for the
//! next server process.

use std::sync::Arc;
use std::time::Duration;

use super::{Entry, Manager};
use crate::store::SessionRecord;

impl Manager {
    /// Closes the warm pools (sessions stay: the next server process adopts them).
    pub async fn shutdown(&self) {
        self.close_parked(true);
        self.close_claimed(true);
        for (_, pool) in self.shared.pools.lock().await.drain() {
            let _ = pool.close().await;
        }
        // Sandboxes of one-shot runs still being removed.
        let _ =
            tokio::task::spawn_blocking(|| sandpit::wait_for_drops(Duration::from_secs(30))).await;
        self.remove_pool_leftovers().await;
        let records: Vec<SessionRecord> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .map(|e| e.record())
            .collect();
        for r in records {
            let _ = self.shared.store.save_session(&r);
        }
        // The sessions stay for the next server process, but dropping a session's last handle
        // removes its container (the library's drop worker): let the handles go unclosed.
        let entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .write()
            .expect("sessions")
            .drain()
            .map(|(_, e)| e)
            .collect();
        for entry in entries {
            std::mem::forget(entry);
        }
    }
}
