//! "Sign out all N sessions matching this search": a preview count, a confirmation, and a job that
//! ends them in batches while staff watch its progress.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::ChangelistParams;
use crate::error::AppError;

/// What signing out a search's sessions would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MatchingPreview {
    /// Live sessions the search matches now.
    pub matching: u64,
    /// The search in words ("country SE, device Smartphone").
    pub described: String,
}

/// How far a job got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobProgress {
    /// The job's id.
    pub id: String,
    /// What it does, in words.
    pub title: String,
    /// How many it expected to do.
    pub total: u64,
    /// How many are done.
    pub done: u64,
    /// `running`, `finished` or `failed`.
    pub state: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// How long it ran, or has been running, in milliseconds.
    pub elapsed_ms: u64,
}

/// The changelist's search in words, for the confirmation, the job and the audit log.
#[cfg(feature = "ssr")]
pub fn describe(params: &ChangelistParams, user: Option<&super::SearchUser>) -> String {
    let mut parts = Vec::new();
    if let Some(user) = user {
        parts.push(format!("user {}", user.username));
    } else if params.owner.as_deref() == Some("mine") {
        parts.push("your own".to_owned());
    }
    if let Some(country) = params.country.as_deref().filter(|c| c.len() == 2) {
        parts.push(format!("country {}", country.to_ascii_uppercase()));
    }
    if let Some(device) = params
        .device
        .as_deref()
        .and_then(console_sessions::device::DeviceCategory::from_key)
    {
        parts.push(format!(
            "device {}",
            crate::format::category(device.as_str())
        ));
    }
    match params.since.as_deref() {
        Some("today") => parts.push("signed in today".to_owned()),
        Some("week") => parts.push("signed in in the past 7 days".to_owned()),
        Some("month") => parts.push("signed in this month".to_owned()),
        _ => {}
    }
    match params.aal.as_deref() {
        Some("aal1") => parts.push("password only".to_owned()),
        Some("aal2") => parts.push("two-step".to_owned()),
        _ => {}
    }
    if let Some(q) = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        parts.push(format!("search \u{201c}{q}\u{201d}"));
    }
    if parts.is_empty() {
        "every session".to_owned()
    } else {
        parts.join(", ")
    }
}

/// How many live sessions the changelist's search matches, for the confirmation page.
#[server(prefix = "/api", endpoint = "admin/matching", input = GetUrl)]
pub async fn preview_sign_out_matching(
    /// The changelist's query; its state, order and page are ignored (only live sessions end).
    #[server(default)]
    params: ChangelistParams,
) -> Result<MatchingPreview, AppError> {
    use crate::server::request;
    let (state, staff) = request::require_staff().await?;
    request::no_store();
    preview(&state, &staff, &params).await
}

/// [`preview_sign_out_matching`] for any caller that checked the staff member.
#[cfg(feature = "ssr")]
pub async fn preview(
    state: &crate::server::state::AppState,
    staff: &console_sessions::accounts::User,
    params: &ChangelistParams,
) -> Result<MatchingPreview, AppError> {
    let (query, user) = super::changelist_query(state, staff, params).await?;
    let matching = console_sessions::admin::SessionAdmin::new(state.sessions.clone())
        .count_matching(&query)
        .await?;
    Ok(MatchingPreview {
        matching,
        described: describe(params, user.as_ref()),
    })
}

/// Starts signing out every live session the search matches, except the staff member's own, on
/// its own task; answers the job's id and the preview it started from. Audited once, when it ends.
#[cfg(feature = "ssr")]
pub async fn start(
    state: &crate::server::state::AppState,
    staff: &console_sessions::accounts::User,
    session: &console_sessions::Session,
    params: &ChangelistParams,
) -> Result<(String, MatchingPreview), AppError> {
    use crate::server::jobs::JobState;
    let (query, user) = super::changelist_query(state, staff, params).await?;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let matching = admin.count_matching(&query).await?;
    let described = describe(params, user.as_ref());
    let actor = crate::server::request::actor_from(staff, Some(session));
    let keep = session.public_id().await?;
    let (id, job) = state.jobs.start(
        format!("Sign out the sessions matching {described}"),
        matching,
    );
    let task_described = described.clone();
    tokio::spawn(async move {
        let progress = |done| job.advance(done);
        let outcome = admin
            .sign_out_matching(&actor, &query, keep.as_ref(), &task_described, &progress)
            .await;
        match outcome {
            Ok(ended) => {
                job.advance(ended);
                job.end(JobState::Finished);
            }
            Err(error) => {
                tracing::error!(%error, "signing out the sessions matching a search failed");
                job.end(JobState::Failed(
                    "The database failed midway; what ended stays ended. Try again to end the rest."
                        .to_owned(),
                ));
            }
        }
    });
    tracing::info!(
        actor = staff.id,
        matching,
        job = %id,
        "staff started signing out the sessions matching a search"
    );
    Ok((
        id,
        MatchingPreview {
            matching,
            described,
        },
    ))
}

/// Signs out every live session the changelist's search matches (a sensitive action: it needs a
/// recent proof); answers the job's id. Without JavaScript, goes on to the job's page.
#[server(prefix = "/api", endpoint = "admin/sign-out-matching")]
pub async fn sign_out_matching(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The changelist's query, as the confirmation page carried it.
    #[server(default)]
    params: ChangelistParams,
) -> Result<String, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/admin/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/sessions")
        .await
        .map_err(back)?;
    let session = request::session().map_err(back)?;
    let (id, _) = start(&state, &staff, &session, &params)
        .await
        .map_err(back)?;
    if request::is_plain_form_post() {
        request::redirect(&format!("/admin/jobs/{id}"));
    }
    Ok(id)
}

/// How far the job with this id got (this node's jobs; `NotFound` for another id).
#[cfg(feature = "ssr")]
pub fn progress_of(
    state: &crate::server::state::AppState,
    id: &str,
) -> Result<JobProgress, AppError> {
    use crate::server::jobs::JobState;
    let job = state.jobs.get(id).ok_or(AppError::NotFound)?;
    let (state_name, error) = match job.state() {
        JobState::Running => ("running", None),
        JobState::Finished => ("finished", None),
        JobState::Failed(why) => ("failed", Some(why)),
    };
    Ok(JobProgress {
        id: id.to_owned(),
        title: job.title.clone(),
        total: job.total,
        done: job.done(),
        state: state_name.to_owned(),
        error,
        elapsed_ms: u64::try_from(job.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// How far a job got.
#[server(prefix = "/api", endpoint = "admin/job", input = GetUrl)]
pub async fn get_job(
    /// The job's id.
    id: String,
) -> Result<JobProgress, AppError> {
    use crate::server::request;
    let (state, _) = request::require_staff().await?;
    request::no_store();
    progress_of(&state, &id)
}
