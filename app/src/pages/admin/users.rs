//! `/admin/users`: the user list, with activation and deactivation, and (audited) "send reset link"
//! and "set password".

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::{
    list_admin_users, AdminSendResetLink, AdminSetActive, AdminSetPassword, AdminUser,
};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError, Notice};
use crate::format;
use crate::pages::sign_in::ErrorCard;

/// `/admin/users`: users with their active sessions; activate and deactivate.
#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let query = use_query_map();
    let auth = Auth::get();
    let set_active = ServerAction::<AdminSetActive>::new();
    let send_reset = ServerAction::<AdminSendResetLink>::new();
    let set_password = ServerAction::<AdminSetPassword>::new();
    let users = Resource::new(
        move || {
            (
                query.with(|q| q.get("q")),
                set_active.version().get(),
                set_password.version().get(),
            )
        },
        |(q, ..)| list_admin_users(q, None),
    );
    let active_error = form_error(
        move || set_active.value().get().and_then(Result::err),
        set_active.version(),
    );
    let reset_error = form_error(
        move || send_reset.value().get().and_then(Result::err),
        send_reset.version(),
    );
    let password_error = form_error(
        move || set_password.value().get().and_then(Result::err),
        set_password.version(),
    );
    let error = Signal::derive(move || {
        password_error
            .get()
            .or_else(|| reset_error.get())
            .or_else(|| active_error.get())
    });
    // What the last account action did: from its action with JavaScript, `?done=` without.
    let notice = Signal::derive(move || {
        if let Some(Ok(username)) = send_reset.value().get() {
            return Some(format!(
                "A password reset link is on its way to {username}."
            ));
        }
        if let Some(Ok(ended)) = set_password.value().get() {
            return Some(password_set(ended));
        }
        if send_reset.version().get() + set_password.version().get() > 0 {
            return None;
        }
        query.with(|q| match q.get("done").as_deref() {
            Some("reset_link") => Some("A password reset link is on its way.".to_owned()),
            Some("password") => Some(
                "The password was set, and every session of the user was signed out.".to_owned(),
            ),
            _ => None,
        })
    });
    view! {
        <Title text="Users · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/users"/>
            <h1>"Users"</h1>
            {move || notice.get().map(|text| view! { <Notice text/> })}
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
                                                    <th scope="col">"Password"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list
                                                    .users
                                                    .into_iter()
                                                    .map(|u| {
                                                        let token = token.clone();
                                                        let password_token = token.clone();
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
                                                                <td>
                                                                    <PasswordActions user=u.clone() token=password_token send_reset set_password/>
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

fn password_set(ended: u64) -> String {
    match ended {
        1 => "The password was set, and 1 session of the user was signed out.".to_owned(),
        n => format!("The password was set, and {n} sessions of the user were signed out."),
    }
}

/// "Send reset link" (for a user with an address) and "Set password", each behind a disclosure.
#[component]
fn PasswordActions(
    user: AdminUser,
    token: String,
    send_reset: ServerAction<AdminSendResetLink>,
    set_password: ServerAction<AdminSetPassword>,
) -> impl IntoView {
    let id = user.id.to_string();
    let send = user.email.clone().filter(|_| user.is_active).map(|email| {
        let token = token.clone();
        let id = id.clone();
        view! {
            <ActionForm action=send_reset>
                <CsrfField token/>
                <input type="hidden" name="user_id" value=id/>
                <button
                    type="submit"
                    class="button secondary small"
                    title=format!("Mail a link to {email}")
                    data-testid="send-reset-link"
                >
                    "Send reset link"
                </button>
            </ActionForm>
        }
    });
    let field = format!("password-{}", user.id);
    let confirm = format!("password-confirm-{}", user.id);
    view! {
        <div class="password-actions">
            {send}
            <details class="confirm">
                <summary class="button secondary small" data-testid="set-password">
                    "Set password"
                    <span class="visually-hidden">{format!(" of {}", user.username)}</span>
                </summary>
                <div class="confirm-body">
                    <p>{format!("Every session of {} will be signed out.", user.username)}</p>
                    <ActionForm action=set_password>
                        <div class="form">
                            <CsrfField token/>
                            <input type="hidden" name="user_id" value=id/>
                            <label for=field.clone()>"New password"</label>
                            <input id=field type="password" name="password" autocomplete="new-password" required/>
                            <label for=confirm.clone()>"Repeat it"</label>
                            <input id=confirm type="password" name="password_confirm" autocomplete="new-password" required/>
                            <button type="submit" class="button danger small" data-testid="confirm-set-password">
                                "Set password"
                            </button>
                        </div>
                    </ActionForm>
                </div>
            </details>
        </div>
    }
}
