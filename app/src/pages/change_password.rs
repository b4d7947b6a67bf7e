//! `/account/password`: the signed-in user changes their password, and may sign out every other
//! session with it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::sign_in::ErrorCard;
use crate::components::auth::{Auth, RequireSignIn};
use crate::components::form::{
    form_error, invalid, ActionForm, CsrfField, FormError, NewPasswordFields, Notice,
};

fn changed_text(signed_out: u64) -> String {
    match signed_out {
        0 => "Your password was changed.".to_owned(),
        1 => "Your password was changed, and 1 other session was signed out.".to_owned(),
        n => format!("Your password was changed, and {n} other sessions were signed out."),
    }
}

/// `/account/password`: change the password, signing out the other sessions (on by default).
#[component]
pub fn ChangePasswordPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let action = auth.change_password;
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    // With JavaScript the result arrives here; without, as `?changed=N` after the redirect.
    let done = Signal::derive(move || {
        if action.version().get() > 0 {
            action
                .value()
                .get()
                .and_then(Result::ok)
                .map(|changed| changed.signed_out)
        } else {
            query.with(|q| q.get("changed").and_then(|n| n.parse::<u64>().ok()))
        }
    });
    let form = NodeRef::<leptos::html::Form>::new();
    // A changed password leaves nothing in the form.
    Effect::new(move |_| {
        if done.get().is_some() {
            if let Some(form) = form.get() {
                form.reset();
            }
        }
    });
    view! {
        <Title text="Change password"/>
        <RequireSignIn>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) => {
                            view! {
                                <section class="card narrow auth">
                                    <h1>"Change password"</h1>
                                    {move || done.get().map(|n| view! { <Notice text=changed_text(n)/> })}
                                    <FormError error/>
                                    <ActionForm action node_ref=form>
                                        <div class="form">
                                            <CsrfField token=viewer.csrf_token/>
                                            <label for="current_password">"Current password"</label>
                                            <input
                                                id="current_password"
                                                type="password"
                                                name="current_password"
                                                autocomplete="current-password"
                                                required
                                                aria-invalid=invalid(error, "current_password")
                                            />
                                            <NewPasswordFields error min_chars=viewer.min_password_chars/>
                                            <label class="check">
                                                <input type="checkbox" name="sign_out_others" value="on" checked/>
                                                <span>"Sign out all my other sessions"</span>
                                            </label>
                                            <button type="submit" class="button wide" data-testid="change-password">
                                                "Change password"
                                            </button>
                                        </div>
                                    </ActionForm>
                                </section>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorCard error/> }.into_any(),
                    })
            }}
        </RequireSignIn>
    }
}
