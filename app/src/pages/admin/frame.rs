//! What every admin page stands in: the staff check and the admin's own navigation.

use leptos::prelude::*;

use crate::components::auth::{Auth, RequireSignIn};
use crate::components::base;
use crate::error::AppError;
use crate::pages::sign_in::ErrorCard;

/// Staff pages: a signed-in user who is not staff sees "403".
#[component]
pub(super) fn RequireStaff(children: ChildrenFn) -> impl IntoView {
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
pub(super) fn AdminNav(current: &'static str) -> impl IntoView {
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
            {link("/admin/history", "History")}
            {link("/admin/users", "Users")}
            {link("/admin/mail", "Mail")}
            {link("/admin/audit", "Audit log")}
        </nav>
    }
}
