//! One module per page.

pub mod admin;
pub mod change_password;
pub mod devices;
pub mod home;
pub mod not_found;
pub mod sign_in;
pub mod sign_up;
