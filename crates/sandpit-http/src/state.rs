//! What every handler shares.

use std::sync::Arc;

use sandpit_service::Manager;

/// The server's state: the session manager (with the store, config and metrics).
#[derive(Clone, Debug)]
pub struct AppState {
    /// The manager.
    pub manager: Manager,
    /// The address the server answers on, for links it hands out (`http://host:port`).
    pub base_url: Arc<String>,
}
