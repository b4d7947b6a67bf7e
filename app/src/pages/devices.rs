//! `/account/sessions` ("Your devices"): the signed-in user's sessions, and signing them out.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::sign_in::ErrorCard;
use crate::api::sessions::{
    list_my_sessions, DeviceSession, EndedDevice, MySessions, RenameSession, SignInEntry,
    SignOutOtherSessions, SignOutSession,
};
use crate::components::auth::{Auth, RequireSignIn};
use crate::components::form::{form_error, ActionForm, CsrfField, FormError, Notice};
use crate::format;

/// `/account/sessions`, "Your devices": every active session of the signed-in user, this one pinned
/// on top, each with a confirmed "Sign out", and "Sign out all other devices".
#[component]
pub fn DevicesPage() -> impl IntoView {
    let auth = Auth::get();
    let sign_out_one = ServerAction::<SignOutSession>::new();
    let sign_out_others = ServerAction::<SignOutOtherSessions>::new();
    let rename = ServerAction::<RenameSession>::new();
    let sessions = Resource::new(
        move || {
            (
                sign_out_one.version().get(),
                sign_out_others.version().get(),
                rename.version().get(),
            )
        },
        |_| list_my_sessions(),
    );
    let query = use_query_map();
    let one_error = form_error(
        move || sign_out_one.value().get().and_then(Result::err),
        sign_out_one.version(),
    );
    let others_error = form_error(
        move || sign_out_others.value().get().and_then(Result::err),
        sign_out_others.version(),
    );
    let rename_error = form_error(
        move || rename.value().get().and_then(Result::err),
        rename.version(),
    );
    let error = Signal::derive(move || {
        others_error
            .get()
            .or_else(|| one_error.get())
            .or_else(|| rename_error.get())
    });
    // What the latest action did, with JavaScript (each action's answer, the most recent winning);
    // without, what the URL says (`?signed_out=N`, `?renamed=1`, `?limited=N`).
    let done = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(n)) = sign_out_others.value().get() {
            done.set(Some(ended_text(n)));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = sign_out_one.value().get() {
            done.set(Some(ONE_ENDED.to_owned()));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = rename.value().get() {
            done.set(Some(RENAMED.to_owned()));
        }
    });
    let notice = Signal::derive(move || {
        if let Some(text) = done.get() {
            return Some(text);
        }
        if sign_out_one.version().get() + sign_out_others.version().get() + rename.version().get()
            > 0
        {
            return None;
        }
        query.with(|q| {
            if q.get("renamed").is_some() {
                return Some(RENAMED.to_owned());
            }
            if let Some(n) = q.get("limited").and_then(|n| n.parse::<u64>().ok()) {
                return Some(limited_text(n));
            }
            q.get("signed_out").and_then(|n| match n.as_str() {
                "session" => Some(ONE_ENDED.to_owned()),
                n => n.parse::<u64>().ok().map(ended_text),
            })
        })
    });

    view! {
        <Title text="Your devices"/>
        <RequireSignIn>
            <section class="page-head">
                <h1>"Your devices"</h1>
                <p class="lead">
                    "These browsers and devices are signed in to your account. If you do not recognise one, "
                    "sign it out and change your password."
                </p>
            </section>
            {move || notice.get().map(|text| view! { <Notice text/> })}
            <FormError error/>
            <Transition fallback=|| view! { <p class="muted">"Loading your sessions…"</p> }>
                {move || {
                    let token = auth
                        .viewer
                        .get()
                        .and_then(Result::ok)
                        .map(|viewer| viewer.csrf_token)
                        .unwrap_or_default();
                    sessions
                        .get()
                        .map(|result| match result {
                            Ok(data) => {
                                view! {
                                    <SessionList data token sign_out_one sign_out_others rename/>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireSignIn>
    }
}

const ONE_ENDED: &str = "The session was signed out.";
const RENAMED: &str = "The device's name was saved.";

/// What signing in did when it went over the most sessions a user may have.
fn limited_text(n: u64) -> String {
    let sessions = if n == 1 {
        "your least recently used session was".to_owned()
    } else {
        format!("your {n} least recently used sessions were")
    };
    format!("You are signed in on as many devices as an account may be: {sessions} signed out.")
}

fn ended_text(n: u64) -> String {
    match n {
        0 => "There were no other sessions to sign out.".to_owned(),
        1 => "1 session was signed out.".to_owned(),
        n => format!("{n} sessions were signed out."),
    }
}

#[component]
fn SessionList(
    data: MySessions,
    token: String,
    sign_out_one: ServerAction<SignOutSession>,
    sign_out_others: ServerAction<SignOutOtherSessions>,
    rename: ServerAction<RenameSession>,
) -> impl IntoView {
    let total = data.sessions.len();
    let others = data.sessions.iter().filter(|s| !s.current).count();
    let now = data.now;
    let sign_out_all = (others > 0).then(|| {
        let token = token.clone();
        view! {
            <details class="confirm">
                <summary class="button danger-outline" data-testid="sign-out-others">
                    "Sign out all other devices"
                </summary>
                <div class="confirm-body">
                    <p>
                        {format!(
                            "{} will be signed out. This device stays signed in.",
                            format::count(others, "other session", "other sessions"),
                        )}
                    </p>
                    <ActionForm action=sign_out_others>
                        <CsrfField token/>
                        <button type="submit" class="button danger" data-testid="confirm-sign-out-others">
                            "Yes, sign them out"
                        </button>
                    </ActionForm>
                </div>
            </details>
        }
    });
    view! {
        <div class="toolbar">
            <p class="count" data-testid="session-count">
                {format::count(total, "active session", "active sessions")}
            </p>
            {sign_out_all}
        </div>
        <ul class="sessions" data-testid="sessions">
            {data
                .sessions
                .into_iter()
                .map(|session| {
                    view! { <SessionCard session now token=token.clone() sign_out_one rename/> }
                })
                .collect_view()}
        </ul>
        {(others == 0)
            .then(|| {
                view! {
                    <p class="muted only-one" data-testid="only-this-device">
                        "This is the only device signed in to your account."
                    </p>
                }
            })}
        <RecentlyEnded ended=data.ended now/>
        <SignInActivity sign_ins=data.sign_ins now/>
    }
}

/// "Sign-in activity": the latest sign-ins and failed attempts on the account.
#[component]
fn SignInActivity(sign_ins: Vec<SignInEntry>, now: i64) -> impl IntoView {
    let failures = sign_ins.iter().filter(|s| !s.succeeded).count();
    view! {
        <section class="recently-ended" aria-labelledby="sign-in-activity" data-testid="sign-in-activity">
            <h2 id="sign-in-activity">"Sign-in activity"</h2>
            {(failures > 0).then(|| view! {
                <p class="muted">
                    {format!("{} here. If they were not you, change your password.", format::count(failures, "failed attempt", "failed attempts"))}
                </p>
            })}
            {if sign_ins.is_empty() {
                view! { <p class="muted">"No sign-in recorded yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="ended-list">
                        {sign_ins
                            .into_iter()
                            .map(|entry| {
                                let flag = entry.country_code.as_deref().map(format::flag).unwrap_or_default();
                                view! {
                                    <li
                                        class="ended-item"
                                        class:failed=!entry.succeeded
                                        data-testid="sign-in-entry"
                                        data-succeeded=entry.succeeded.to_string()
                                    >
                                        <div class=format!("device-icon small cat-{}", entry.category) aria-hidden="true">
                                            <DeviceIcon category=entry.category.clone()/>
                                        </div>
                                        <div class="ended-main">
                                            <p class="ended-title"><strong data-testid="sign-in-text">{entry.text.clone()}</strong></p>
                                            <p class="session-meta">
                                                <span>{entry.summary.clone()}</span>
                                                <span class="dot" aria-hidden="true">"·"</span>
                                                <span>
                                                    {(!flag.is_empty()).then(|| view! { <span class="flag" aria-hidden="true">{flag.clone()} " "</span> })}
                                                    {entry.location.clone()}
                                                </span>
                                                {entry.ip.clone().map(|ip| view! {
                                                    <span class="dot" aria-hidden="true">"·"</span>
                                                    <span class="mono">{ip}</span>
                                                })}
                                            </p>
                                        </div>
                                        <time class="ended-when" datetime=format::machine(entry.at) title=format::absolute(entry.at)>
                                            {format::relative(now, entry.at)}
                                        </time>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </section>
    }
}

/// "Recently ended": the sessions that ended lately, and why.
#[component]
fn RecentlyEnded(ended: Vec<EndedDevice>, now: i64) -> impl IntoView {
    let empty = ended.is_empty();
    view! {
        <section class="recently-ended" aria-labelledby="recently-ended" data-testid="recently-ended">
            <h2 id="recently-ended">"Recently ended"</h2>
            {if empty {
                view! { <p class="muted">"No session of yours has ended lately."</p> }.into_any()
            } else {
                view! {
                    <ul class="ended-list">
                        {ended
                            .into_iter()
                            .map(|ended| {
                                let flag = ended
                                    .country_code
                                    .as_deref()
                                    .map(format::flag)
                                    .unwrap_or_default();
                                let title = ended.label.clone().unwrap_or_else(|| ended.summary.clone());
                                let summary = ended.label.is_some().then(|| ended.summary.clone());
                                view! {
                                    <li class="ended-item" data-testid="ended-session" data-reason=ended.reason.clone()>
                                        <div class=format!("device-icon small cat-{}", ended.category) aria-hidden="true">
                                            <DeviceIcon category=ended.category.clone()/>
                                        </div>
                                        <div class="ended-main">
                                            <p class="ended-title">
                                                <strong data-testid="ended-summary">{title}</strong>
                                                {summary.map(|s| view! { <span class="muted">" · " {s}</span> })}
                                            </p>
                                            <p class="ended-reason" data-testid="ended-reason">{ended.reason_text.clone()}</p>
                                            <p class="session-meta">
                                                <span>
                                                    {(!flag.is_empty()).then(|| view! { <span class="flag" aria-hidden="true">{flag.clone()} " "</span> })}
                                                    {ended.location.clone()}
                                                </span>
                                                {ended.ip.clone().map(|ip| view! {
                                                    <span class="dot" aria-hidden="true">"·"</span>
                                                    <span class="mono">{ip}</span>
                                                })}
                                                <span class="dot" aria-hidden="true">"·"</span>
                                                <span>"Signed in " {format::relative(now, ended.created_at)}</span>
                                            </p>
                                        </div>
                                        <time
                                            class="ended-when"
                                            datetime=format::machine(ended.ended_at)
                                            title=format::absolute(ended.ended_at)
                                        >
                                            {format::relative(now, ended.ended_at)}
                                        </time>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </section>
    }
}

#[component]
fn SessionCard(
    session: DeviceSession,
    now: i64,
    token: String,
    sign_out_one: ServerAction<SignOutSession>,
    rename: ServerAction<RenameSession>,
) -> impl IntoView {
    let flag = session
        .country_code
        .as_deref()
        .map(format::flag)
        .unwrap_or_default();
    let category = format::category(&session.category);
    let expires = if session.browser_session {
        "When the browser closes".to_owned()
    } else {
        format::relative(now, session.expires_at)
    };
    let name = session
        .label
        .clone()
        .unwrap_or_else(|| session.summary.clone());
    // Once a name is saved (with JavaScript), the panel closes rather than cover the next card.
    let panel = NodeRef::<leptos::html::Details>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = rename.value().get() {
            if let Some(details) = panel.get() {
                let _ = details.remove_attribute("open");
            }
        }
    });
    let rename_form = {
        let token = token.clone();
        let public_id = session.public_id.clone();
        let value = session.label.clone().unwrap_or_default();
        let name = name.clone();
        view! {
            <details class="confirm rename" node_ref=panel>
                <summary class="button secondary small" data-testid="rename-session">
                    "Rename"
                    <span class="visually-hidden">{format!(" {name}")}</span>
                </summary>
                <div class="confirm-body">
                    <ActionForm action=rename>
                        <CsrfField token/>
                        <input type="hidden" name="public_id" value=public_id/>
                        <label class="field">
                            <span>"Name"</span>
                            <input
                                type="text"
                                name="label"
                                value=value
                                maxlength="60"
                                placeholder="Work laptop"
                                autocomplete="off"
                                data-testid="rename-input"
                            />
                        </label>
                        <p class="hint">"Only you and administrators see it. Leave it empty to remove the name."</p>
                        <button type="submit" class="button small" data-testid="rename-save">
                            "Save name"
                        </button>
                    </ActionForm>
                </div>
            </details>
        }
    };
    let action = (!session.current).then(|| {
        let summary = name.clone();
        view! {
            <details class="confirm">
                <summary class="button secondary small" data-testid="sign-out-session">
                    "Sign out"
                    <span class="visually-hidden">{format!(" {summary}")}</span>
                </summary>
                <div class="confirm-body">
                    <p>{format!("Sign out {summary}? It will have to sign in again.")}</p>
                    <ActionForm action=sign_out_one>
                        <CsrfField token/>
                        <input type="hidden" name="public_id" value=session.public_id.clone()/>
                        <button type="submit" class="button danger small" data-testid="confirm-sign-out">
                            "Sign out"
                        </button>
                    </ActionForm>
                </div>
            </details>
        }
    });
    view! {
        <li
            class="session-card"
            class:current=session.current
            data-testid="session"
            data-current=session.current.to_string()
        >
            <div class=format!("device-icon cat-{}", session.category) aria-hidden="true">
                <DeviceIcon category=session.category.clone()/>
            </div>
            <div class="session-main">
                <h2 class="session-title">
                    <span data-testid="session-summary">{name.clone()}</span>
                    {session
                        .current
                        .then(|| view! { <span class="badge" data-testid="this-device">"This device"</span> })}
                </h2>
                <p class="session-meta">
                    {session.label.is_some().then(|| view! {
                        <span data-testid="session-device">{session.summary.clone()}</span>
                        <span class="dot" aria-hidden="true">"·"</span>
                    })}
                    <span>{category}</span>
                    <span class="dot" aria-hidden="true">"·"</span>
                    <span data-testid="session-location">
                        {(!flag.is_empty()).then(|| view! { <span class="flag" aria-hidden="true">{flag.clone()} " "</span> })}
                        {session.location.clone()}
                    </span>
                    {session
                        .ip
                        .clone()
                        .map(|ip| {
                            view! {
                                <span class="dot" aria-hidden="true">"·"</span>
                                <span class="mono" data-testid="session-ip">{ip}</span>
                            }
                        })}
                </p>
                <dl class="session-times">
                    <div>
                        <dt>"Signed in"</dt>
                        <dd>
                            <time datetime=format::machine(session.created_at) title=format::absolute(session.created_at)>
                                {format::relative(now, session.created_at)}
                            </time>
                            <span class="muted abs">{format::absolute(session.created_at)}</span>
                        </dd>
                    </div>
                    {session.auth_label.clone().map(|label| {
                        let strong = session.aal.as_deref() == Some("aal2");
                        view! {
                            <div>
                                <dt>"Signed in with"</dt>
                                <dd data-testid="session-auth" data-aal=session.aal.clone()>
                                    {label}
                                    {strong.then(|| view! { <span class="badge ok small-badge" title="Two factors, or a passkey">"2-step"</span> })}
                                </dd>
                            </div>
                        }
                    })}
                    <div>
                        <dt>"Last active"</dt>
                        <dd>
                            <time datetime=format::machine(session.last_activity_at) title=format::absolute(session.last_activity_at)>
                                {if session.current {
                                    "Now".to_owned()
                                } else {
                                    format::relative(now, session.last_activity_at)
                                }}
                            </time>
                        </dd>
                    </div>
                    <div>
                        <dt>"Expires"</dt>
                        <dd data-testid="session-expires">
                            <time datetime=format::machine(session.expires_at) title=format::absolute(session.expires_at)>
                                {expires}
                            </time>
                        </dd>
                    </div>
                </dl>
                {session
                    .signed_in_from
                    .clone()
                    .map(|from| view! { <p class="muted small-print">"Signed in from " {from}</p> })}
            </div>
            <div class="session-actions">{rename_form} {action}</div>
        </li>
    }
}

/// A line drawing of the device kind (decorative: the category is also written out).
#[component]
fn DeviceIcon(category: String) -> impl IntoView {
    let path = match category.as_str() {
        "desktop" => "M3 5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2zM8 21h8M12 17v4",
        "smartphone" | "mobilephone" => {
            "M7 3a2 2 0 0 1 2-2h6a2 2 0 0 1 2 2v18a2 2 0 0 1-2 2H9a2 2 0 0 1-2-2zM11 19h2"
        }
        "appliance" => "M3 6a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2zM7 21h10",
        "crawler" => "M6 9a2 2 0 0 1 2-2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2zM12 3v4M9 13h.01M15 13h.01",
        _ => "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM9.5 9a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6V14M12 17h.01",
    };
    view! {
        <svg
            viewBox="0 0 24 24"
            width="28"
            height="28"
            fill="none"
            stroke="currentColor"
            stroke-width="1.75"
            stroke-linecap="round"
            stroke-linejoin="round"
        >
            <path d=path></path>
        </svg>
    }
}
