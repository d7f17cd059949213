//! The exception loop on a real TAP, in a network namespace of its own.
//!
//! The outer test makes the namespace and re-runs this binary inside it
//! (`ip netns exec NS <this binary> --exact exception_loop_on_a_tap_in_a_namespace`
//! with an environment variable set). Inside, a fast-path port's exception interface (a TAP with
//! the kernel's address) is served by `fastpath::exception::ExceptionLoop` on its own
//! thread; the test plays a worker: it punts an ARP request for the
//! kernel's address and a UDP datagram, as if received on the port, and
//! checks that the kernel's ARP reply comes back through the port's
//! injection ring, that the kernel learnt the neighbour, and that the
//! datagram reached a kernel socket. Then a flood of punted ARP requests
//! over the port's rate limit: the burst (and one a second) reaches the kernel, the
//! rest is counted as rate-limited, and every buffer comes back.
//!
//! Needs root for the namespace; without it the test says "skipped".

mod exception_loop_common;

use drivers::exception::{BackendChoice, ExceptionBackend};
use drivers::test_netns::{is_root, TestNetns};

const INNER_ENV: &str = "FASTPATH_EXC_LOOP_INNER";

#[test]
fn exception_loop_on_a_tap_in_a_namespace() {
    if std::env::var_os(INNER_ENV).is_some() {
        inner_exception_loop();
        return;
    }
    if !is_root() {
        drivers::skip_test!("a network namespace and a TAP need root");
        return;
    }
    let ns = TestNetns::new("fastpath-excl");
    ns.run_test_inside("exception_loop_on_a_tap_in_a_namespace", INNER_ENV);
}

/// The part run inside the namespace.
fn inner_exception_loop() {
    assert!(
        std::env::var_os(INNER_ENV).is_some(),
        "run by the outer test"
    );
    exception_loop_common::punt_and_inject(BackendChoice::Tap, ExceptionBackend::Tap);
}
