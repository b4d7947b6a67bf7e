//! One module per page.

pub mod admin;
pub mod change_password;
pub mod devices;
pub mod factors;
pub mod forgot_password;
pub mod home;
pub mod links;
pub mod not_found;
pub mod passkeys;
pub mod reset_password;
pub mod security;
pub mod sign_in;
pub mod sign_up;
