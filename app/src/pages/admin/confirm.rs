//! `/admin/sessions/confirm`: the sign-out confirmation for the sessions ticked in the changelist.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::{list_selected_sessions, AdminSignOutSessions};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError};
use crate::format;
use crate::pages::sign_in::ErrorCard;

/// `/admin/sessions/confirm?ids=…`: what will end, before it ends (Django's delete confirmation).
#[component]
pub fn AdminConfirmPage() -> impl IntoView {
    let query = use_query_map();
    let auth = Auth::get();
    let action = ServerAction::<AdminSignOutSessions>::new();
    let ids =
        Signal::derive(move || query.with(|q| q.get_all("ids").unwrap_or_default().join(",")));
    let selected = Resource::new(move || ids.get(), list_selected_sessions);
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    view! {
        <Title text="Sign out sessions · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/sessions"/>
            <FormError error/>
            <Transition fallback=|| ()>
                {move || {
                    selected
                        .get()
                        .map(|result| match result {
                            Ok(sessions) if sessions.is_empty() => {
                                view! {
                                    <section class="card narrow">
                                        <h1>"Nothing selected"</h1>
                                        <p class="muted">"Tick the sessions to sign out in the list first."</p>
                                        <a class="button secondary" href=base::url("/admin/sessions")>"Back to sessions"</a>
                                    </section>
                                }
                                    .into_any()
                            }
                            Ok(sessions) => {
                                let token = auth
                                    .viewer
                                    .get_untracked()
                                    .and_then(Result::ok)
                                    .map(|v| v.csrf_token)
                                    .unwrap_or_default();
                                let ids = sessions.iter().map(|s| s.public_id.clone()).collect::<Vec<_>>().join(",");
                                let n = sessions.len();
                                view! {
                                    <section class="card">
                                        <h1>"Are you sure?"</h1>
                                        <p>
                                            {format!("{} will be signed out at once. Their browsers will have to sign in again.", format::count(n, "session", "sessions"))}
                                        </p>
                                        <ul class="confirm-list" data-testid="confirm-list">
                                            {sessions
                                                .into_iter()
                                                .map(|s| {
                                                    view! {
                                                        <li>
                                                            <strong>{s.username.clone().unwrap_or_else(|| "Anonymous".into())}</strong>
                                                            " — " {s.device.clone()} " · " <span class="mono">{s.ip.clone().unwrap_or_default()}</span>
                                                            " · " {s.location.clone()}
                                                        </li>
                                                    }
                                                })
                                                .collect_view()}
                                        </ul>
                                        <ActionForm action>
                                            <CsrfField token/>
                                            <input type="hidden" name="ids" value=ids/>
                                            <div class="actions-bar">
                                                <button type="submit" class="button danger" data-testid="confirm-sign-out-selected">
                                                    "Yes, sign them out"
                                                </button>
                                                <a class="button secondary" href=base::url("/admin/sessions")>"No, go back"</a>
                                            </div>
                                        </ActionForm>
                                    </section>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireStaff>
    }
}
