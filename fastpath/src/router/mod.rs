//! The router of `fastpath run --mode l3`: the exception path to the
//! kernel and the kernel mirror, wired around a running forwarder.
//!
//! - [`options`]: the exception interfaces' names and backend, the
//!   exception thread's CPU, the rate limit.
//! - [`event_updates`]: kernel events to router model updates.
//! - [`control`]: the control thread (mirror, model, publication).
//! - [`pod_addresses`]: the pod's addresses (network-status annotation,
//!   `--pod-address`) on the exception interfaces, added with
//!   [`iface_address`].
//! - [`iface_recovery`]: exception interfaces deleted under us, noticed
//!   and made again.
//! - [`router`]: the [`Router`] that starts and stops it all.
//! - [`stats`]: what it counts, as text and JSON.
//! - [`tables_view`]: a copy of the tables for `fastpath show routes`.

pub mod control;
pub mod dev_mcast;
pub mod event_updates;
pub mod iface_address;
pub mod iface_recovery;
pub mod multicast_sync;
pub mod options;
pub mod pod_addresses;
#[allow(clippy::module_inception)]
pub mod router;
pub mod stats;
pub mod tables_view;

pub use control::ControlStats;
pub use event_updates::{PortMap, Skipped};
pub use options::{
    default_annotations, parse_backend, parse_rate, RouterOptions, RouterOptionsError,
};
pub use pod_addresses::{PodAddressesError, PodAddressing};
pub use router::{Router, RouterError};
pub use stats::{ExceptionIfaceStats, RouterStats};
pub use tables_view::TablesView;
