//! Background work that runs inside every API instance.

pub mod photo_cleanup;
