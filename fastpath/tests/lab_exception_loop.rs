//! VM lab: the exception loop on a vhost-net exception interface (the
//! guest has /dev/vhost-net; the host's namespace test,
//! fastpath/tests/netns_exception.rs, runs the same exchange on a plain
//! TAP): punted ARP answered by the kernel through the injection ring,
//! the neighbour learnt, a punted datagram delivered to a kernel socket,
//! a flood cut to the port's rate limit and counted, every buffer back.

// The lab tests exist only in the VM lab's build (scripts/vmlab/build-tests.sh
// passes --cfg fastpath_lab).
#![cfg(fastpath_lab)]

mod exception_loop_common;

use drivers::exception::{BackendChoice, ExceptionBackend};

#[test]
fn exception_loop_over_vhost_net() {
    drivers::testing::assert_in_vm_lab();
    exception_loop_common::punt_and_inject(BackendChoice::Auto, ExceptionBackend::VhostNet);
}
