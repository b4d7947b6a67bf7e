//! `/api/v1/admin/*`: every session, for active staff (401 for visitors, 403 for anyone else). The
//! same search as the changelist page, and the same audited sign-out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiQuery, ErrorBody, Staff};
use crate::api::admin::{
    search_history, search_sessions, ChangelistParams, HistoryParams, HistorySearch, JobProgress,
    MatchingPreview, SessionSearch,
};
use crate::error::AppError;
use crate::server::request::actor_from;
use crate::server::state::AppState;

/// The most sessions one bulk sign-out may name.
pub const MAX_BULK_IDS: usize = 1000;

/// `POST /api/v1/admin/sessions/revoke`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BulkRevokeRequest {
    /// Public ids of the sessions to sign out (at most 1000). Ids that name no live session are
    /// skipped.
    #[schema(max_items = 1000)]
    pub public_ids: Vec<String>,
}

/// What a bulk sign-out ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkRevoked {
    /// How many sessions ended.
    pub revoked: u64,
    /// Their public ids.
    pub public_ids: Vec<String>,
}

/// Searches every session, as the staff changelist does: same parameters, same order, pages of 100.
#[utoipa::path(
    get,
    path = "/api/v1/admin/sessions",
    tag = "admin",
    operation_id = "admin_search_sessions",
    params(ChangelistParams),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of matching sessions", body = SessionSearch),
        (status = 400, description = "`invalid_query`: the query string could not be read", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not active staff", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn search(
    State(state): State<AppState>,
    staff: Staff,
    ApiQuery(params): ApiQuery<ChangelistParams>,
) -> Result<Json<SessionSearch>, ApiError> {
    Ok(Json(search_sessions(&state, &staff.user, &params).await?))
}

/// Searches ended sessions, as the staff history page does: who, from where, on what, why and
/// when; pages of 100, most recently ended first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/history",
    tag = "admin",
    operation_id = "admin_search_history",
    params(HistoryParams),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of matching ended sessions", body = HistorySearch),
        (status = 400, description = "`invalid_query`: the query string could not be read", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not active staff", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    _staff: Staff,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<HistorySearch>, ApiError> {
    Ok(Json(search_history(&state, &params).await?))
}

/// Signs out the named sessions, whoever they belong to, and records it in the audit log (as the
/// changelist's bulk sign-out does).
#[utoipa::path(
    post,
    path = "/api/v1/admin/sessions/revoke",
    tag = "admin",
    operation_id = "admin_revoke_sessions",
    request_body = BulkRevokeRequest,
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 200, description = "What ended", body = BulkRevoked),
        (status = 400, description = "`malformed_json`, `invalid_body`, or `too_many_ids` (more than 1000)", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`forbidden` (not active staff), `csrf_failed`, `cross_origin`, or `confirm_access`: the session has not proved itself within STEP_UP_WINDOW (POST /api/v1/auth/confirm first)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(body): ApiJson<BulkRevokeRequest>,
) -> Result<Json<BulkRevoked>, ApiError> {
    use console_sessions::sessions::PublicId;
    crate::server::request::require_recent_proof(&state, &staff.session, "/admin/sessions").await?;
    if body.public_ids.len() > MAX_BULK_IDS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_ids",
            format!("At most {MAX_BULK_IDS} sessions can be signed out at once."),
        )
        .with_field("public_ids"));
    }
    let ids: Vec<PublicId> = body
        .public_ids
        .iter()
        .filter_map(|id| PublicId::parse(id))
        .collect();
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let ended = admin
        .sign_out(&actor_from(&staff.user, Some(&staff.session)), &ids)
        .await
        .map_err(AppError::from)?;
    Ok(Json(BulkRevoked {
        revoked: ended.len() as u64,
        public_ids: ended.iter().map(|id| id.as_str().to_owned()).collect(),
    }))
}

/// `POST /api/v1/admin/sessions/revoke-matching`'s body: the changelist's search (its state, order
/// and page are ignored: only live sessions end), and whether only to count.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RevokeMatchingRequest {
    /// The search, with the changelist's parameter names (`country`, `device`, `q`, `user`, …).
    #[serde(default)]
    pub search: ChangelistParams,
    /// Only count what would end (the preview), and end nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What `revoke-matching` did or would do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevokeMatching {
    /// Live sessions the search matches now.
    pub matching: u64,
    /// The search in words.
    pub described: String,
    /// The job signing them out (`GET /api/v1/admin/jobs/{job_id}`); none for a dry run.
    pub job_id: Option<String>,
}

/// Signs out every live session a search matches (but the caller's own), in batches, on a job
/// whose progress `GET /api/v1/admin/jobs/{job_id}` answers; audited as one action. With
/// `dry_run`, only counts them.
#[utoipa::path(
    post,
    path = "/api/v1/admin/sessions/revoke-matching",
    tag = "admin",
    operation_id = "admin_revoke_matching",
    request_body = RevokeMatchingRequest,
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 200, description = "The count (dry run)", body = RevokeMatching),
        (status = 202, description = "Started: the count, and the job", body = RevokeMatching),
        (status = 400, description = "`malformed_json` or `invalid_body`", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`forbidden` (not active staff), `csrf_failed`, `cross_origin`, or `confirm_access`: the session has not proved itself within STEP_UP_WINDOW", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn revoke_matching(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(body): ApiJson<RevokeMatchingRequest>,
) -> Result<(StatusCode, Json<RevokeMatching>), ApiError> {
    if body.dry_run {
        let MatchingPreview {
            matching,
            described,
        } = crate::api::admin::preview(&state, &staff.user, &body.search).await?;
        return Ok((
            StatusCode::OK,
            Json(RevokeMatching {
                matching,
                described,
                job_id: None,
            }),
        ));
    }
    crate::server::request::require_recent_proof(&state, &staff.session, "/admin/sessions").await?;
    let (job_id, preview) =
        crate::api::admin::start(&state, &staff.user, &staff.session, &body.search).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RevokeMatching {
            matching: preview.matching,
            described: preview.described,
            job_id: Some(job_id),
        }),
    ))
}

/// How far a staff job got (jobs live on the node that started them, for an hour after they end).
#[utoipa::path(
    get,
    path = "/api/v1/admin/jobs/{job_id}",
    tag = "admin",
    operation_id = "admin_job",
    params(("job_id" = String, Path, description = "The job's id")),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The job's progress", body = JobProgress),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not active staff", body = ErrorBody),
        (status = 404, description = "`not_found`: no such job on this node", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn job(
    State(state): State<AppState>,
    _staff: Staff,
    super::ApiPath(job_id): super::ApiPath,
) -> Result<Json<JobProgress>, ApiError> {
    Ok(Json(crate::api::admin::progress_of(&state, &job_id)?))
}
