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

/// Whether the browser is still at `path` (the full path, base path included). While the router moves to another page the old one stays
/// on screen for a moment; it must not start redirects of its own then.
pub fn still_at(path: &str) -> bool {
    use_location().pathname.with_untracked(|p| p == path)
}
