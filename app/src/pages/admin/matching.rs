//! "Sign out all N sessions matching this search": `/admin/sessions/sign-out-matching` (the count
//! and the confirmation) and `/admin/jobs/:id` (the progress, refreshed every second: by the page
//! with JavaScript, by the browser without).

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use super::frame::{AdminNav, RequireStaff};
use super::sessions::{changelist_href, params_from_query};
use crate::api::admin::{get_job, preview_sign_out_matching, ChangelistParams, SignOutMatching};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError};
use crate::pages::sign_in::ErrorCard;

/// The hidden fields that carry the changelist's search to the sign-out (its state, order and page
/// do not matter: only live sessions end).
fn search_fields(params: &ChangelistParams) -> impl IntoView {
    [
        ("owner", &params.owner),
        ("user", &params.user),
        ("country", &params.country),
        ("device", &params.device),
        ("since", &params.since),
        ("aal", &params.aal),
        ("q", &params.q),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value.clone().map(|value| {
            view! { <input type="hidden" name=format!("params[{name}]") value=value/> }
        })
    })
    .collect_view()
}

/// `/admin/sessions/sign-out-matching?…`: how many live sessions the search matches, and the
/// confirmation that signs them all out.
#[component]
pub fn AdminSignOutMatchingPage() -> impl IntoView {
    let query = use_query_map();
    let auth = Auth::get();
    let action = ServerAction::<SignOutMatching>::new();
    let preview = Resource::new(
        move || query.with(params_from_query),
        preview_sign_out_matching,
    );
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    // With JavaScript the form's answer is the job: go and watch it.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = action.value().get() {
            navigate(&base::url(&format!("/admin/jobs/{id}")), Default::default());
        }
    });
    view! {
        <Title text="Sign out matching sessions · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/sessions"/>
            <FormError error/>
            <Transition fallback=|| ()>
                {move || {
                    let params = query.with_untracked(params_from_query);
                    let back = changelist_href(&params);
                    preview
                        .get()
                        .map(|result| match result {
                            Ok(found) if found.matching == 0 => {
                                view! {
                                    <section class="card narrow" data-testid="nothing-matches">
                                        <h1>"Nothing to sign out"</h1>
                                        <p class="muted">{format!("No live session matches {}.", found.described)}</p>
                                        <a class="button secondary" href=back>"Back to sessions"</a>
                                    </section>
                                }
                                    .into_any()
                            }
                            Ok(found) => {
                                let token = auth
                                    .viewer
                                    .get_untracked()
                                    .and_then(Result::ok)
                                    .map(|v| v.csrf_token)
                                    .unwrap_or_default();
                                let count = crate::format::count(found.matching as usize, "session", "sessions");
                                view! {
                                    <section class="card" data-testid="sign-out-matching">
                                        <h1>{format!("Sign out {count}?")}</h1>
                                        <p>
                                            <strong data-testid="matching-count">{count.clone()}</strong>
                                            {format!(" match {}. ", found.described)}
                                            "Every one of them will be signed out, and their browsers will have to sign in again. "
                                            "Your own session stays signed in."
                                        </p>
                                        <p class="muted">
                                            "They end in batches, so people keep working meanwhile; you can watch it go. "
                                            "The audit log records it as one action."
                                        </p>
                                        <ActionForm action>
                                            <CsrfField token/>
                                            {search_fields(&params)}
                                            <div class="actions-bar">
                                                <button type="submit" class="button danger" data-testid="confirm-sign-out-matching">
                                                    {format!("Yes, sign out {count}")}
                                                </button>
                                                <a class="button secondary" href=back>"No, go back"</a>
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

/// `/admin/jobs/:id`: how far a long staff action got.
#[component]
pub fn AdminJobPage() -> impl IntoView {
    let params = use_params_map();
    let tick = RwSignal::new(0_u32);
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let job = Resource::new(move || (id(), tick.get()), |(id, _)| get_job(id));
    let running = move || {
        job.get()
            .and_then(Result::ok)
            .is_none_or(|progress| progress.state == "running")
    };
    // With JavaScript: ask again every second while it runs.
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if running() {
                    tick.update(|t| *t += 1);
                }
            },
            Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <Title text="Progress · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/sessions"/>
            <Transition fallback=|| ()>
                {move || {
                    job.get()
                        .map(|result| match result {
                            Ok(progress) => {
                                let busy = progress.state == "running";
                                let percent = progress
                                    .done
                                    .saturating_mul(100)
                                    .checked_div(progress.total)
                                    .map_or(100, |p| p.min(100));
                                let status = match progress.state.as_str() {
                                    "running" => format!("{} of about {} signed out…", progress.done, progress.total),
                                    "finished" => format!("Done: {} signed out.", crate::format::count(progress.done as usize, "session", "sessions")),
                                    _ => format!("Stopped after {} signed out.", progress.done),
                                };
                                view! {
                                    // Without JavaScript the browser reloads the page while it runs.
                                    {busy.then(|| view! { <noscript><meta http-equiv="refresh" content="1"/></noscript> })}
                                    <section class="card job" data-testid="job" data-state=progress.state.clone()>
                                        <h1>{progress.title.clone()}</h1>
                                        <progress
                                            max=progress.total.max(1).to_string()
                                            value=progress.done.min(progress.total.max(1)).to_string()
                                            aria-label="Signed out so far"
                                        >
                                            {format!("{percent}%")}
                                        </progress>
                                        <p class="job-status" role="status" data-testid="job-status">{status}</p>
                                        {progress.error.clone().map(|why| view! { <p class="error-text">{why}</p> })}
                                        {(!busy).then(|| view! {
                                            <div class="actions-bar">
                                                <a class="button secondary" href=base::url("/admin/sessions")>"Back to sessions"</a>
                                                <a class="button secondary" href=base::url("/admin/audit")>"Audit log"</a>
                                            </div>
                                        })}
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
