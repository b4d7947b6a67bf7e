//! `/admin/sessions`: the sessions changelist (filters, search, sort, pages, selection). Filters,
//! sorting and paging are links carrying the whole query, so the page works without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::{
    list_admin_sessions, AdminSession, AdminSignOutUser, Changelist, ChangelistParams,
};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError, Notice};
use crate::format;
use crate::pages::sign_in::ErrorCard;

pub(super) fn params_from_query(q: &leptos_router::params::ParamsMap) -> ChangelistParams {
    ChangelistParams {
        state: q.get("state"),
        owner: q.get("owner"),
        user: q.get("user"),
        country: q.get("country"),
        device: q.get("device"),
        since: q.get("since"),
        aal: q.get("aal"),
        q: q.get("q"),
        sort: q.get("sort"),
        dir: q.get("dir"),
        page: q.get("page"),
    }
}

/// The changelist URL for `params`.
pub(super) fn changelist_href(params: &ChangelistParams) -> String {
    let pairs = [
        ("state", &params.state),
        ("owner", &params.owner),
        ("user", &params.user),
        ("country", &params.country),
        ("device", &params.device),
        ("since", &params.since),
        ("aal", &params.aal),
        ("q", &params.q),
        ("sort", &params.sort),
        ("dir", &params.dir),
        ("page", &params.page),
    ];
    super::href_with("/admin/sessions", &pairs)
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
    // Everything the search matches, not only this page: offered once something narrows it.
    let narrowed = [
        &params.owner,
        &params.user,
        &params.country,
        &params.device,
        &params.since,
        &params.aal,
        &params.q,
    ]
    .into_iter()
    .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()));
    let matching_link = (narrowed && list.total > 0).then(|| {
        let href = changelist_href(&params).replacen(
            "/admin/sessions",
            "/admin/sessions/sign-out-matching",
            1,
        );
        view! {
            <a class="button danger-outline small" href=href data-testid="sign-out-matching">
                "Sign out all matching…"
            </a>
        }
    });
    // A user's view: what ended, under what is live.
    let ended = list.user.clone().map(|(id, name)| {
        let ended = list.ended.clone();
        view! {
            <section class="user-history" data-testid="user-history">
                <h2>{format!("Ended sessions of {name}")}</h2>
                <super::history::EndedTable ended now/>
                <p>
                    <a href=base::url(&format!("/admin/history?user={id}"))>"Search all of their history"</a>
                </p>
            </section>
        }
        .into_any()
    });
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
    let aal_choices = vec![
        (None, "Any".to_owned()),
        (Some("aal2".to_owned()), "Two-step (aal2)".to_owned()),
        (Some("aal1".to_owned()), "Password only (aal1)".to_owned()),
    ];
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
                {filter_group("Sign-in strength", &params, |p| &mut p.aal, aal_choices)}
                {filter_group("Device", &params, |p| &mut p.device, device_choices)}
                {filter_group("Country", &params, |p| &mut p.country, country_choices)}
        </aside>
    }
    .into_any();
    let search = view! {
                <form method="get" action=base::url("/admin/sessions") class="search" role="search">
                    {[("state", &params.state), ("owner", &params.owner), ("user", &params.user), ("country", &params.country), ("device", &params.device), ("since", &params.since), ("aal", &params.aal)]
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
                <div class="count-bar">
                    <p class="count" data-testid="result-count">{total_text}</p>
                    {matching_link}
                </div>
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
                                    <th scope="col">"Signed in with"</th>
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
        {ended}
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
            <td>
                {session.label.clone().map(|label| view! { <strong>{label}</strong>" · " })}
                {session.device.clone()}
            </td>
            <td data-testid="admin-auth" data-aal=session.aal.clone()>
                {session.auth_label.clone().unwrap_or_else(|| "—".into())}
            </td>
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
