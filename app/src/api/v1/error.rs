//! The extractors of the API, whose rejections take its error shape ([`ApiError`]) rather than
//! axum's plain text. The error shape itself lives beside [`AppError`] (`crate::error::api`), and is
//! re-exported here where the handlers have always found it.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

pub use crate::error::api::{api_code, ApiError, ErrorBody, ErrorDetail};
use crate::error::AppError;

/// `Json<T>` whose rejections are [`ApiError`]s: 400 `malformed_json` / `invalid_body`, 415
/// `unsupported_media_type`, 413 `payload_too_large`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// `Query<T>` whose rejection is an [`ApiError`]: 400 `invalid_query`.
#[derive(Debug, Clone, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// One path segment as text; a segment that cannot be read (not UTF-8 once decoded) names nothing,
/// so it is 404 `not_found`, as an unknown id is.
#[derive(Debug, Clone)]
pub struct ApiPath(pub String);

impl<S> FromRequestParts<S> for ApiPath
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(_) => Err(AppError::NotFound.into()),
        }
    }
}
