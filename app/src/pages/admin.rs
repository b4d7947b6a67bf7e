//! The staff admin: the sessions changelist (filters, search, sort, pages, selection), the sign-out
//! confirmation, session details, users, and the audit log. Every page works without JavaScript:
//! filters and sorting are links, search and selection are GET forms, changes are POST forms.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::sign_in::ErrorCard;
use crate::api::admin::{
    get_admin_session, list_admin_sessions, list_admin_users, list_audit_log,
    list_selected_sessions, AdminSession, AdminSetActive, AdminSignOutSessions, AdminSignOutUser,
    Changelist, ChangelistParams,
};
use crate::components::auth::{Auth, RequireSignIn};
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError, Notice};
use crate::error::AppError;
use crate::format;

/// Staff pages: a signed-in user who is not staff sees "403".
#[component]
fn RequireStaff(children: ChildrenFn) -> impl IntoView {
    let auth = Auth::get();
    let children = StoredValue::new(children);
    view! {
        <RequireSignIn>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(v) if v.user.as_ref().is_some_and(|u| u.is_staff) => {
                            children.read_value()().into_any()
                        }
                        Ok(_) => {
                            #[cfg(feature = "ssr")]
                            if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
                                r.set_status(axum::http::StatusCode::FORBIDDEN);
                            }
                            view! { <ErrorCard error=AppError::Forbidden/> }.into_any()
                        }
                        Err(error) => view! { <ErrorCard error/> }.into_any(),
                    })
            }}
        </RequireSignIn>
    }
}

/// The admin's own navigation.
#[component]
fn AdminNav(current: &'static str) -> impl IntoView {
    let link = move |href: &'static str, label: &'static str| {
        let here = href == current;
        view! {
            <a href=base::url(href) class:active=here aria-current=here.then_some("page")>
                {label}
            </a>
        }
    };
    view! {
        <nav class="admin-nav" aria-label="Administration">
            {link("/admin/sessions", "Sessions")}
            {link("/admin/users", "Users")}
            {link("/admin/audit", "Audit log")}
        </nav>
    }
}

fn params_from_query(q: &leptos_router::params::ParamsMap) -> ChangelistParams {
    ChangelistParams {
        state: q.get("state"),
        owner: q.get("owner"),
        user: q.get("user"),
        country: q.get("country"),
        device: q.get("device"),
        since: q.get("since"),
        q: q.get("q"),
        sort: q.get("sort"),
        dir: q.get("dir"),
        page: q.get("page"),
    }
}

/// The changelist URL for `params`.
fn changelist_href(params: &ChangelistParams) -> String {
    let pairs = [
        ("state", &params.state),
        ("owner", &params.owner),
        ("user", &params.user),
        ("country", &params.country),
        ("device", &params.device),
        ("since", &params.since),
        ("q", &params.q),
        ("sort", &params.sort),
        ("dir", &params.dir),
        ("page", &params.page),
    ];
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", urlencoding::encode(v)))
        })
        .collect();
    if query.is_empty() {
        base::url("/admin/sessions")
    } else {
        base::url(&format!("/admin/sessions?{}", query.join("&")))
    }
}

type Field = fn(&mut ChangelistParams) -> &mut Option<String>;

/// One filter group of the side panel: links that set one parameter (and go back to page 1).
fn filter_group(
    title: &'static str,
    params: &ChangelistParams,
    field: Field,
    choices: Vec<(Option<String>, String)>,
) -> AnyView {
    let current = field(&mut params.clone()).clone();
    let links = choices
        .into_iter()
        .map(|(value, label)| {
            let mut next = params.clone();
            *field(&mut next) = value.clone();
            next.page = None;
            let selected = value == current;
            view! {
                <li>
                    <a href=changelist_href(&next) class:selected=selected aria-current=selected.then_some("true")>
                        {label}
                    </a>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="filter">
            <h3>{title}</h3>
            <ul>{links}</ul>
        </div>
    }
    .into_any()
}

/// `/admin/sessions`: Django's changelist for sessions.
#[component]
pub fn AdminSessionsPage() -> impl IntoView {
    let query = use_query_map();
    let sign_out_user = ServerAction::<AdminSignOutUser>::new();
    let data = Resource::new(
        move || (query.with(params_from_query), sign_out_user.version().get()),
        |(params, _)| list_admin_sessions(params),
    );
    let error = form_error(
        move || sign_out_user.value().get().and_then(Result::err),
        sign_out_user.version(),
    );
    let notice = Signal::derive(move || {
        if let Some(Ok(n)) = sign_out_user.value().get() {
            return Some(format!(
                "{} signed out.",
                format::count(n as usize, "session was", "sessions were")
            ));
        }
        query.with(|q| {
            q.get("ended")
                .and_then(|n| n.parse::<usize>().ok())
                .map(|n| {
                    format!(
                        "{} signed out.",
                        format::count(n, "session was", "sessions were")
                    )
                })
        })
    });
    view! {
        <Title text="Sessions · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/sessions"/>
            {move || notice.get().map(|text| view! { <Notice text/> })}
            <FormError error/>
            <Transition fallback=|| view! { <p class="muted">"Loading sessions…"</p> }>
                {move || {
                    data.get()
                        .map(|result| match result {
                            Ok(list) => {
                                let params = query.with_untracked(params_from_query);
                                view! { <ChangelistView list params sign_out_user/> }.into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireStaff>
    }
}

#[component]
fn ChangelistView(
    list: Changelist,
    params: ChangelistParams,
    sign_out_user: ServerAction<AdminSignOutUser>,
) -> impl IntoView {
    let auth = Auth::get();
    let token = auth
        .viewer
        .get_untracked()
        .and_then(Result::ok)
        .map(|v| v.csrf_token)
        .unwrap_or_default();
    let total_text = if list.total_exact {
        format::count(list.total as usize, "session", "sessions")
    } else {
        format!("More than {} sessions", group_digits(list.total))
    };
    let pages = list.total.div_ceil(u64::from(list.page_size)).max(1);
    let now = list.now;
    let heading = match &list.user {
        Some((_, name)) => format!("Sessions of {name}"),
        None => "Sessions".to_owned(),
    };
    let user_banner = list.user.clone().map(|(id, name)| {
        let token = token.clone();
        view! {
            <div class="user-banner">
                <p>{format!("Every session of {name}.")}" "<a href=base::url("/admin/sessions")>"All sessions"</a></p>
                <ActionForm action=sign_out_user>
                    <CsrfField token/>
                    <input type="hidden" name="user_id" value=id.to_string()/>
                    <button type="submit" class="button danger small" data-testid="sign-out-user">
                        {format!("Sign out all sessions of {name}")}
                    </button>
                </ActionForm>
            </div>
        }
        .into_any()
    });
    let state_choices = vec![
        (None, "Active".to_owned()),
        (Some("expired".to_owned()), "Expired".to_owned()),
        (Some("all".to_owned()), "All".to_owned()),
    ];
    let owner_choices = vec![
        (None, "Everyone".to_owned()),
        (Some("mine".to_owned()), "Mine".to_owned()),
    ];
    let mut country_choices = vec![(None, "Any".to_owned())];
    country_choices.extend(
        list.countries
            .iter()
            .map(|c| (Some(c.clone()), format!("{} {c}", format::flag(c)))),
    );
    let mut device_choices = vec![(None, "Any".to_owned())];
    device_choices.extend(
        [
            "desktop",
            "smartphone",
            "mobilephone",
            "appliance",
            "crawler",
            "unknown",
        ]
        .into_iter()
        .map(|k| (Some(k.to_owned()), format::category(k).to_owned())),
    );
    let since_choices = vec![
        (None, "Any time".to_owned()),
        (Some("today".to_owned()), "Today".to_owned()),
        (Some("week".to_owned()), "Past 7 days".to_owned()),
        (Some("month".to_owned()), "This month".to_owned()),
    ];
    let header = |key: &'static str, label: &'static str| {
        let current = params.sort.clone().unwrap_or_else(|| "expires".to_owned());
        let descending = match params.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => current == "expires",
        };
        let mut next = params.clone();
        next.sort = Some(key.to_owned());
        next.dir = Some(
            if current == key && descending {
                "asc"
            } else {
                "desc"
            }
            .to_owned(),
        );
        next.page = None;
        let sorted = (current == key).then_some(if descending {
            "descending"
        } else {
            "ascending"
        });
        let arrow = match sorted {
            Some("descending") => " ▼",
            Some(_) => " ▲",
            None => "",
        };
        view! {
            <th scope="col" aria-sort=sorted.unwrap_or("none")>
                <a href=changelist_href(&next)>{label}{arrow}</a>
            </th>
        }
        .into_any()
    };
    let page_link = |page: u64, label: String| {
        let mut next = params.clone();
        next.page = Some(page.to_string());
        view! { <a class="button secondary small" href=changelist_href(&next)>{label}</a> }
            .into_any()
    };
    let rows = list
        .sessions
        .into_iter()
        .map(|s| view! { <ChangelistRow session=s now/> }.into_any())
        .collect_view()
        .into_any();
    let aside = view! {
        <aside class="filters" aria-label="Filters">
                <h2>"Filter"</h2>
                {filter_group("Status", &params, |p| &mut p.state, state_choices)}
                {filter_group("Owner", &params, |p| &mut p.owner, owner_choices)}
                {filter_group("Signed in", &params, |p| &mut p.since, since_choices)}
                {filter_group("Device", &params, |p| &mut p.device, device_choices)}
                {filter_group("Country", &params, |p| &mut p.country, country_choices)}
        </aside>
    }
    .into_any();
    let search = view! {
                <form method="get" action=base::url("/admin/sessions") class="search" role="search">
                    {[("state", &params.state), ("owner", &params.owner), ("user", &params.user), ("country", &params.country), ("device", &params.device), ("since", &params.since)]
                        .into_iter()
                        .filter_map(|(k, v)| v.clone().map(|v| view! { <input type="hidden" name=k value=v/> }))
                        .collect_view()}
                    <label for="q" class="visually-hidden">"Search sessions"</label>
                    <input
                        id="q"
                        name="q"
                        type="search"
                        value=params.q.clone().unwrap_or_default()
                        placeholder="Username, email, IP, 10.1.0.0/16 or ua:Firefox"
                        data-testid="admin-search"
                    />
                    <button type="submit" class="button">"Search"</button>
                </form>
    }
    .into_any();
    view! {
        <h1>{heading}</h1>
        {user_banner}
        <div class="changelist">
            <div class="changelist-main">
                {search}
                <p class="count" data-testid="result-count">{total_text}</p>
                <form method="get" action=base::url("/admin/sessions/confirm")>
                    <div class="table-wrap">
                        <table class="changelist-table">
                            <thead>
                                <tr>
                                    <th scope="col"><span class="visually-hidden">"Select"</span></th>
                                    {header("user", "User")}
                                    {header("ip", "IP address")}
                                    {header("location", "Location")}
                                    {header("device", "Device")}
                                    {header("signed_in", "Signed in")}
                                    {header("last_active", "Last active")}
                                    {header("expires", "Expires")}
                                    <th scope="col">"Active"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                    <div class="actions-bar">
                        <button type="submit" class="button danger" data-testid="sign-out-selected">
                            "Sign out selected sessions"
                        </button>
                        <span class="pager">
                            {(list.page > 1).then(|| page_link(u64::from(list.page) - 1, "Previous".into()))}
                            <span class="muted">{format!("Page {} of {}{}", list.page, pages, if list.total_exact { "" } else { "+" })}</span>
                            {(u64::from(list.page) < pages || !list.total_exact).then(|| page_link(u64::from(list.page) + 1, "Next".into()))}
                        </span>
                    </div>
                </form>
            </div>
            {aside}
        </div>
    }
}

#[component]
fn ChangelistRow(session: AdminSession, now: i64) -> impl IntoView {
    let user = match (session.user_id, session.username.clone()) {
        (Some(id), Some(name)) => view! {
            <a href=base::url(&format!("/admin/sessions?user={id}"))>{name}</a>
        }
        .into_any(),
        _ => view! { <span class="muted">"Anonymous"</span> }.into_any(),
    };
    let flag = session
        .country_code
        .as_deref()
        .map(format::flag)
        .unwrap_or_default();
    view! {
        <tr data-testid="admin-row">
            <td>
                <input
                    type="checkbox"
                    name="ids"
                    value=session.public_id.clone()
                    aria-label=format!("Select session {}", session.public_id)
                />
            </td>
            <td>{user}</td>
            <td>
                <a class="mono" href=base::url(&format!("/admin/sessions/{}", session.public_id))>
                    {session.ip.clone().unwrap_or_else(|| "—".into())}
                </a>
            </td>
            <td>{flag}" "{session.location.clone()}</td>
            <td>{session.device.clone()}</td>
            <td title=format::absolute(session.created_at)>{format::relative(now, session.created_at)}</td>
            <td title=format::absolute(session.last_activity_at)>{format::relative(now, session.last_activity_at)}</td>
            <td title=format::absolute(session.expires_at)>{format::relative(now, session.expires_at)}</td>
            <td>
                {if session.active {
                    view! { <span class="yes" aria-label="active">"✔"</span> }.into_any()
                } else {
                    view! { <span class="no" aria-label="expired">"✘"</span> }.into_any()
                }}
            </td>
        </tr>
    }
}

fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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
