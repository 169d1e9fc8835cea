//! Background work that runs inside every API instance.

pub mod auto_dispatch;
pub mod deadline_sweeper;
pub mod photo_cleanup;
pub mod reference_refresh;
