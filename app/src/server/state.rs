//! What every handler and server function can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use console_sessions::accounts::Accounts;
use console_sessions::{Database, SessionEngine};
use leptos::prelude::*;

use super::csrf::CsrfSettings;
use super::site::SiteSettings;
use crate::error::AppError;

/// Shared, cheaply cloned application state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Leptos' own settings: site root, package folder, address.
    pub leptos_options: LeptosOptions,
    /// The database pool.
    pub db: Database,
    /// The session engine.
    pub sessions: SessionEngine,
    /// Users, passwords and sign-in throttling.
    pub accounts: Accounts,
    /// The mail the accounts send (reset links, verifications, sign-in alerts), through the outbox.
    pub mail: super::mail::Mailer,
    /// Cross-site request forgery protection.
    pub csrf: Arc<CsrfSettings>,
    /// The public origin, base path, and the services we work with.
    pub site: Arc<SiteSettings>,
    /// Staff actions running on their own task (signing out what a search matches).
    pub jobs: super::jobs::Jobs,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// Puts the state in the Leptos context of a page render or server function, with the base
    /// path on its own for [`crate::paths`] (which knows nothing of this state).
    pub fn provide(&self) {
        provide_context(self.clone());
        provide_context(crate::paths::BasePath(self.site.base_path.clone()));
    }

    /// The state provided to the current page render or server function.
    pub fn from_context() -> Result<Self, AppError> {
        use_context::<Self>().ok_or_else(|| {
            tracing::error!("AppState is missing from the Leptos context");
            AppError::Internal
        })
    }
}
