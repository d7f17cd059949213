//! The exception path's fast-path side: the workers punt packets the
//! kernel must see (ARP, our own addresses, errors to report, ...) into
//! per-worker rings of [`Punted`]; one thread, on a CPU of its own, moves
//! them to each port's exception interface (a TAP, see
//! `drivers::exception`) under a per-port [`RateLimit`], and sends what
//! the kernel emits out of the matching port ([`ExceptionLoop`]).

pub mod counters;
pub mod exception_loop;
pub mod iface_change;
pub mod inject_ring;
pub mod punted;
pub mod rate_limit;

pub use counters::{ExceptionPortCounters, ExceptionPortStats};
pub use exception_loop::{ExceptionCounters, ExceptionLoop, ExceptionLoopError, ExceptionPort};
pub use iface_change::IfaceChange;
pub use inject_ring::InjectRing;
pub use punted::Punted;
pub use rate_limit::{RateLimit, RateLimitError, TokenBucket};
