//! Form pieces: the server-function form, the anti-forgery field, the error banner, notices.

use leptos::html::Form;
use leptos::prelude::*;
use leptos::server_fn::codec::PostUrl;
use leptos::server_fn::{Http, ServerFn};
use leptos_router::hooks::use_query_map;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A form that calls a server function: leptos' `ActionForm`, but posting to the function's URL
/// under the base path (`action` is [`crate::paths::url`] of it), so that it reaches us
/// through the proxy with JavaScript off too. With JavaScript, submitting dispatches `action` in
/// place, as `ActionForm` does (the server function itself is called under the base path, see
/// [`crate::paths::init_client`]).
#[component]
pub fn ActionForm<ServFn, OutputProtocol>(
    /// The action the form dispatches.
    action: ServerAction<ServFn>,
    /// Where to keep the `<form>` element.
    #[prop(optional)]
    node_ref: NodeRef<Form>,
    /// The form's fields and buttons.
    children: Children,
) -> impl IntoView
where
    ServFn: DeserializeOwned
        + ServerFn<Protocol = Http<PostUrl, OutputProtocol>, Error = AppError>
        + Clone
        + Send
        + Sync
        + 'static,
    ServFn::Output: Send + Sync + 'static,
    OutputProtocol: 'static,
{
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        if event.default_prevented() {
            return;
        }
        event.prevent_default();
        submit(action, &event);
    };
    send_on_when_asked(action);
    view! {
        <form method="post" action=crate::components::base::url(ServFn::url()) node_ref=node_ref on:submit=on_submit>
            {children()}
        </form>
    }
}

/// Dispatches `action` with the submitted form's fields; a form that does not fit the function's
/// arguments becomes the action's error, as with leptos' `ActionForm`.
#[cfg(feature = "hydrate")]
fn submit<ServFn>(action: ServerAction<ServFn>, event: &leptos::ev::SubmitEvent)
where
    ServFn: DeserializeOwned + ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    ServFn::Output: Send + Sync + 'static,
{
    use leptos::form::FromFormData;
    match ServFn::from_event(event) {
        Ok(input) => {
            action.dispatch(input);
        }
        Err(error) => {
            leptos::logging::error!("the form does not fit the server function: {error:?}");
            action
                .value()
                .set(Some(Err(AppError::Transport(error.to_string()))));
            action.version().update(|n| *n += 1);
        }
    }
}

/// When an action answers that it needs a fresh proof ([`AppError::ConfirmAccessRequired`]) or a
/// second factor first ([`AppError::SecondFactorRequired`]), goes where a plain form post is sent:
/// to confirm access, coming back to this page, or to set up a factor.
#[cfg(feature = "hydrate")]
fn send_on_when_asked<ServFn>(action: ServerAction<ServFn>)
where
    ServFn: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    ServFn::Output: Send + Sync + 'static,
{
    Effect::new(move |_| {
        let target = action.value().with(|value| match value {
            Some(Err(AppError::ConfirmAccessRequired)) => {
                let location = window().location();
                let here = format!(
                    "{}{}",
                    location.pathname().unwrap_or_default(),
                    location.search().unwrap_or_default()
                );
                Some(crate::components::base::url(&format!(
                    "/confirm-access?next={}",
                    urlencoding::encode(&here)
                )))
            }
            Some(Err(AppError::SecondFactorRequired)) => Some(crate::components::base::url(
                "/account/security?enrol=staff",
            )),
            _ => None,
        });
        if let Some(target) = target {
            let target: String = target;
            if let Err(error) = window().location().set_href(&target) {
                leptos::logging::error!("cannot go to {target}: {error:?}");
            }
        }
    });
}

/// On the server, nothing is dispatched in place, so nothing needs sending on.
#[cfg(not(feature = "hydrate"))]
fn send_on_when_asked<ServFn>(_action: ServerAction<ServFn>)
where
    ServFn: ServerFn + Send + Sync + 'static,
    ServFn::Output: Send + Sync + 'static,
{
}

/// On the server, forms are never submitted in place.
#[cfg(not(feature = "hydrate"))]
fn submit<ServFn>(_action: ServerAction<ServFn>, _event: &leptos::ev::SubmitEvent)
where
    ServFn: ServerFn + Send + Sync + 'static,
    ServFn::Output: Send + Sync + 'static,
{
}

/// The hidden field carrying the anti-forgery token; every form that changes state has one.
#[component]
pub fn CsrfField(
    /// The session's anti-forgery token, as the viewer resource hands it out.
    token: String,
) -> impl IntoView {
    view! { <input type="hidden" name="csrf_token" value=token/> }
}

/// The error to show above a form: the action's own result when it ran in this page (JavaScript),
/// else the `?error=` code the server sent the browser back with (no JavaScript).
///
/// `action_error` reads the action's latest error, `version` is the action's version.
pub fn form_error(
    action_error: impl Fn() -> Option<AppError> + Send + Sync + 'static,
    version: RwSignal<usize>,
) -> Signal<Option<AppError>> {
    let query = use_query_map();
    Signal::derive(move || {
        if version.get() > 0 {
            action_error()
        } else {
            query.with(|q| q.get("error").and_then(|code| AppError::from_code(&code)))
        }
    })
}

/// A banner for a form's error, announced to screen readers.
#[component]
pub fn FormError(
    /// The error to show, usually from [`form_error`]; `None` shows nothing.
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    move || {
        error.get().map(|error| {
            view! {
                <p class="alert error" role="alert" data-testid="form-error">
                    {error.to_string()}
                </p>
            }
        })
    }
}

/// A quiet notice (signed out, password changed…).
#[component]
pub fn Notice(
    /// What happened, as a sentence ("2 sessions were signed out.").
    text: String,
) -> impl IntoView {
    view! {
        <p class="alert info" role="status" data-testid="notice">
            {text}
        </p>
    }
}

/// `"true"` when the error is about `field`, for `aria-invalid`.
pub fn invalid(error: Signal<Option<AppError>>, field: &'static str) -> impl Fn() -> &'static str {
    move || {
        if error.with(|e| e.as_ref().and_then(AppError::field) == Some(field)) {
            "true"
        } else {
            "false"
        }
    }
}

/// A new password and its repetition, with the rule under the first: sign-up, changing the
/// password, and choosing one with a reset link ask for it the same way.
#[component]
pub fn NewPasswordFields(
    /// The form's error, to mark the field it is about.
    error: Signal<Option<AppError>>,
    /// The fewest characters a password may have.
    min_chars: usize,
    /// The first field's label.
    #[prop(default = "New password")]
    label: &'static str,
    /// The repetition's label.
    #[prop(default = "Repeat the new password")]
    repeat_label: &'static str,
    /// Said after the rule ("At least 8 characters."), such as advice.
    #[prop(default = "")]
    hint: &'static str,
) -> impl IntoView {
    let rule = format!("At least {min_chars} characters.");
    let help = if hint.is_empty() {
        rule
    } else {
        format!("{rule} {hint}")
    };
    view! {
        <label for="password">{label}</label>
        <input
            id="password"
            type="password"
            name="password"
            autocomplete="new-password"
            required
            aria-describedby="password-help"
            aria-invalid=invalid(error, "password")
        />
        <p id="password-help" class="help muted">{help}</p>
        <label for="password_confirm">{repeat_label}</label>
        <input
            id="password_confirm"
            type="password"
            name="password_confirm"
            autocomplete="new-password"
            required
            aria-invalid=invalid(error, "password_confirm")
        />
    }
}
