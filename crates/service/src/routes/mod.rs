//! Route handlers, one module per area.

pub mod availability;
pub mod events;
pub mod history;
pub mod holds;
pub mod ops;
pub mod webhooks;
