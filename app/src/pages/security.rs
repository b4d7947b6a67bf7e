//! `/account/security`: the signed-in user's email address (confirm it, change it), new sign-in
//! alerts (on or off), and their security activity.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::factors::TwoFactorCard;
use super::passkeys::PasskeysCard;
use super::sign_in::ErrorCard;
use crate::api::factors::{my_factors, RemoveTotp, RenewRecoveryCodes, StartTotp};
use crate::api::passkeys::{my_passkeys, RemovePasskey, RenamePasskey};
use crate::api::security::{
    security_overview, ActivityItem, ChangeEmail, SecurityPageData, SendVerification,
    SetSignInAlerts,
};
use crate::components::auth::{Auth, RequireSignIn};
use crate::components::base;
use crate::components::form::{form_error, invalid, ActionForm, CsrfField, FormError, Notice};
use crate::format;

/// `/account/security`: email, alerts, and the security activity (`?page=N` for older entries).
#[component]
pub fn SecurityPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let send = ServerAction::<SendVerification>::new();
    let change = ServerAction::<ChangeEmail>::new();
    let alerts = ServerAction::<SetSignInAlerts>::new();
    let start = ServerAction::<StartTotp>::new();
    let renew = ServerAction::<RenewRecoveryCodes>::new();
    let remove = ServerAction::<RemoveTotp>::new();
    let rename_passkey = ServerAction::<RenamePasskey>::new();
    let remove_passkey = ServerAction::<RemovePasskey>::new();
    let factors = Resource::new(
        move || (remove.version().get(), remove_passkey.version().get()),
        |_| my_factors(),
    );
    let passkeys = Resource::new(
        move || {
            (
                remove.version().get(),
                rename_passkey.version().get(),
                remove_passkey.version().get(),
            )
        },
        |_| my_passkeys(),
    );
    let page = move || {
        query.with(|q| {
            q.get("page")
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(1)
        })
    };
    let overview = Resource::new(
        move || {
            (
                page(),
                send.version().get(),
                change.version().get(),
                alerts.version().get(),
            )
        },
        |(page, ..)| security_overview(page),
    );
    let send_error = form_error(
        move || send.value().get().and_then(Result::err),
        send.version(),
    );
    let change_error = form_error(
        move || change.value().get().and_then(Result::err),
        change.version(),
    );
    let alerts_error = form_error(
        move || alerts.value().get().and_then(Result::err),
        alerts.version(),
    );
    let start_error = form_error(
        move || start.value().get().and_then(Result::err),
        start.version(),
    );
    let renew_error = form_error(
        move || renew.value().get().and_then(Result::err),
        renew.version(),
    );
    let remove_error = form_error(
        move || remove.value().get().and_then(Result::err),
        remove.version(),
    );
    let error = Signal::derive(move || {
        change_error
            .get()
            .or_else(|| send_error.get())
            .or_else(|| alerts_error.get())
            .or_else(|| start_error.get())
            .or_else(|| renew_error.get())
            .or_else(|| remove_error.get())
    });
    let email_lifetime = move || {
        auth.viewer
            .get()
            .and_then(Result::ok)
            .map_or(0, |viewer| viewer.link_lifetimes.email)
    };
    // What the last form did: from its action with JavaScript, from the query without.
    let notice = Signal::derive(move || {
        if let Some(Ok(address)) = change.value().get() {
            return Some(change_sent(&address));
        }
        if let Some(Ok(())) = send.value().get() {
            return Some(verify_sent(email_lifetime()));
        }
        if let Some(Ok(on)) = alerts.value().get() {
            return Some(alerts_set(on).to_owned());
        }
        if let Some(Ok(removed)) = remove.value().get() {
            return Some(totp_removed(removed.signed_out));
        }
        if send.version().get()
            + change.version().get()
            + alerts.version().get()
            + remove.version().get()
            > 0
        {
            return None;
        }
        query.with(|q| {
            match (
                q.get("sent").as_deref(),
                q.get("alerts").as_deref(),
                q.get("totp").as_deref(),
            ) {
                (Some("verify"), _, _) => Some(verify_sent(email_lifetime())),
                (Some("email"), _, _) => Some(change_sent("your new address")),
                (_, Some(on), _) => Some(alerts_set(on == "on").to_owned()),
                (_, _, Some("on")) => Some("Two-step sign-in is on.".to_owned()),
                (_, _, Some("off")) => Some(totp_removed(
                    q.get("signed_out")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                )),
                _ => None,
            }
        })
    });
    view! {
        <Title text="Security"/>
        <RequireSignIn>
            <section class="page-head">
                <h1>"Security"</h1>
                <p class="lead">
                    "Your email address, the alerts we send when your account is signed in from "
                    "somewhere new, and what has happened to your account."
                </p>
            </section>
            {move || notice.get().map(|text| view! { <Notice text/> })}
            <FormError error/>
            <Transition fallback=|| ()>
                {move || {
                    let token = auth
                        .viewer
                        .get()
                        .and_then(Result::ok)
                        .map(|viewer| viewer.csrf_token)
                        .unwrap_or_default();
                    let now = overview.get().and_then(Result::ok).map_or(0, |data| data.now);
                    let two_step = factors.get().and_then(Result::ok).map(|factors| {
                        let token = token.clone();
                        view! { <TwoFactorCard factors token start renew remove now/> }
                    });
                    let passkeys = passkeys.get().and_then(Result::ok).map(|passkeys| {
                        view! {
                            <PasskeysCard
                                passkeys
                                token
                                rename=rename_passkey
                                remove=remove_passkey
                                now
                            />
                        }
                    });
                    view! { {two_step} {passkeys} }
                }}
            </Transition>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let token = auth
                        .viewer
                        .get()
                        .and_then(Result::ok)
                        .map(|viewer| viewer.csrf_token)
                        .unwrap_or_default();
                    let typed = auth
                        .viewer
                        .get()
                        .and_then(Result::ok)
                        .map(|viewer| viewer.typed("email"))
                        .unwrap_or_default();
                    overview
                        .get()
                        .map(|result| match result {
                            Ok(data) => {
                                view! {
                                    <SecuritySections data token typed send change alerts change_error/>
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

/// The notice once a confirmation link was sent; `valid_for` in seconds.
fn verify_sent(valid_for: u64) -> String {
    format!(
        "A link to confirm your email address is on its way. It works once, for {}.",
        format::lifetime(valid_for)
    )
}

fn change_sent(address: &str) -> String {
    format!(
        "A link is on its way to {address}. Your email address changes when you open it; \
         your current address has been told."
    )
}

/// The notice once the authenticator app was removed.
fn totp_removed(signed_out: u64) -> String {
    match signed_out {
        0 => "Two-step sign-in is off.".to_owned(),
        1 => "Two-step sign-in is off, and your other session was signed out.".to_owned(),
        n => format!("Two-step sign-in is off, and your {n} other sessions were signed out."),
    }
}

fn alerts_set(on: bool) -> &'static str {
    if on {
        "New sign-in alerts are on."
    } else {
        "New sign-in alerts are off."
    }
}

#[component]
fn SecuritySections(
    data: SecurityPageData,
    token: String,
    typed: String,
    send: ServerAction<SendVerification>,
    change: ServerAction<ChangeEmail>,
    alerts: ServerAction<SetSignInAlerts>,
    change_error: Signal<Option<crate::error::AppError>>,
) -> impl IntoView {
    let now = data.now;
    let status = match (&data.email, data.email_verified) {
        (None, _) => {
            view! { <span class="badge muted-badge" data-testid="email-status">"No address"</span> }
                .into_any()
        }
        (Some(_), true) => {
            view! { <span class="badge ok" data-testid="email-status">"Confirmed"</span> }
                .into_any()
        }
        (Some(_), false) => {
            view! { <span class="badge warn" data-testid="email-status">"Not confirmed"</span> }
                .into_any()
        }
    };
    let verify = (data.email.is_some() && !data.email_verified).then(|| {
        let token = token.clone();
        view! {
            <ActionForm action=send>
                <CsrfField token/>
                <button type="submit" class="button secondary small" data-testid="send-verification">
                    "Send a confirmation link"
                </button>
            </ActionForm>
        }
    });
    let alerts_note = if data.alerts_available {
        "When your account is signed in from a browser, system or country it has not used before, \
         we email you, with a button to sign it out if it wasn't you."
    } else {
        "This service does not send sign-in alerts at the moment."
    };
    let pager = (data.page > 1 || data.more).then(|| {
        let newer = (data.page > 1).then(|| {
            let url = base::url(&format!("/account/security?page={}", data.page - 1));
            view! { <a class="button secondary small" href=url>"Newer"</a> }
        });
        let older = data.more.then(|| {
            let url = base::url(&format!("/account/security?page={}", data.page + 1));
            view! { <a class="button secondary small" href=url data-testid="older-activity">"Older"</a> }
        });
        view! { <nav class="pager" aria-label="Activity pages">{newer} {older}</nav> }
    });
    let change_token = token.clone();
    let alerts_token = token;
    view! {
        <section class="card settings" aria-labelledby="email-heading">
            <h2 id="email-heading">"Email address"</h2>
            <p class="setting-line">
                <span class="mono" data-testid="email-address">
                    {data.email.clone().unwrap_or_else(|| "None".to_owned())}
                </span>
                " "
                {status}
            </p>
            {verify}
            <ActionForm action=change>
                <div class="form">
                    <CsrfField token=change_token/>
                    <label for="email">
                        {if data.email.is_some() { "Change it to" } else { "Add an address" }}
                    </label>
                    <input
                        id="email"
                        type="email"
                        name="email"
                        autocomplete="email"
                        required
                        maxlength="254"
                        value=typed
                        aria-invalid=invalid(change_error, "email")
                    />
                    <label for="email_password">"Your current password"</label>
                    <div class="field-row">
                        <input
                            id="email_password"
                            type="password"
                            name="current_password"
                            autocomplete="current-password"
                            required
                            aria-invalid=invalid(change_error, "current_password")
                        />
                        <button type="submit" class="button" data-testid="change-email">
                            "Change address"
                        </button>
                    </div>
                </div>
            </ActionForm>
            <p class="help muted">"The change takes effect when you open the link we send to the new address."</p>
        </section>
        <section class="card settings" aria-labelledby="alerts-heading">
            <h2 id="alerts-heading">"New sign-in alerts"</h2>
            <p class="muted">{alerts_note}</p>
            <ActionForm action=alerts>
                <div class="form">
                <CsrfField token=alerts_token/>
                <label class="check">
                    <input
                        type="checkbox"
                        name="on"
                        value="on"
                        checked=data.sign_in_alerts
                        data-testid="alerts-checkbox"
                    />
                    <span>"Email me about sign-ins from new devices and places"</span>
                </label>
                <div>
                    <button type="submit" class="button secondary small" data-testid="save-alerts">
                        "Save"
                    </button>
                </div>
                </div>
            </ActionForm>
        </section>
        <section class="card settings" aria-labelledby="activity-heading">
            <h2 id="activity-heading">"Security activity"</h2>
            {if data.activity.is_empty() {
                view! { <p class="muted" data-testid="no-activity">"Nothing yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="activity" data-testid="activity">
                        {data
                            .activity
                            .into_iter()
                            .map(|item| view! { <ActivityRow item now/> })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
            {pager}
        </section>
    }
}

#[component]
fn ActivityRow(item: ActivityItem, now: i64) -> impl IntoView {
    let flag = item
        .country_code
        .as_deref()
        .map(format::flag)
        .unwrap_or_default();
    let details: Vec<String> = [item.device.clone(), item.location.clone(), item.ip.clone()]
        .into_iter()
        .flatten()
        .collect();
    view! {
        <li class="activity-item" class:warning=item.warning data-testid="activity-item" data-kind=item.kind.clone()>
            <p class="activity-title">{item.title.clone()}</p>
            <p class="muted small-print">
                <time datetime=format::machine(item.at) title=format::absolute(item.at)>
                    {format::relative(now, item.at)}
                </time>
                {(!details.is_empty())
                    .then(|| {
                        view! {
                            <span class="dot" aria-hidden="true">" · "</span>
                            {(!flag.is_empty()).then(|| view! { <span class="flag" aria-hidden="true">{flag.clone()} " "</span> })}
                            <span>{details.join(" · ")}</span>
                        }
                    })}
            </p>
        </li>
    }
}
