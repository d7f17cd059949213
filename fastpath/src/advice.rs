//! What the `fastpath` command line adds to a start-up error: the option
//! that fixes it.
//!
//! The drivers' messages say what is wrong and how to fix the machine,
//! never how to spell it on this command line (they serve any front end).
//! This module matches the typed error and names the `fastpath run` option.

use crate::forwarder::StartError;
use config::port_spec::{PortSpec, AF_PACKET_PREFIX};
use config::run_config::ValidRunConfig;
use drivers::memory::{DmaMapError, MemoryError};
use drivers::pci::{PciError, Sysfs};
use drivers::pmd::OpenError;
use drivers::pool::PoolError;
use drivers::vfio::VfioError;

/// The `fastpath run` option that fixes `err`, if one does.
pub fn start_error_advice(err: &StartError, cfg: &ValidRunConfig) -> Option<String> {
    let software_only = !cfg.ports.iter().any(PortSpec::is_device);
    match err {
        StartError::Pool(PoolError::Memory { source, .. }) => match source {
            MemoryError::HugepageSizeUnsupported { .. }
            | MemoryError::NotEnoughHugepages { .. }
            | MemoryError::NotBacked { .. }
                if software_only =>
            {
                Some("these ports are software only: pass --no-huge to put the pool on ordinary 4K pages".into())
            }
            _ => None,
        },
        StartError::Pool(PoolError::DmaMap {
            source: DmaMapError::Vfio(e),
            ..
        }) if matches!(**e, VfioError::IovaSpace { .. }) => Some(format!(
            "the pool has {} buffers: a smaller --nb-mbuf needs less IOVA space",
            cfg.nb_mbuf()
        )),
        StartError::DeviceNeedsHugepages { .. } => Some(
            "drop --no-huge (reserve hugepages with `echo 256 > /proc/sys/vm/nr_hugepages`, \
             or use --huge-dir)"
                .into(),
        ),
        StartError::Vf(OpenError::Pci(PciError::Unsupported { address, .. })) => {
            let ifaces = Sysfs::default().net_interfaces(*address);
            Some(match ifaces.first() {
                Some(name) => format!(
                    "{address} is the kernel interface {name}: give it to --ports as \
                     {AF_PACKET_PREFIX}{name}"
                ),
                None => format!(
                    "a kernel interface is given to --ports as {AF_PACKET_PREFIX}IFACE"
                ),
            })
        }
        _ => None,
    }
}
