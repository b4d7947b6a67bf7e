//! Who is looking at the page, and the account actions every page may use, shared through context.

use leptos::prelude::*;

use leptos_router::hooks::use_location;

use crate::api::account::{ChangePassword, SignIn, SignUp, Viewer};
use crate::error::AppError;

/// The viewer resource and the account actions, provided by the [`crate::app::App`] to every page.
#[derive(Clone, Copy)]
pub struct Auth {
    /// Who is signed in, and the form token. Read it inside `<Suspense>`/`<Transition>`.
    pub viewer: Resource<Result<Viewer, AppError>>,
    /// Signing in.
    pub sign_in: ServerAction<SignIn>,
    /// Signing up.
    pub sign_up: ServerAction<SignUp>,
    /// Changing the password.
    pub change_password: ServerAction<ChangePassword>,
}

impl Auth {
    /// Creates the actions and the viewer resource, and provides them to the tree below. Call it
    /// inside the `<Router>`.
    pub fn provide() -> Self {
        let sign_in = ServerAction::<SignIn>::new();
        let sign_up = ServerAction::<SignUp>::new();
        let change_password = ServerAction::<ChangePassword>::new();
        // Who is signed in is asked again on every navigation: signing in, up or out ends with the
        // server sending the browser to another page, and that page must see the new state (a
        // refetch on the action itself would race the redirect).
        let location = leptos_router::hooks::use_location();
        let viewer = Resource::new(
            move || location.pathname.get(),
            |_| crate::api::account::get_viewer(),
        );
        let auth = Self {
            viewer,
            sign_in,
            sign_up,
            change_password,
        };
        provide_context(auth);
        auth
    }

    /// The context provided by [`Auth::provide`].
    pub fn get() -> Self {
        expect_context::<Self>()
    }
}

/// Shows its children to a signed-in user; sends anyone else to the sign-in page, back to this
/// page (path and query) afterwards, saying so when their session has just ended.
#[component]
pub fn RequireSignIn(children: ChildrenFn) -> impl IntoView {
    use crate::components::base::{self, GoTo};
    let auth = Auth::get();
    let children = StoredValue::new(children);
    // The page this guard was created for: once the router has moved on, it must not redirect.
    // The browser's path: under the base path already, as `next` must be.
    let location = use_location();
    let here = location.pathname.get_untracked();
    let next = match location.search.get_untracked() {
        search if search.is_empty() => here.clone(),
        search => format!("{here}?{}", search.trim_start_matches('?')),
    };
    view! {
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) if viewer.user.is_none() => {
                            if !still_at(&here) {
                                return ().into_any();
                            }
                            let ended = if viewer.session_ended { "&ended=1" } else { "" };
                            let url = base::url(&format!(
                                "/sign-in?next={}{ended}",
                                urlencoding::encode(&next)
                            ));
                            view! { <GoTo url/> }.into_any()
                        }
                        _ => children.read_value()().into_any(),
                    })
            }}
        </Transition>
    }
}

/// Where to go after signing in: `next` when it is a path on this site or a URL on one of
/// `allowed_origins` (the services behind forward authentication), else the devices page (under
/// the base path). A local `next` is taken as it is: it comes from the browser's location, so it
/// already holds the base path.
pub fn safe_next(next: Option<&str>, allowed_origins: &[String]) -> String {
    let home = || crate::components::base::url("/account/sessions");
    let Some(next) = next.map(str::trim).filter(|n| !n.is_empty()) else {
        return home();
    };
    // Nothing a header or a browser could reinterpret, and no backslash (browsers read `/\evil`
    // as another host).
    let plain =
        next.len() <= 2048 && next.chars().all(|c| c.is_ascii_graphic()) && !next.contains('\\');
    // One leading slash, then not a second one (`//evil` is another host).
    let local = next.starts_with('/') && !next.starts_with("//");
    if plain && (local || allowed_origin(next, allowed_origins)) {
        next.to_owned()
    } else {
        home()
    }
}

/// Whether `url` is on one of `origins` (each `scheme://host[:port]`, lower case): its scheme and
/// authority equal one exactly, and what follows starts a path, a query or a fragment. No user
/// information (`https://good@evil`) can pass, since `@` is no part of an allowed authority.
fn allowed_origin(url: &str, origins: &[String]) -> bool {
    let end = url
        .find("://")
        .map(|scheme| {
            let rest = &url[scheme + 3..];
            scheme + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len())
        })
        .unwrap_or(0);
    let origin = &url[..end];
    end > 0
        && origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
}

/// Whether the browser is still at `path` (the full path, base path included). While the router moves to another page the old one stays
/// on screen for a moment; it must not start redirects of its own then.
pub fn still_at(path: &str) -> bool {
    use_location().pathname.with_untracked(|p| p == path)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    /// `safe_next` with no other site allowed.
    fn local_next(next: Option<&str>) -> String {
        safe_next(next, &[])
    }

    #[test]
    fn next_urls_stay_on_this_site() {
        assert_eq!(local_next(Some("/account/password")), "/account/password");
        assert_eq!(local_next(Some("/a?b=c#d")), "/a?b=c#d");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/ok\r\nSet-Cookie: x=y",
            "/caf\u{e9}",
            "evil",
            "",
            "   ",
        ] {
            assert_eq!(local_next(Some(bad)), "/account/sessions", "{bad:?}");
        }
        assert_eq!(local_next(None), "/account/sessions");
    }

    #[test]
    fn next_urls_may_go_to_the_allowed_services_only() {
        let allowed = [
            "https://app.example.com".to_owned(),
            "http://127.0.0.1:8080".to_owned(),
        ];
        for good in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://APP.example.com/reports?q=1#top",
            "http://127.0.0.1:8080/private",
            "/account/password",
        ] {
            assert_eq!(safe_next(Some(good), &allowed), good, "{good:?}");
        }
        for bad in [
            "https://app.example.com.evil.net/",
            "https://app.example.com@evil.net/",
            "https://evil.net/?https://app.example.com",
            "http://app.example.com/",
            "http://127.0.0.1:80800/",
            "https://app.example.com:443/",
            "https://app.example.com/a b",
            "https://app.example.com\\@evil.net/",
            "javascript://app.example.com/%0aalert(1)",
        ] {
            assert_eq!(
                safe_next(Some(bad), &allowed),
                "/account/sessions",
                "{bad:?}"
            );
        }
    }
}
