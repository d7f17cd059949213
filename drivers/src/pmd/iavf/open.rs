//! The iavf row of the driver table: a VF opened through vfio becomes an
//! [`IavfPort`] on its BAR 0 (nic-facts.md B.1).

use super::device::{IavfConfig, IavfPort};
use crate::pmd::{OpenArgs, OpenError};
use crate::port::DynPort;
use std::sync::Arc;

/// Bring up the VF behind `args` (see [`crate::pmd::open_vf`]).
pub fn open(args: OpenArgs<'_>) -> Result<DynPort, OpenError> {
    let c = args.cfg;
    let mut cfg = IavfConfig::for_device(c.id, c.name.clone(), *args.device, args.dma);
    cfg.rx_ring = c.rx_ring;
    cfg.tx_ring = c.tx_ring;
    cfg.mtu = c.mtu;
    cfg.mac = c.mac;
    cfg.backing = c.backing.clone();
    cfg.filters = c.filters.clone();
    cfg.data_room = args.data_room;
    cfg.pci = Some(Arc::new(args.pci));
    let port = IavfPort::new(Arc::new(args.bar), cfg).map_err(|e| OpenError::Driver {
        address: args.address,
        why: e.to_string(),
    })?;
    Ok(DynPort::new(port))
}
