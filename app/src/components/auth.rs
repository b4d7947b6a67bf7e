//! Who is looking at the page, and the account actions every page may use, shared through context.

use leptos::prelude::*;

use crate::api::account::{ChangePassword, SignIn, SignOut, SignUp, Viewer};
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
    /// Signing out.
    pub sign_out: ServerAction<SignOut>,
    /// Changing the password.
    pub change_password: ServerAction<ChangePassword>,
}

impl Auth {
    /// Creates the actions and the viewer resource, and provides them to the tree below.
    pub fn provide() -> Self {
        let sign_in = ServerAction::<SignIn>::new();
        let sign_up = ServerAction::<SignUp>::new();
        let sign_out = ServerAction::<SignOut>::new();
        let change_password = ServerAction::<ChangePassword>::new();
        // Who is signed in changes only when one of these succeeds; a failed attempt must not
        // re-render the form (and wipe what was typed).
        let (changes, set_changes) = signal(0u32);
        let bump_on_success = move |succeeded: Signal<bool>| {
            Effect::new(move |_| {
                if succeeded.get() {
                    set_changes.update(|n| *n += 1);
                }
            });
        };
        bump_on_success(Signal::derive(move || {
            matches!(sign_in.value().get(), Some(Ok(())))
        }));
        bump_on_success(Signal::derive(move || {
            matches!(sign_up.value().get(), Some(Ok(())))
        }));
        bump_on_success(Signal::derive(move || {
            matches!(sign_out.value().get(), Some(Ok(())))
        }));
        let viewer = Resource::new(move || changes.get(), |_| crate::api::account::get_viewer());
        let auth = Self {
            viewer,
            sign_in,
            sign_up,
            sign_out,
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

/// Shows its children to a signed-in user; sends anyone else to the sign-in page, back to `next`
/// afterwards (saying so when their session has just ended).
#[component]
pub fn RequireSignIn(next: &'static str, children: ChildrenFn) -> impl IntoView {
    use leptos_router::components::Redirect;
    let auth = Auth::get();
    let children = StoredValue::new(children);
    view! {
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) if viewer.user.is_none() => {
                            let ended = if viewer.session_ended { "&ended=1" } else { "" };
                            let path = format!("/sign-in?next={}{ended}", urlencoding::encode(next));
                            view! { <Redirect path/> }.into_any()
                        }
                        _ => children.read_value()().into_any(),
                    })
            }}
        </Transition>
    }
}
