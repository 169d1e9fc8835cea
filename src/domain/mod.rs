//! Business rules as pure functions: no database, no clock, no network.
//! Whatever needs "now" takes it as an argument.

pub mod case;
pub mod clock;
pub mod code;
pub mod deadline;
pub mod evidence;
pub mod geo;
pub mod instant;
pub mod nul;
pub mod phone;
pub mod report;
pub mod role;
pub mod routing;
