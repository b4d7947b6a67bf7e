//! The HTML shell, the application component and its routes.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

use crate::api::account::SignOut;
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::CsrfField;
use crate::pages::admin::{
    AdminAuditPage, AdminConfirmPage, AdminHistoryPage, AdminJobPage, AdminMailPage,
    AdminSessionPage, AdminSessionsPage, AdminSignOutMatchingPage, AdminUsersPage,
};
use crate::pages::{
    change_password::ChangePasswordPage,
    devices::DevicesPage,
    factors::{ConfirmAccessPage, RecoveryCodesPage, SecondStepPage, TotpSetupPage},
    forgot_password::ForgotPasswordPage,
    home::HomePage,
    links::{ConfirmEmailPage, SignInAlertPage, VerifyEmailPage},
    not_found::NotFound,
    reset_password::ResetPasswordPage,
    security::SecurityPage,
    sign_in::SignInPage,
    sign_up::SignUpPage,
};

/// The document around the app, rendered on the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let base = base::base_path();
    hand_nonce_to_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // Read by the browser before it hydrates (see `components::base`).
                <meta name=base::META_NAME content=base.clone()/>
                <link rel="icon" href=base::url("/favicon.svg") type="image/svg+xml"/>
                // Passkey ceremonies (`public/passkeys.js`): small, and idle until a passkey
                // button is pressed.
                <script src=base::url("/passkeys.js") defer nonce=leptos::nonce::use_nonce()></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options root=base/>
                <MetaTags/>
            </head>
            <body class=embedded().then_some("embedded")>
                <App/>
            </body>
        </html>
    }
}

/// Gives the security-headers middleware this page's script nonce (the one Leptos puts on the
/// hydration and streaming scripts), for the `Content-Security-Policy` it writes.
fn hand_nonce_to_policy() {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(value) = axum::http::HeaderValue::from_str(&nonce) {
            response.insert_header(
                axum::http::HeaderName::from_static(crate::server::embed::NONCE_HEADER),
                value,
            );
        }
    }
}

/// Whether the page being rendered is shown in a frame: it then gets the minimal-chrome layout
/// (see [`crate::server::embed`]). Decided by the server only: the shell is never hydrated.
fn embedded() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>()
            .is_some_and(|parts| crate::server::embed::is_embedded(&parts))
    }
    #[cfg(not(feature = "ssr"))]
    {
        false
    }
}

/// The application: header, routes, footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: the mark tells tests (and curious people) the page is live.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href=base::url("/pkg/console-sessions.css")/>
        <Title formatter=|page: String| format!("{page} · console-sessions")/>
        {
            // Routes match under the base path (links carry it already: `base::url`).
            let base = base::base_path();
            if base.is_empty() {
                view! {
                    <Router>
                        <Layout/>
                    </Router>
                }
                    .into_any()
            } else {
                view! {
                    <Router base>
                        <Layout/>
                    </Router>
                }
                    .into_any()
            }
        }
    }
}

/// Everything inside the router: the account context, the top bar, the pages, the footer.
#[component]
fn Layout() -> impl IntoView {
    let auth = Auth::provide();
    view! {
            <header class="topbar">
                <A href=base::url("/") attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◉"</span>
                    " console-sessions"
                </A>
                <UserMenu auth/>
            </header>
            <main class="container">
                <Routes fallback=NotFound>
                    // Async: the whole page, data included, is in the HTML the server sends, so it
                    // reads the same with JavaScript off.
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async/>
                    <Route path=path!("/sign-up") view=SignUpPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/sign-in/two-factor")
                        view=SecondStepPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/confirm-access")
                        view=ConfirmAccessPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/account/two-factor/setup")
                        view=TotpSetupPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/account/two-factor/recovery-codes")
                        view=RecoveryCodesPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/account/sessions") view=DevicesPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/account/password")
                        view=ChangePasswordPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/account/security") view=SecurityPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/forgot-password")
                        view=ForgotPasswordPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/reset-password")
                        view=ResetPasswordPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/verify-email") view=VerifyEmailPage ssr=SsrMode::Async/>
                    <Route path=path!("/confirm-email") view=ConfirmEmailPage ssr=SsrMode::Async/>
                    <Route path=path!("/sign-in-alert") view=SignInAlertPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/sessions") view=AdminSessionsPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/admin/sessions/confirm")
                        view=AdminConfirmPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/admin/sessions/sign-out-matching")
                        view=AdminSignOutMatchingPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/admin/jobs/:id") view=AdminJobPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/admin/sessions/:id")
                        view=AdminSessionPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/admin/users") view=AdminUsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/history") view=AdminHistoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/mail") view=AdminMailPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="footer muted">"console-sessions — server-side sessions you can see."</footer>
    }
}

/// The right side of the top bar: the signed-in user with their links and "Sign out", or "Sign in".
#[component]
fn UserMenu(auth: Auth) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) => match viewer.user {
                            Some(user) => {
                                view! {
                                    <nav class="user-menu" aria-label="Account">
                                        <A href=base::url("/account/sessions")>"Devices"</A>
                                        <A href=base::url("/account/password")>"Password"</A>
                                        <A href=base::url("/account/security")>"Security"</A>
                                        {user.is_staff.then(|| view! { <A href=base::url("/admin/sessions")>"Admin"</A> })}
                                        <span class="who" data-testid="signed-in-as">
                                            <span class="avatar" aria-hidden="true">
                                                {user.username.chars().next().map(|c| c.to_uppercase().to_string())}
                                            </span>
                                            <span class="username">{user.username.clone()}</span>
                                        </span>
                                        // A plain form even with JavaScript: signing out loads a fresh
                                        // page, so nothing of the session stays in this tab's memory.
                                        <form method="post" action=base::url(SignOut::url())>
                                            <CsrfField token=viewer.csrf_token/>
                                            <button type="submit" class="button secondary small" data-testid="sign-out">
                                                "Sign out"
                                            </button>
                                        </form>
                                    </nav>
                                }
                                    .into_any()
                            }
                            None => {
                                view! {
                                    <nav class="user-menu" aria-label="Account">
                                        <A href=base::url("/sign-in") attr:class="button secondary small">"Sign in"</A>
                                    </nav>
                                }
                                    .into_any()
                            }
                        },
                        Err(_) => ().into_any(),
                    })
            }}
        </Transition>
    }
}
