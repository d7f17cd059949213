//! A model of the strict framework ([`crate::sim`]) served to a guest.
//!
//! The model runs as it does under our own drivers: a [`SimDevice`] with
//! its own device thread, DMA only through its [`Iommu`]. Serving it
//! means feeding that machinery from the connection: BAR0 dword accesses
//! become register reads and writes, guest RAM sections from DMA_MAP are
//! mapped into the IOMMU at their guest physical addresses, the command
//! register's bus master bit and VFIO_USER_DEVICE_RESET reach the PCI
//! function, and the model's MSI-X messages go to the eventfds QEMU set.
//! Every rule the guest's driver breaks is a violation, as for ours.

use super::config_space::PciConfigSpace;
use super::device::{DeviceContext, VfioUserDevice};
use crate::mmio::RegisterSpace;
use crate::pci::PciFunction;
use crate::sim::{DeviceModel, Iommu, IrqSink, SimDevice, Violation};
use std::sync::Arc;

/// PCI command register and its bus master bit (PCI 3.0, 6.2.2).
const COMMAND: usize = 0x04;
const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// A running model behind a vfio-user connection.
pub struct ServedModel<M: DeviceModel> {
    config: PciConfigSpace,
    sim: Arc<SimDevice<M>>,
    bus_master: bool,
    /// BAR accesses that were not one aligned dword of BAR0 (answered 0,
    /// ignored): the ixgbevf driver makes none.
    pub odd_accesses: u64,
    /// Guest RAM sections mapped into the model's IOMMU.
    pub sections: u64,
}

impl<M: DeviceModel> ServedModel<M> {
    /// Start `model` in `iommu` behind `config`. Bus mastering is off
    /// until the guest sets it in the command register.
    pub fn start(
        config: PciConfigSpace,
        iommu: &Arc<Iommu>,
        model: impl FnOnce(u32) -> M,
    ) -> ServedModel<M> {
        let sim = Arc::new(SimDevice::start(iommu, model));
        // The function comes out of reset with bus mastering off (PCI 3.0
        // 6.2.2: the command register resets to 0). Infallible on a model.
        let _ = sim.bar().set_bus_master(false);
        ServedModel {
            config,
            sim,
            bus_master: false,
            odd_accesses: 0,
            sections: 0,
        }
    }

    /// The running device (fault injection, statistics).
    pub fn sim(&self) -> &SimDevice<M> {
        &self.sim
    }

    /// The running device, for a thread that injects faults while the
    /// connection is served. Give it back (drop it) before [`finish`].
    ///
    /// [`finish`]: Self::finish
    pub fn shared(&self) -> Arc<SimDevice<M>> {
        Arc::clone(&self.sim)
    }

    /// Stop the device and return the violations it recorded (the guest
    /// driver's broken rules), instead of failing as a test's model does.
    /// If another thread still holds the device, its violations are
    /// taken all the same and the device stops when that thread drops it.
    pub fn finish(self) -> Vec<Violation> {
        self.sim.pause();
        self.sim.violations().take()
    }

    /// The dword at `offset` of BAR0, if the access is one.
    fn dword(bar: u8, offset: u64, len: usize, bar_len: usize) -> Option<u32> {
        let o = u32::try_from(offset).ok()?;
        (bar == 0 && len == 4 && o.is_multiple_of(4) && (o as usize) < bar_len).then_some(o)
    }
}

impl<M: DeviceModel> VfioUserDevice for ServedModel<M> {
    fn config_space(&mut self) -> &mut PciConfigSpace {
        &mut self.config
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8], _ctx: &mut DeviceContext) {
        let vf = self.sim.bar();
        data.fill(0);
        match Self::dword(bar, offset, data.len(), vf.len()) {
            Some(o) => data.copy_from_slice(&vf.read32(o).to_le_bytes()),
            None => self.odd_accesses += 1,
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8], _ctx: &mut DeviceContext) {
        let vf = self.sim.bar();
        match (
            Self::dword(bar, offset, data.len(), vf.len()),
            <[u8; 4]>::try_from(data),
        ) {
            (Some(o), Ok(b)) => vf.write32(o, u32::from_le_bytes(b)),
            _ => self.odd_accesses += 1,
        }
    }

    fn reset(&mut self, _ctx: &mut DeviceContext) {
        // Infallible on a model; leaves bus mastering off, as the command
        // register after an FLR.
        let _ = self.sim.bar().function_reset();
        self.bus_master = false;
    }

    fn connected(&mut self, ctx: &mut DeviceContext) {
        let msix = Arc::clone(&ctx.msix);
        self.sim.with(|m, _| {
            m.set_irq_sink(IrqSink::new(move |v| {
                // A vector the guest has not armed is lost, as an MSI-X
                // message to a masked entry without a pending bit would be
                // for an eventfd-less vector: nothing to deliver it to.
                msix.signal(v);
            }))
        });
    }

    fn config_written(&mut self, offset: u64, _ctx: &mut DeviceContext) {
        if offset > COMMAND as u64 + 1 {
            return;
        }
        let on = self.config.read16(COMMAND) & COMMAND_BUS_MASTER != 0;
        if on != self.bus_master {
            self.bus_master = on;
            // Infallible on a model.
            let _ = self.sim.bar().set_bus_master(on);
        }
    }

    fn dma_mapped(&mut self, iova: u64, _size: u64, ctx: &mut DeviceContext) {
        if let Some((va, len, map)) = ctx.memory.section(iova) {
            self.sim.iommu().map_external(iova, va, len, map);
            self.sections += 1;
        }
    }

    fn dma_unmapping(&mut self, iova: u64, size: u64, _ctx: &mut DeviceContext) {
        self.sim.iommu().unmap_external(iova, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfConfig, VFMAILBOX, VFMBMEM, VTEICS, VTEIMS};
    use crate::sim::mailbox::{MSG_ACK, PFSTS, REQ, VFU};
    use crate::sim::vfio_user::ixgbevf_config_space;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::OwnedFd;
    use std::time::{Duration, Instant};
    use vfio_bindings::bindings::vfio::{VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD};

    fn rd(d: &mut ServedModel<Ixgbevf>, ctx: &mut DeviceContext, o: u32) -> u32 {
        let mut b = [0; 4];
        d.bar_read(0, u64::from(o), &mut b, ctx);
        u32::from_le_bytes(b)
    }

    fn wr(d: &mut ServedModel<Ixgbevf>, ctx: &mut DeviceContext, o: u32, v: u32) {
        d.bar_write(0, u64::from(o), &v.to_le_bytes(), ctx);
    }

    /// What the server feeds the model reaches it: guest RAM at its guest
    /// physical address, the bus master bit, the mailbox answered by the
    /// model's own PF thread, MSI-X to the eventfd, odd accesses counted.
    #[test]
    fn the_model_sees_guest_ram_bus_master_mailbox_and_msix() {
        let mac = "02:09:00:00:00:01".parse().unwrap();
        let cfg = IxgbevfConfig::new(Flavor::X82599, Some(mac));
        let iommu = Iommu::new();
        let mut d = ServedModel::start(ixgbevf_config_space(0x10ed), &iommu, |n| {
            Ixgbevf::new(cfg, n)
        });
        let mut ctx = DeviceContext::default();
        let (mut irq_rx, irq_tx) = std::io::pipe().unwrap();
        ctx.msix.set(
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            1,
            vec![std::fs::File::from(OwnedFd::from(irq_tx))],
        );
        d.connected(&mut ctx);

        // Guest RAM: a shared file mapped at GPA 0x10_0000.
        let mut ram = tempfile::tempfile().unwrap();
        ram.set_len(0x4000).unwrap();
        ram.seek(SeekFrom::Start(0x100)).unwrap();
        ram.write_all(b"guest").unwrap();
        ctx.memory
            .map(0x10_0000, 0x4000, Some(ram.try_clone().unwrap()), 0)
            .unwrap();
        d.dma_mapped(0x10_0000, 0x4000, &mut ctx);
        let mut seen = [0u8; 5];
        d.sim().iommu().read(0x10_0100, &mut seen).unwrap();
        assert_eq!(&seen, b"guest", "the model reads guest RAM by GPA");
        d.sim().iommu().write(0x10_0200, b"model").unwrap();
        let mut back = [0u8; 5];
        ram.seek(SeekFrom::Start(0x200)).unwrap();
        ram.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"model", "its writes land in guest RAM");

        // Bus mastering follows the command register.
        d.config_space().write(4, &[0x06, 0x00]);
        d.config_written(4, &mut ctx);
        assert!(d.bus_master);

        // VF_RESET through BAR0: the model's PF answers with the MAC.
        wr(&mut d, &mut ctx, VFMAILBOX, VFU);
        wr(&mut d, &mut ctx, VFMBMEM, 1);
        // REQ alone: the write drops VFU, so the PF can take the buffer.
        wr(&mut d, &mut ctx, VFMAILBOX, REQ);
        let end = Instant::now() + Duration::from_secs(5);
        while rd(&mut d, &mut ctx, VFMAILBOX) & PFSTS == 0 {
            assert!(Instant::now() < end, "no answer from the model's PF");
            std::thread::sleep(Duration::from_millis(1));
        }
        wr(&mut d, &mut ctx, VFMAILBOX, VFU);
        let w0 = rd(&mut d, &mut ctx, VFMBMEM);
        assert_eq!(w0 & (MSG_ACK | 0xffff), MSG_ACK | 1, "{w0:#x}");
        let w1 = rd(&mut d, &mut ctx, VFMBMEM + 4);
        assert_eq!(w1.to_le_bytes(), [0x02, 0x09, 0, 0]);

        // An interrupt cause raised and unmasked reaches the eventfd.
        wr(&mut d, &mut ctx, VTEIMS, 1);
        wr(&mut d, &mut ctx, VTEICS, 1);
        let mut ev = [0u8; 8];
        irq_rx.read_exact(&mut ev).unwrap();
        assert_eq!(u64::from_ne_bytes(ev), 1);

        // Not a BAR0 dword: answered 0 and counted, no violation.
        let mut half = [0xffu8; 2];
        d.bar_read(0, 0, &mut half, &mut ctx);
        assert_eq!((half, d.odd_accesses), ([0, 0], 1));

        d.dma_unmapping(0x10_0000, 0x4000, &mut ctx);
        assert!(d.sim().iommu().read(0x10_0100, &mut seen).is_err());
        assert_eq!(d.finish(), Vec::new());
    }
}
