//! The JSON API under `/api/v1`: plain axum handlers over the same library calls as the server
//! functions, for scripts, other services and native clients.
//!
//! - **Authentication**: the session cookie only, set by `POST /api/v1/auth/sign-in` exactly as the
//!   sign-in form sets it.
//! - **CSRF**: the router's origin check refuses cross-origin browsers (403 `cross_origin`), and
//!   every unsafe method (anything but GET, HEAD, OPTIONS, TRACE) must also carry `X-CSRF-Token`
//!   equal to the `csrftoken` cookie (403 `csrf_failed`), sign-in included. `GET /api/v1/auth/csrf`
//!   gives the token (and sets the cookie when the client has none).
//! - **Errors**: always `{"error": {"code": "...", "message": "..."}}` ([`error::ErrorBody`]), with
//!   the status of the error; unknown paths are 404 `not_found`, wrong methods 405.
//! - **Caching**: every answer is `Cache-Control: no-store`.
//! - **Description**: `GET /api/v1/openapi.json`, an OpenAPI 3.1 document generated from the
//!   handlers below ([`openapi`]).

pub mod admin;
pub mod auth;
pub mod error;
pub mod sessions;

use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use console_sessions::accounts::User;
use console_sessions::Session;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::server::csrf::{self, CsrfToken};
use crate::server::state::AppState;
pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, ErrorDetail};

/// Every path of the API starts with this.
pub const PREFIX: &str = "/api/v1";

/// The header that must carry the anti-forgery token on every unsafe request.
pub use crate::server::csrf::HEADER as CSRF_HEADER;

/// Names of the security schemes in the OpenAPI document.
const SESSION_COOKIE_SCHEME: &str = "session_cookie";
const CSRF_HEADER_SCHEME: &str = "csrf_header";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "console-sessions API",
        version = "1",
        description = "See the sessions signed in to your account and end the ones you do not \
            recognise; staff search and end any session.\n\n\
            Authentication is the session cookie that `POST /api/v1/auth/sign-in` sets. Every \
            unsafe method (POST, DELETE, ...) needs the header `X-CSRF-Token` equal to the \
            `csrftoken` cookie: `GET /api/v1/auth/csrf` gives it (and sets the cookie when there is \
            none). Browsers must also send them from the site's own origin.\n\n\
            Every error is `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`, sometimes with \
            `retry_after_secs` or `field`. Answers are never cached (`Cache-Control: no-store`).",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "auth", description = "Signing in and out, the CSRF token, who is signed in"),
        (name = "sessions", description = "The signed-in user's own sessions"),
        (name = "admin", description = "Every session, for active staff; sign-outs are audited"),
        (name = "meta", description = "This description"),
    ),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// Adds the two security schemes: the session cookie, and the CSRF header.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION_COOKIE_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "session",
                "The session cookie set by sign-in (HttpOnly). Its name is `session` by default, \
                 `__Host-session` when cookies are Secure, or the server's SESSION_COOKIE_NAME.",
            ))),
        );
        components.add_security_scheme(
            CSRF_HEADER_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "Required on every unsafe method: the value of the `csrftoken` cookie \
                 (`__Host-csrftoken` when Secure), as `GET /api/v1/auth/csrf` returns it.",
            ))),
        );
    }
}

/// The documented routes, and the OpenAPI document describing them: one list, so the two cannot
/// disagree.
fn documented() -> (Router<AppState>, OpenApiDocument) {
    let documented = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::sign_out))
        .routes(routes!(auth::confirm))
        .routes(routes!(auth::csrf_token))
        .routes(routes!(auth::me))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke, sessions::rename))
        .routes(routes!(sessions::ended))
        .routes(routes!(sessions::sign_ins))
        .routes(routes!(sessions::revoke_others))
        .routes(routes!(admin::search))
        .routes(routes!(admin::revoke))
        .routes(routes!(admin::history))
        .routes(routes!(admin::revoke_matching))
        .routes(routes!(admin::job))
        .routes(routes!(openapi_json))
        .split_for_parts();
    let (router, mut document) = documented;
    state_username_pattern(&mut document);
    (router, document)
}

/// The characters a username may have, as a `pattern`: the library's rule
/// ([`username_pattern`](console_sessions::accounts::username_pattern)), which a derive attribute
/// cannot call. (The unit test of the document checks it is there.)
fn state_username_pattern(document: &mut OpenApiDocument) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let request = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("SignInRequest"));
    if let Some(RefOr::T(Schema::Object(request))) = request {
        if let Some(RefOr::T(Schema::Object(username))) = request.properties.get_mut("username") {
            username.pattern = Some(console_sessions::accounts::username_pattern());
        }
    }
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> OpenApiDocument {
    documented().1
}

/// The document as served, made once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| match openapi().to_json() {
    Ok(json) => json,
    Err(error) => {
        tracing::error!(%error, "the OpenAPI document could not be serialized");
        "{}".to_owned()
    }
});

/// The API's routes, for the application router to merge (its layers — session, origin check,
/// metrics, trace, request id — then wrap these too). Adds, around the documented routes: the
/// `X-CSRF-Token` check, JSON 404 and 405 answers, and `Cache-Control: no-store`.
pub fn router() -> Router<AppState> {
    let (documented, _) = documented();
    documented
        // Before the 405 fallback, so that a method an endpoint lacks is a 405, CSRF header or not.
        .route_layer(axum::middleware::from_fn(require_csrf_header))
        .method_not_allowed_fallback(method_not_allowed)
        .route(PREFIX, any(no_such_endpoint))
        .route(&format!("{PREFIX}/"), any(no_such_endpoint))
        .route(&format!("{PREFIX}/{{*rest}}"), any(no_such_endpoint))
        .layer(axum::middleware::from_fn(no_store))
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = serde_json::Value,
            content_type = "application/json"),
    ),
)]
pub async fn openapi_json() -> Response {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

async fn no_such_endpoint() -> ApiError {
    ApiError::no_such_endpoint()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Middleware: every answer of the API is private and current, so never stored by any cache.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Middleware: an unsafe request must carry `X-CSRF-Token` equal to the client's token cookie
/// (double submit; a page of another site can neither read the cookie nor set the header without
/// our consent). Refused with 403 `csrf_failed` otherwise.
async fn require_csrf_header(request: Request, next: Next) -> Response {
    if csrf::is_safe(request.method()) {
        return next.run(request).await;
    }
    let Some(token) = request.extensions().get::<CsrfToken>() else {
        tracing::error!("the CSRF middleware is not installed");
        return ApiError::from(AppError::Internal).into_response();
    };
    let submitted = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok());
    if submitted.is_some_and(|value| token.verify(value)) {
        return next.run(request).await;
    }
    tracing::warn!(
        method = %request.method(),
        path = %request.uri().path(),
        header_present = submitted.is_some(),
        "API request refused: X-CSRF-Token missing or wrong"
    );
    ApiError::csrf_failed().into_response()
}

/// The request's session (the session layer put it there).
#[derive(Debug, Clone)]
pub struct ApiSession(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for ApiSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Session>() {
            Some(session) => Ok(Self(session.clone())),
            None => {
                tracing::error!("the session layer is not installed");
                Err(AppError::Internal.into())
            }
        }
    }
}

/// The active staff user making the request, with their session: 401 `sign_in_required` for
/// visitors, 403 `forbidden` for anyone else.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The staff user.
    pub user: User,
    /// Their session (its client's address goes in the audit log).
    pub session: Session,
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ApiSession(session) = ApiSession::from_request_parts(parts, state).await?;
        let user = crate::server::request::active_staff(state, &session).await?;
        crate::server::request::staff_policy(state, &user).await?;
        Ok(Self { user, session })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use super::*;

    /// Every operation of the document, as `METHOD path`.
    fn operations(document: &OpenApiDocument) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for (path, item) in &document.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
                ("HEAD", item.head.is_some()),
                ("OPTIONS", item.options.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    found.insert(format!("{method} {path}"));
                }
            }
        }
        found
    }

    #[test]
    fn the_document_describes_every_route_of_the_router_and_nothing_else() {
        let expected: BTreeSet<String> = [
            "POST /api/v1/auth/sign-in",
            "POST /api/v1/auth/sign-out",
            "POST /api/v1/auth/confirm",
            "GET /api/v1/auth/csrf",
            "GET /api/v1/me",
            "GET /api/v1/sessions",
            "DELETE /api/v1/sessions/{public_id}",
            "PATCH /api/v1/sessions/{public_id}",
            "GET /api/v1/sessions/ended",
            "GET /api/v1/account/sign-ins",
            "POST /api/v1/sessions/revoke-others",
            "GET /api/v1/admin/sessions",
            "POST /api/v1/admin/sessions/revoke",
            "GET /api/v1/admin/history",
            "POST /api/v1/admin/sessions/revoke-matching",
            "GET /api/v1/admin/jobs/{job_id}",
            "GET /api/v1/openapi.json",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(operations(&openapi()), expected);
    }

    /// What the server refuses, the document says, so generated clients know (lengths as the
    /// account rules and the session names have them).
    #[test]
    fn the_request_schemas_state_the_limits_the_server_enforces() {
        use console_sessions::accounts::{MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS};
        use console_sessions::sessions::MAX_LABEL_CHARS;
        let json: serde_json::Value = serde_json::from_str(DOCUMENT.as_str()).unwrap();
        let schemas = &json["components"]["schemas"];
        let sign_in = &schemas["SignInRequest"]["properties"];
        assert_eq!(sign_in["username"]["minLength"], 1);
        assert_eq!(sign_in["username"]["maxLength"], MAX_USERNAME_CHARS);
        assert_eq!(
            sign_in["username"]["pattern"],
            console_sessions::accounts::username_pattern()
        );
        assert_eq!(sign_in["password"]["minLength"], 1);
        assert_eq!(sign_in["password"]["maxLength"], MAX_PASSWORD_CHARS);
        assert_eq!(
            schemas["ConfirmRequest"]["properties"]["password"]["maxLength"],
            MAX_PASSWORD_CHARS
        );
        assert_eq!(
            schemas["Rename"]["properties"]["label"]["maxLength"],
            MAX_LABEL_CHARS
        );
        // Query parameters are in the query (a derive's default is the path).
        for path in ["/api/v1/sessions/ended", "/api/v1/account/sign-ins"] {
            let limit = &json["paths"][path]["get"]["parameters"][0];
            assert_eq!(limit["name"], "limit", "{path}");
            assert_eq!(limit["in"], "query", "{path}");
            assert_eq!(limit["schema"]["minimum"], 1, "{path}");
            assert_eq!(limit["schema"]["maximum"], 100, "{path}");
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_both_security_schemes() {
        let json: serde_json::Value = serde_json::from_str(DOCUMENT.as_str()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemes = &json["components"]["securitySchemes"];
        assert_eq!(schemes[SESSION_COOKIE_SCHEME]["in"], "cookie");
        assert_eq!(schemes[SESSION_COOKIE_SCHEME]["name"], "session");
        assert_eq!(schemes[CSRF_HEADER_SCHEME]["in"], "header");
        assert_eq!(schemes[CSRF_HEADER_SCHEME]["name"], "X-CSRF-Token");
        for name in [
            "ErrorBody",
            "ErrorDetail",
            "User",
            "DeviceSession",
            "SessionSearch",
        ] {
            assert!(
                json["components"]["schemas"][name].is_object(),
                "schema {name}"
            );
        }
        // Every unsafe operation names the CSRF header among its requirements.
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if method == "get" {
                    continue;
                }
                let security = operation["security"].to_string();
                assert!(
                    security.contains(CSRF_HEADER_SCHEME),
                    "{method} {path}: {security}"
                );
                let responses = operation["responses"].as_object().unwrap();
                assert!(responses.contains_key("403"), "{method} {path}");
            }
        }
    }
}
