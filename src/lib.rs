//! civicsnap: the backend of a citizen snap-and-report (随手拍) service.
//! See DESIGN.md for the map of this crate.

pub mod auth;
pub mod config;
pub mod deadlines;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod objects;
pub mod routing;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod workflow;
