//! Drop-in APIs of other systems, each a thin mapping onto the same operations.

use axum::Router;

use crate::state::AppState;

/// The compatibility routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
