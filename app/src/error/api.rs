//! The JSON API's one error shape, `{"error": {"code": "...", "message": "..."}}`, beside the
//! [`AppError`] it is mostly made from. Here rather than in the API so that the server's middleware
//! (CSRF, forward authentication) can answer in it without depending on the API's handlers.
//!
//! `code` is stable and meant for programs (the variant of [`AppError`], as its
//! [`code`](AppError::code) without the `.N` suffix); `message` is a sentence for people. Some errors
//! add a field: `retry_after_secs` (with a `Retry-After` header) when throttled, `field` naming the
//! input to fix.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{AccountRefusal, AppError};

/// Seconds a client should wait before retrying when the database is unavailable (as the pages say).
const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "Not found. It may already have been removed."}}))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and for people (`message`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_credentials`, `throttled`, `sign_in_required`,
    /// `forbidden`, `not_found`, `csrf_failed`, `cross_origin`, `malformed_json`, `invalid_body`,
    /// `unsupported_media_type`, `payload_too_large`, `invalid_query`, `too_many_ids`,
    /// `method_not_allowed`, `database_unavailable`, `internal`, or a validation code such as
    /// `username_required` or `password_required`.
    pub code: String,
    /// A sentence to show a person.
    pub message: String,
    /// When throttled: seconds until the next attempt is accepted (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// For input to fix: the request field it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer of the API: a status and an [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    /// An error with this status, code and message, and no extra field.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                retry_after_secs: None,
                field: None,
            },
        }
    }

    /// The same error, about this request field.
    pub fn with_field(mut self, field: &str) -> Self {
        self.detail.field = Some(field.to_owned());
        self
    }

    /// 403 `csrf_failed`: the `X-CSRF-Token` header is missing or is not the client's token cookie.
    pub fn csrf_failed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "The X-CSRF-Token header is missing or does not match the csrftoken cookie. \
             GET /api/v1/auth/csrf gives the token to send.",
        )
    }

    /// 404 `not_found` for a path that is no endpoint.
    pub fn no_such_endpoint() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no such endpoint. The API is described at /api/v1/openapi.json.",
        )
    }

    /// 405 `method_not_allowed`: the endpoint exists, but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This endpoint does not accept this method. The API is described at /api/v1/openapi.json.",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body's `error` object.
    pub fn detail(&self) -> &ErrorDetail {
        &self.detail
    }
}

/// The API's code for an application error: its [`AppError::code`] without the `.N` suffix, and
/// `csrf_failed` rather than the forms' `csrf`.
pub fn api_code(error: &AppError) -> String {
    match error {
        AppError::CsrfFailed => "csrf_failed".to_owned(),
        other => {
            let code = other.code();
            match code.split_once('.') {
                Some((name, _)) => name.to_owned(),
                None => code,
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        if error == AppError::CsrfFailed {
            return Self::csrf_failed();
        }
        let status =
            StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &error {
            // Its text is a cause meant for the server log, not for the client.
            AppError::Transport(_) => AppError::Internal.to_string(),
            other => other.to_string(),
        };
        let mut api = Self::new(status, &api_code(&error), message);
        api.detail.field = error.field().map(str::to_owned);
        api.detail.retry_after_secs = match error {
            AppError::Account(AccountRefusal::Throttled { retry_after_secs }) => {
                Some(retry_after_secs)
            }
            _ => None,
        };
        api
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let body_text = rejection.body_text();
        match rejection {
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("The request body is not valid JSON. {body_text}"),
            ),
            JsonRejection::JsonDataError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("The request body does not have the expected fields. {body_text}"),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the request body as JSON, with Content-Type: application/json.",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "The request body could not be read.",
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!(
                "The query string could not be read. {}",
                rejection.body_text()
            ),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match (self.detail.retry_after_secs, self.status) {
            (Some(secs), _) => Some(secs),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(UNAVAILABLE_RETRY_SECS),
            _ => None,
        };
        let mut response = (self.status, Json(ErrorBody { error: self.detail })).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_names_without_numbers() {
        assert_eq!(
            api_code(&AppError::Account(AccountRefusal::Throttled {
                retry_after_secs: 30
            })),
            "throttled"
        );
        assert_eq!(
            api_code(&AppError::Account(AccountRefusal::PasswordTooShort {
                min: 10
            })),
            "password_too_short"
        );
        assert_eq!(api_code(&AppError::CsrfFailed), "csrf_failed");
        assert_eq!(api_code(&AppError::NotFound), "not_found");
        assert_eq!(api_code(&AppError::Transport("x".into())), "internal");
    }

    #[test]
    fn application_errors_keep_their_status_message_and_extra_fields() {
        let throttled = ApiError::from(AppError::Account(AccountRefusal::Throttled {
            retry_after_secs: 42,
        }));
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.detail().retry_after_secs, Some(42));
        let response = throttled.into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "42");

        let short = ApiError::from(AppError::Account(AccountRefusal::PasswordRequired));
        assert_eq!(short.status(), StatusCode::BAD_REQUEST);
        assert_eq!(short.detail().field.as_deref(), Some("password"));
        assert_eq!(short.detail().message, "Enter a password.");

        let hidden = ApiError::from(AppError::Transport("secret cause".into()));
        assert_eq!(hidden.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!hidden.detail().message.contains("secret"));

        let unavailable = ApiError::from(AppError::DatabaseUnavailable).into_response();
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.headers()[RETRY_AFTER], "5");
    }
}
