//! One integration-test binary: real HTTP against the real application.

mod admin;
mod auth;
mod cases;
mod cli;
mod helpers;
mod ops;
mod photos;
mod reports;
mod routing;
