//! `/admin/mail`: the outbox — failed mail first, with "Send again"; pending and sent on tabs.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::frame::{AdminNav, RequireStaff};
use crate::api::admin::{list_admin_mail, AdminMail, AdminRetryMail};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError, Notice};
use crate::format;
use crate::pages::sign_in::ErrorCard;

/// `/admin/mail?state=failed|pending|sent|all`: messages of the outbox, newest first.
#[component]
pub fn AdminMailPage() -> impl IntoView {
    let query = use_query_map();
    let auth = Auth::get();
    let retry = ServerAction::<AdminRetryMail>::new();
    let shown = move || query.with(|q| q.get("state").unwrap_or_else(|| "failed".to_owned()));
    let mail = Resource::new(
        move || (shown(), retry.version().get()),
        |(state, _)| list_admin_mail(Some(state), None),
    );
    let error = form_error(
        move || retry.value().get().and_then(Result::err),
        retry.version(),
    );
    let retried = Signal::derive(move || {
        matches!(retry.value().get(), Some(Ok(())))
            || (retry.version().get() == 0 && query.with(|q| q.get("done").is_some()))
    });
    view! {
        <Title text="Mail · Admin"/>
        <RequireStaff>
            <AdminNav current="/admin/mail"/>
            <h1>"Mail"</h1>
            {move || retried.get().then(|| view! { <Notice text="The message is queued again.".to_owned()/> })}
            <FormError error/>
            <Transition fallback=|| ()>
                {move || {
                    let token = auth.viewer.get().and_then(Result::ok).map(|v| v.csrf_token).unwrap_or_default();
                    let state = shown();
                    mail.get()
                        .map(|result| match result {
                            Ok(page) => {
                                let tab = |key: &'static str, label: String| {
                                    let here = state == key;
                                    view! {
                                        <a
                                            href=base::url(&format!("/admin/mail?state={key}"))
                                            class:active=here
                                            aria-current=here.then_some("page")
                                        >
                                            {label}
                                        </a>
                                    }
                                };
                                let now = page.now;
                                view! {
                                    <nav class="admin-nav tabs" aria-label="Mail by state" data-testid="mail-counts">
                                        {tab("failed", format!("Failed ({})", page.failed))}
                                        {tab("pending", format!("Pending ({})", page.pending))}
                                        {tab("sent", format!("Sent ({})", page.sent))}
                                        {tab("all", "All".to_owned())}
                                    </nav>
                                    {if page.messages.is_empty() {
                                        view! { <p class="muted" data-testid="no-mail">"No message here."</p> }.into_any()
                                    } else {
                                        view! {
                                            <div class="table-wrap">
                                                <table class="changelist-table" data-testid="mail-list">
                                                    <thead>
                                                        <tr>
                                                            <th scope="col">"Queued"</th>
                                                            <th scope="col">"To"</th>
                                                            <th scope="col">"Subject"</th>
                                                            <th scope="col">"State"</th>
                                                            <th scope="col">"Attempts"</th>
                                                            <th scope="col">"Last error"</th>
                                                        </tr>
                                                    </thead>
                                                    <tbody>
                                                        {page
                                                            .messages
                                                            .into_iter()
                                                            .map(|m| view! { <MailRow m now token=token.clone() retry/> })
                                                            .collect_view()}
                                                    </tbody>
                                                </table>
                                            </div>
                                        }
                                            .into_any()
                                    }}
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

#[component]
fn MailRow(
    m: AdminMail,
    now: i64,
    token: String,
    retry: ServerAction<AdminRetryMail>,
) -> impl IntoView {
    let state = match (m.state.as_str(), m.next_attempt_at) {
        ("pending", Some(next)) if m.attempts > 0 => {
            format!("Retrying {}", format::relative(now, next))
        }
        ("pending", _) => "Pending".to_owned(),
        ("sent", _) => "Sent".to_owned(),
        _ => "Failed".to_owned(),
    };
    let failed = m.state == "failed";
    view! {
        <tr data-testid="mail-row" data-state=m.state.clone()>
            <td>
                <time datetime=format::machine(m.created_at) title=format::absolute(m.created_at)>
                    {format::relative(now, m.created_at)}
                </time>
            </td>
            <td class="mono">{m.recipient.clone()}</td>
            <td>{m.subject.clone()}</td>
            <td>
                {state}
                {failed.then(|| view! {
                    <ActionForm action=retry>
                        <CsrfField token/>
                        <input type="hidden" name="id" value=m.id.to_string()/>
                        <button type="submit" class="button secondary small" data-testid="retry-mail">"Send again"</button>
                    </ActionForm>
                })}
            </td>
            <td>{m.attempts}</td>
            <td class="small-print">{m.last_error.clone().unwrap_or_default()}</td>
        </tr>
    }
}
