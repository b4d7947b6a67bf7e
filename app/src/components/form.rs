//! Form pieces: the anti-forgery field, the error banner, notices.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::error::AppError;

/// The hidden field carrying the anti-forgery token; every form that changes state has one.
#[component]
pub fn CsrfField(token: String) -> impl IntoView {
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
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
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
pub fn Notice(text: String) -> impl IntoView {
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
