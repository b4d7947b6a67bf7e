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
    use leptos_router::components::Redirect;
    let auth = Auth::get();
    let children = StoredValue::new(children);
    // The page this guard was created for: once the router has moved on, it must not redirect.
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
                            let path = format!("/sign-in?next={}{ended}", urlencoding::encode(&next));
                            view! { <Redirect path/> }.into_any()
                        }
                        _ => children.read_value()().into_any(),
                    })
            }}
        </Transition>
    }
}

/// Where to go after signing in: `next` when it is a path on this site, else the devices page.
pub fn safe_next(next: Option<&str>) -> String {
    const HOME: &str = "/account/sessions";
    let Some(next) = next.map(str::trim).filter(|n| !n.is_empty()) else {
        return HOME.to_owned();
    };
    // One leading slash, then not a second one or a backslash (browsers read `/\evil` and `//evil`
    // as another host), and nothing a header or a browser could reinterpret.
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048
        && next.chars().all(|c| c.is_ascii_graphic());
    if local {
        next.to_owned()
    } else {
        HOME.to_owned()
    }
}

/// Whether the browser is still at `path`. While the router moves to another page the old one stays
/// on screen for a moment; it must not start redirects of its own then.
pub fn still_at(path: &str) -> bool {
    use_location().pathname.with_untracked(|p| p == path)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_urls_stay_on_this_site() {
        assert_eq!(safe_next(Some("/account/password")), "/account/password");
        assert_eq!(safe_next(Some("/a?b=c#d")), "/a?b=c#d");
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
            assert_eq!(safe_next(Some(bad)), "/account/sessions", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/account/sessions");
    }
}
