//! `/admin/audit`: the audit log of staff actions.

use leptos::prelude::*;
use leptos_meta::Title;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::list_audit_log;
use crate::format;
use crate::pages::sign_in::ErrorCard;

/// `/admin/audit`: every staff action, newest first.
#[component]
pub fn AdminAuditPage() -> impl IntoView {
    let log = Resource::new(|| (), |_| list_audit_log(None));
    view! {
        <Title text="Audit log · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/audit"/>
            <h1>"Audit log"</h1>
            <Transition fallback=|| ()>
                {move || {
                    log.get()
                        .map(|result| match result {
                            Ok(lines) if lines.is_empty() => {
                                view! { <p class="muted">"No staff action yet."</p> }.into_any()
                            }
                            Ok(lines) => {
                                view! {
                                    <div class="table-wrap">
                                        <table class="changelist-table" data-testid="audit-log">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"When"</th>
                                                    <th scope="col">"Who"</th>
                                                    <th scope="col">"From"</th>
                                                    <th scope="col">"What"</th>
                                                    <th scope="col">"Sessions"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {lines
                                                    .into_iter()
                                                    .map(|l| view! {
                                                        <tr>
                                                            <td>{format::absolute(l.at)}</td>
                                                            <td>{l.actor.clone()}</td>
                                                            <td class="mono">{l.actor_ip.clone().unwrap_or_default()}</td>
                                                            <td>{l.detail.clone()}</td>
                                                            <td class="mono small-ids">{l.session_ids.join(", ")}</td>
                                                        </tr>
                                                    })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
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
