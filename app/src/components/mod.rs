//! Pieces shared by several pages.

pub mod auth;
pub mod base;
pub mod form;
