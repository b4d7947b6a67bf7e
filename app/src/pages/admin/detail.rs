//! `/admin/sessions/:id`: one session, every field.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::get_admin_session;
use crate::components::base;
use crate::format;
use crate::pages::sign_in::ErrorCard;

/// `/admin/sessions/:id`: every field, read-only. The token is never shown: it is not stored.
#[component]
pub fn AdminSessionPage() -> impl IntoView {
    let params = use_params_map();
    let detail = Resource::new(
        move || params.with(|p| p.get("id").unwrap_or_default()),
        get_admin_session,
    );
    view! {
        <Title text="Session · Admin"/>
        <RequireStaff>
            <AdminNav current=""/>
            <Transition fallback=|| ()>
                {move || {
                    detail
                        .get()
                        .map(|result| match result {
                            Ok(d) => {
                                let s = d.session.clone();
                                let rows: Vec<(&str, String)> = vec![
                                    ("Public id", s.public_id.clone()),
                                    ("User", s.username.clone().unwrap_or_else(|| "Anonymous".into())),
                                    ("Email", d.email.clone().unwrap_or_default()),
                                    ("Device", format!("{} ({})", s.device, format::category(&s.category))),
                                    ("User agent", d.user_agent.clone().unwrap_or_default()),
                                    ("IP address", s.ip.clone().unwrap_or_default()),
                                    ("Location", s.location.clone()),
                                    ("Signed in from", format!("{} ({})", d.first_ip.clone().unwrap_or_default(), d.first_location)),
                                    ("Signed in", format::absolute(s.created_at)),
                                    (
                                        "Signed in with",
                                        match (&s.auth_label, &s.aal) {
                                            (Some(label), Some(aal)) => format!("{label} ({aal})"),
                                            _ => "Not recorded".into(),
                                        },
                                    ),
                                    (
                                        "Last proved",
                                        s.authenticated_at.map_or_else(|| "Not recorded".into(), format::absolute),
                                    ),
                                    ("Last active", format::absolute(s.last_activity_at)),
                                    ("Last written", format::absolute(d.updated_at)),
                                    ("Expires", format!("{} ({})", format::absolute(s.expires_at), d.expiry)),
                                    ("Active", if s.active { "Yes".into() } else { "No (expired)".into() }),
                                ];
                                view! {
                                    <h1>"Session " <span class="mono">{s.public_id.clone()}</span></h1>
                                    <dl class="detail" data-testid="session-detail">
                                        {rows
                                            .into_iter()
                                            .map(|(k, v)| view! { <dt>{k}</dt> <dd>{v}</dd> })
                                            .collect_view()}
                                    </dl>
                                    <h2>"Session data"</h2>
                                    <pre class="json" data-testid="session-data">{d.data.clone()}</pre>
                                    {d.client_hints.clone().map(|h| view! { <h2>"Client hints"</h2> <pre class="json">{h}</pre> })}
                                    <p><a href=base::url("/admin/sessions")>"← All sessions"</a></p>
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
