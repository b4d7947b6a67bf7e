//! Where the site lives and which other sites it works with: the public origin, the services a
//! person may be sent back to after signing in, and (embed mode) who may frame our pages.

/// The site's place among other services; shared by forward authentication, sign-in and embedding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteSettings {
    /// `scheme://host[:port]` people reach us at, when configured.
    pub public_origin: Option<String>,
    /// The path the site is mounted under behind a proxy (`/sso`), or empty.
    pub base_path: String,
    /// Origins that `next` may send the browser to after sign-in: the services behind forward
    /// authentication. Our own paths are always allowed.
    pub redirect_origins: Vec<String>,
    /// Origins that may show our pages in a frame (`EMBED_ORIGINS`), besides our own.
    pub embed_origins: Vec<String>,
    /// Serve the load bench's reference routes (`BENCH_BASELINE_ROUTE`).
    pub bench_routes: bool,
    /// How long a proof (sign-in, or confirming access) covers sensitive actions (`STEP_UP_WINDOW`).
    pub step_up_window: std::time::Duration,
    /// Staff need a second factor before admin pages (`REQUIRE_SECOND_FACTOR_FOR_STAFF`).
    pub require_second_factor_for_staff: bool,
    /// The most sessions a user may have at once; 0: no limit (`MAX_SESSIONS_PER_USER`).
    pub max_sessions_per_user: usize,
    /// Staff sessions' idle timeout and absolute lifetime (`STAFF_SESSION_IDLE_TIMEOUT`,
    /// `STAFF_SESSION_ABSOLUTE_LIFETIME`); `None` when both are 0: staff get everyone's.
    pub staff_lifetimes: Option<(std::time::Duration, std::time::Duration)>,
}

/// Whether an origin is `https://…` (scheme compared ignoring case): people then reach the site
/// over HTTPS only, which makes the cookies Secure and browsers keep to HTTPS (HSTS).
pub fn is_https(origin: &str) -> bool {
    origin
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The paths answered for machines (proxies, probes, scrapers, the load bench), never pages: they
/// carry no form, and they also answer outside the base path.
pub fn is_machine_path(path: &str) -> bool {
    path.starts_with("/bench/") || matches!(path, "/auth/verify" | "/healthz" | "/metrics")
}
