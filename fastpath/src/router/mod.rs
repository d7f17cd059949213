//! The router of `fastpath run --mode l3`: the exception path to the
//! kernel and the kernel mirror, wired around a running forwarder.
//!
//! - [`options`]: the exception interfaces' names and backend, the
//!   exception thread's CPU, the rate limit.
//! - [`event_updates`]: kernel events to router model updates.
//! - [`control`]: the control thread (mirror, model, publication).
//! - [`router`]: the [`Router`] that starts and stops it all.
//! - [`stats`]: what it counts, as text and JSON.
//! - [`tables_view`]: a copy of the tables for `fastpath show routes`.

pub mod control;
pub mod event_updates;
pub mod options;
#[allow(clippy::module_inception)]
pub mod router;
pub mod stats;
pub mod tables_view;

pub use control::ControlStats;
pub use event_updates::{PortMap, Skipped};
pub use options::{parse_backend, parse_rate, RouterOptions, RouterOptionsError};
pub use router::{Router, RouterError};
pub use stats::{ExceptionIfaceStats, RouterStats};
pub use tables_view::TablesView;
