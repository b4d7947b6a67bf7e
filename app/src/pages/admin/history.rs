//! `/admin/history`: ended sessions, searched like the live ones and filtered by reason and date;
//! and the table a user's view shows under their live sessions.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::{list_admin_history, AdminEnded, HistoryParams, HistorySearch};
use crate::components::base;
use crate::format;
use crate::pages::sign_in::ErrorCard;

fn params_from_query(q: &ParamsMap) -> HistoryParams {
    HistoryParams {
        user: q.get("user"),
        q: q.get("q"),
        reason: q.get("reason"),
        country: q.get("country"),
        device: q.get("device"),
        from: q.get("from"),
        to: q.get("to"),
        page: q.get("page"),
    }
}

fn history_href(params: &HistoryParams) -> String {
    let pairs = [
        ("user", &params.user),
        ("q", &params.q),
        ("reason", &params.reason),
        ("country", &params.country),
        ("device", &params.device),
        ("from", &params.from),
        ("to", &params.to),
        ("page", &params.page),
    ];
    super::href_with("/admin/history", &pairs)
}

/// The reasons a search can pick, as the library names them, in words.
const REASONS: [(&str, &str); 9] = [
    ("signed_out", "Signed out"),
    ("revoked", "From another device"),
    ("not_me", "Reported as not them"),
    ("staff", "By staff"),
    ("password_changed", "Password changed"),
    ("deactivated", "Deactivated"),
    ("idle_timeout", "Idle timeout"),
    ("absolute_lifetime", "Absolute lifetime"),
    ("session_limit", "Session limit"),
];

const DEVICES: [&str; 6] = [
    "desktop",
    "smartphone",
    "mobilephone",
    "appliance",
    "crawler",
    "unknown",
];

/// `/admin/history`: what ended, why, and who ended it.
#[component]
pub fn AdminHistoryPage() -> impl IntoView {
    let query = use_query_map();
    let history = Resource::new(move || query.with(params_from_query), list_admin_history);
    view! {
        <Title text="Session history · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/history"/>
            <h1>"Session history"</h1>
            <p class="lead">"Sessions that ended, why, and who ended them."</p>
            <HistorySearchForm params=query.with_untracked(params_from_query)/>
            <Transition fallback=|| ()>
                {move || {
                    history
                        .get()
                        .map(|result| match result {
                            Ok(found) => {
                                let params = query.with_untracked(params_from_query);
                                view! { <HistoryResults found params/> }.into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireStaff>
    }
}

/// The search form: a GET form, so it works without JavaScript and every search is a link.
#[component]
fn HistorySearchForm(params: HistoryParams) -> impl IntoView {
    let selected = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    view! {
        <form method="get" action=base::url("/admin/history") class="history-search" role="search">
            {params.user.clone().map(|user| view! { <input type="hidden" name="user" value=user/> })}
            <label class="wide">
                <span>"Search"</span>
                <input
                    name="q"
                    type="search"
                    value=params.q.clone().unwrap_or_default()
                    placeholder="Username, email, IP, 10.1.0.0/16 or ua:Firefox"
                    data-testid="history-search"
                />
            </label>
            <label>
                <span>"Reason"</span>
                <select name="reason" data-testid="history-reason">
                    <option value="">"Any"</option>
                    {REASONS
                        .into_iter()
                        .map(|(key, label)| {
                            view! { <option value=key selected=selected(&params.reason, key)>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                <span>"Device"</span>
                <select name="device">
                    <option value="">"Any"</option>
                    {DEVICES
                        .into_iter()
                        .map(|key| {
                            view! { <option value=key selected=selected(&params.device, key)>{format::category(key)}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                <span>"Country"</span>
                <input name="country" type="text" maxlength="2" size="3" placeholder="GB" value=params.country.clone().unwrap_or_default()/>
            </label>
            <label>
                <span>"Ended from"</span>
                <input name="from" type="date" value=params.from.clone().unwrap_or_default()/>
            </label>
            <label>
                <span>"to"</span>
                <input name="to" type="date" value=params.to.clone().unwrap_or_default()/>
            </label>
            <button type="submit" class="button">"Search"</button>
        </form>
    }
}

#[component]
fn HistoryResults(found: HistorySearch, params: HistoryParams) -> impl IntoView {
    let count = if found.total_exact {
        format::count(found.total as usize, "ended session", "ended sessions")
    } else {
        format!("More than {} ended sessions", found.total)
    };
    let pages = found.total.div_ceil(u64::from(found.page_size)).max(1);
    let page_link = |page: u64, label: &'static str| {
        let mut next = params.clone();
        next.page = Some(page.to_string());
        view! { <a class="button secondary small" href=history_href(&next)>{label}</a> }
    };
    view! {
        <p class="count" data-testid="history-count">{count}</p>
        <EndedTable ended=found.ended now=found.now/>
        <div class="actions-bar">
            <span class="pager">
                {(found.page > 1).then(|| page_link(u64::from(found.page) - 1, "Previous"))}
                <span class="muted">{format!("Page {} of {}{}", found.page, pages, if found.total_exact { "" } else { "+" })}</span>
                {(u64::from(found.page) < pages || !found.total_exact).then(|| page_link(u64::from(found.page) + 1, "Next"))}
            </span>
        </div>
    }
}

/// Ended sessions as a table: who, device, where, when, why, by whom.
#[component]
pub(super) fn EndedTable(ended: Vec<AdminEnded>, now: i64) -> impl IntoView {
    if ended.is_empty() {
        return view! { <p class="muted" data-testid="no-history">"No ended session matches."</p> }
            .into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="changelist-table" data-testid="history-table">
                <thead>
                    <tr>
                        <th scope="col">"User"</th>
                        <th scope="col">"Device"</th>
                        <th scope="col">"IP address"</th>
                        <th scope="col">"Location"</th>
                        <th scope="col">"Signed in"</th>
                        <th scope="col">"Ended"</th>
                        <th scope="col">"Why"</th>
                    </tr>
                </thead>
                <tbody>
                    {ended
                        .into_iter()
                        .map(|e| {
                            let flag = e.country_code.as_deref().map(format::flag).unwrap_or_default();
                            let device = match &e.label {
                                Some(label) => format!("{label} · {}", e.device),
                                None => e.device.clone(),
                            };
                            view! {
                                <tr data-testid="history-row" data-reason=e.reason.clone()>
                                    <td class="history-user">
                                        <a href=base::url(&format!("/admin/sessions?user={}", e.user_id))>
                                            {e.username.clone().unwrap_or_else(|| format!("user {}", e.user_id))}
                                        </a>
                                    </td>
                                    <td>{device}</td>
                                    <td class="mono">{e.ip.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td>{flag}" "{e.location.clone()}</td>
                                    <td title=format::absolute(e.created_at)>{format::relative(now, e.created_at)}</td>
                                    <td title=format::absolute(e.ended_at)>{format::absolute(e.ended_at)}</td>
                                    <td class="history-why">
                                        {e.reason_text.clone()}
                                        {e.ended_by.clone().map(|by| view! { <span class="muted small-print-inline">" — " {by}</span> })}
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
