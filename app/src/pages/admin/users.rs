//! `/admin/users`: the user list, with activation and deactivation.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::{list_admin_users, AdminSetActive};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError};
use crate::format;
use crate::pages::sign_in::ErrorCard;

/// `/admin/users`: users with their active sessions; activate and deactivate.
#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let query = use_query_map();
    let auth = Auth::get();
    let set_active = ServerAction::<AdminSetActive>::new();
    let users = Resource::new(
        move || (query.with(|q| q.get("q")), set_active.version().get()),
        |(q, _)| list_admin_users(q, None),
    );
    let error = form_error(
        move || set_active.value().get().and_then(Result::err),
        set_active.version(),
    );
    view! {
        <Title text="Users · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/users"/>
            <h1>"Users"</h1>
            <FormError error/>
            <form method="get" action=base::url("/admin/users") class="search" role="search">
                <label for="uq" class="visually-hidden">"Search users"</label>
                <input id="uq" name="q" type="search" placeholder="Username or email"
                    value=move || query.with(|q| q.get("q").unwrap_or_default())/>
                <button type="submit" class="button">"Search"</button>
            </form>
            <Transition fallback=|| ()>
                {move || {
                    let token = auth.viewer.get().and_then(Result::ok).map(|v| v.csrf_token).unwrap_or_default();
                    users
                        .get()
                        .map(|result| match result {
                            Ok(list) => {
                                let me = list.me;
                                view! {
                                    <p class="count">{format::count(list.total as usize, "user", "users")}</p>
                                    <div class="table-wrap">
                                        <table class="changelist-table">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"Username"</th>
                                                    <th scope="col">"Email"</th>
                                                    <th scope="col">"Staff"</th>
                                                    <th scope="col">"Active sessions"</th>
                                                    <th scope="col">"Status"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list
                                                    .users
                                                    .into_iter()
                                                    .map(|u| {
                                                        let token = token.clone();
                                                        let label = if u.is_active { "Deactivate" } else { "Activate" };
                                                        view! {
                                                            <tr data-testid="user-row">
                                                                <td><a href=base::url(&format!("/admin/sessions?user={}", u.id))>{u.username.clone()}</a></td>
                                                                <td>{u.email.clone().unwrap_or_default()}</td>
                                                                <td>{if u.is_staff { "✔" } else { "" }}</td>
                                                                <td>{u.active_sessions}</td>
                                                                <td>
                                                                    {if u.is_active { "Active" } else { "Deactivated" }}
                                                                    {(u.id != me).then(|| view! {
                                                                        <ActionForm action=set_active>
                                                                            <CsrfField token/>
                                                                            <input type="hidden" name="user_id" value=u.id.to_string()/>
                                                                            <input type="hidden" name="active" value=(!u.is_active).to_string()/>
                                                                            <button type="submit" class="button secondary small">{label}</button>
                                                                        </ActionForm>
                                                                    })}
                                                                </td>
                                                            </tr>
                                                        }
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
