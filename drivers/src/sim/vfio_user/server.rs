//! Runs a [`VfioUserDevice`] on a unix socket for one QEMU connection.
//!
//! The protocol (QEMU docs/devel/vfio-user.rst) is spoken by the rust-vmm
//! `vfio_user` crate; this file maps its requests onto the device: the
//! config region, the BAR regions, DMA_MAP/UNMAP into [`GuestMemory`] and
//! SET_IRQS into [`MsixVectors`]. Every request is written to the trace
//! (one line each), so a lab can check what the guest driver did.

use super::config_space::Bar;
use super::device::{DeviceContext, VfioUserDevice};
use super::dma::DmaError;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_NORESIZE, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

/// Why serving stopped other than by the client closing the connection.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket could not be created (path exists, no permission).
    #[error("cannot listen on {path}: {source}")]
    #[allow(missing_docs)]
    Listen {
        path: String,
        source: vfio_user::Error,
    },
    /// The connection broke or QEMU sent what the crate cannot parse.
    #[error("vfio-user connection failed: {0}")]
    Connection(vfio_user::Error),
    /// The model's config space has no MSI-X capability.
    #[error("config space declares no MSI-X capability")]
    NoMsix,
}

/// Serves `dev` on a new socket at `path` until the client (QEMU)
/// disconnects. `trace` gets one line per request.
pub fn serve<D: VfioUserDevice>(
    path: &Path,
    dev: &mut D,
    trace: Box<dyn Write>,
) -> Result<(), ServeError> {
    let cfg = dev.config_space();
    let bars = cfg.bars().to_vec();
    let vectors = msix_vectors(cfg).ok_or(ServeError::NoMsix)?;
    let regions = (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = if index == VFIO_PCI_CONFIG_REGION_INDEX {
                super::config_space::CONFIG_SPACE_SIZE as u64
            } else {
                bars.iter()
                    .find(|b| u32::from(b.index) == index)
                    .map_or(0, |b| b.size)
            };
            let mut region_info = vfio_region_info {
                argsz: std::mem::size_of::<vfio_region_info>() as u32,
                index,
                size,
                ..Default::default()
            };
            if size > 0 {
                region_info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
            }
            ServerRegion {
                region_info,
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect();
    let irqs = (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let msix = index == VFIO_PCI_MSIX_IRQ_INDEX;
            IrqInfo {
                index,
                count: if msix { u32::from(vectors) } else { 0 },
                flags: if msix {
                    VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE
                } else {
                    0
                },
            }
        })
        .collect();
    let server = Server::new(path, true, irqs, regions).map_err(|source| ServeError::Listen {
        path: path.display().to_string(),
        source,
    })?;
    let mut backend = Backend {
        dev,
        ctx: DeviceContext::default(),
        bars,
        vectors,
        trace,
        start: Instant::now(),
        seq: 0,
    };
    backend.dev.connected(&mut backend.ctx);
    backend.log(format_args!("START listening on {}", path.display()));
    let r = server.run(&mut backend).map_err(ServeError::Connection);
    backend.log(format_args!(
        "END {} (dma regions {}, msix armed {}, delivered {})",
        match &r {
            Ok(()) => "connection closed".to_string(),
            Err(e) => e.to_string(),
        },
        backend.ctx.memory.regions(),
        backend.ctx.msix.armed(),
        backend.ctx.msix.delivered()
    ));
    r
}

/// MSI-X table size from the capability list (Message Control bits 10:0
/// hold N-1).
fn msix_vectors(cfg: &super::PciConfigSpace) -> Option<u16> {
    let mut at = usize::from(cfg.read16(0x34) & 0xfc);
    for _ in 0..48 {
        if at == 0 {
            return None;
        }
        let head = cfg.read16(at);
        if head & 0xff == 0x11 {
            return Some((cfg.read16(at + 2) & 0x7ff) + 1);
        }
        at = usize::from((head >> 8) & 0xfc);
    }
    None
}

struct Backend<'a, D> {
    dev: &'a mut D,
    ctx: DeviceContext,
    bars: Vec<Bar>,
    /// MSI-X table size: SET_IRQS past it is refused.
    vectors: u16,
    trace: Box<dyn Write>,
    start: Instant,
    seq: u64,
}

impl<D: VfioUserDevice> Backend<'_, D> {
    /// One trace line: microseconds since start, sequence, text. A trace
    /// write error does not stop the device (the trace is diagnostics).
    fn log(&mut self, what: std::fmt::Arguments) {
        self.seq += 1;
        let _ = writeln!(
            self.trace,
            "{:>10} {:>6} {what}",
            self.start.elapsed().as_micros(),
            self.seq
        );
    }

    /// The BAR number of a region index, if the device declares that BAR
    /// and the access lies inside it.
    fn bar(&self, region: u32, offset: u64, len: usize) -> io::Result<u8> {
        let bar = self
            .bars
            .iter()
            .find(|b| u32::from(b.index) == region)
            .ok_or_else(|| bad(format!("region {region} is not a BAR of this device")))?;
        match offset.checked_add(len as u64) {
            Some(end) if end <= bar.size => Ok(bar.index),
            _ => Err(bad(format!(
                "BAR{} access {offset:#x}+{len} past its size {:#x}",
                bar.index, bar.size
            ))),
        }
    }
}

impl<D: VfioUserDevice> ServerBackend for Backend<'_, D> {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        if region == VFIO_PCI_CONFIG_REGION_INDEX {
            self.dev.config_space().read(offset, data);
            self.log(format_args!(
                "CFG  R {offset:#05x} len {} val {:#x}",
                data.len(),
                value(data)
            ));
            return Ok(());
        }
        let bar = self.bar(region, offset, data.len())?;
        self.dev.bar_read(bar, offset, data, &mut self.ctx);
        self.log(format_args!(
            "BAR{bar} R {offset:#06x} len {} val {:#010x}",
            data.len(),
            value(data)
        ));
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        if region == VFIO_PCI_CONFIG_REGION_INDEX {
            self.dev.config_space().write(offset, data);
            self.log(format_args!(
                "CFG  W {offset:#05x} len {} val {:#x}",
                data.len(),
                value(data)
            ));
            self.dev.config_written(offset, &mut self.ctx);
            return Ok(());
        }
        let bar = self.bar(region, offset, data.len())?;
        self.log(format_args!(
            "BAR{bar} W {offset:#06x} len {} val {:#010x}",
            data.len(),
            value(data)
        ));
        self.dev.bar_write(bar, offset, data, &mut self.ctx);
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let r = self.ctx.memory.map(address, size, fd, offset);
        if r.is_ok() {
            self.dev.dma_mapped(address, size, &mut self.ctx);
        }
        self.log(format_args!(
            "DMA  map iova {address:#x} size {size:#x} offset {offset:#x} flags {:#x}: {}",
            flags.bits(),
            match &r {
                Ok(()) => "mapped".to_string(),
                Err(DmaError::NoFd { .. }) => "no fd, not reachable by the device".to_string(),
                Err(e) => e.to_string(),
            }
        ));
        match r {
            // A section that is not shared memory (QEMU's ROMs and BIOS
            // are not memfd-backed) comes without an fd; the protocol would
            // have the server reach it with DMA_READ/DMA_WRITE messages,
            // which no NIC model needs (rings and buffers live in RAM).
            // Accepting it keeps QEMU from failing the map.
            Ok(()) | Err(DmaError::NoFd { .. }) => Ok(()),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        self.dev.dma_unmapping(address, size, &mut self.ctx);
        let n = self.ctx.memory.unmap(address, size);
        self.log(format_args!(
            "DMA  unmap iova {address:#x} size {size:#x}: {n} region(s)"
        ));
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.log(format_args!("EVT  device reset"));
        self.dev.reset(&mut self.ctx);
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        self.log(format_args!(
            "IRQ  set index {index} flags {flags:#x} start {start} count {count} fds {}",
            fds.len()
        ));
        if index != VFIO_PCI_MSIX_IRQ_INDEX {
            return Err(bad(format!("IRQ index {index}: only MSI-X is offered")));
        }
        if u64::from(start) + u64::from(count) > u64::from(self.vectors) {
            return Err(bad(format!(
                "MSI-X vectors {start}+{count} past the table of {}",
                self.vectors
            )));
        }
        self.ctx.msix.set(flags, start, count, fds);
        Ok(())
    }
}

fn value(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(b)
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::vfio_user::RegisterFileVf;
    use std::io::{Read, Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    use vfio_bindings::bindings::vfio::{
        VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_PCI_BAR0_REGION_INDEX,
    };

    /// The register file, plus a doorbell: a write to 0x10 copies the
    /// written dword to IOVA 0x1000 and signals vector 1, so the test sees
    /// DMA and interrupts go through what QEMU would pass.
    struct Doorbell(RegisterFileVf);

    impl VfioUserDevice for Doorbell {
        fn config_space(&mut self) -> &mut super::super::PciConfigSpace {
            self.0.config_space()
        }
        fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8], ctx: &mut DeviceContext) {
            self.0.bar_read(bar, offset, data, ctx);
        }
        fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8], ctx: &mut DeviceContext) {
            self.0.bar_write(bar, offset, data, ctx);
            if offset == 0x10 {
                ctx.memory.write(0x1000, data).unwrap();
                assert!(ctx.msix.signal(1));
            }
        }
        fn reset(&mut self, ctx: &mut DeviceContext) {
            self.0.reset(ctx);
        }
    }

    #[test]
    fn client_reaches_config_bar_dma_and_irqs() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("vf.sock");
        let trace = dir.path().join("trace.txt");
        let (s, t) = (sock.clone(), trace.clone());
        let server = std::thread::spawn(move || {
            let mut dev = Doorbell(RegisterFileVf::default());
            serve(&s, &mut dev, Box::new(File::create(&t).unwrap())).map(|()| dev.0.reads)
        });
        while !sock.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut c = vfio_user::Client::new(&sock).unwrap();
        let mut id = [0u8; 4];
        c.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, &mut id)
            .unwrap();
        assert_eq!(u32::from_le_bytes(id), 0x10ed_8086);
        assert_eq!(c.region(VFIO_PCI_BAR0_REGION_INDEX).unwrap().size, 0x4000);

        let mut ram = tempfile::tempfile().unwrap();
        ram.set_len(0x2000).unwrap();
        c.dma_map(0, 0, 0x2000, ram.as_raw_fd()).unwrap();
        let (mut rx, tx) = std::io::pipe().unwrap();
        let fds = [tx.as_raw_fd(), tx.as_raw_fd(), tx.as_raw_fd()];
        let flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        c.set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, flags, 0, 3, &fds)
            .unwrap();

        c.region_write(
            VFIO_PCI_BAR0_REGION_INDEX,
            0x10,
            &0xcafe_f00du32.to_le_bytes(),
        )
        .unwrap();
        let mut back = [0u8; 4];
        c.region_read(VFIO_PCI_BAR0_REGION_INDEX, 0x10, &mut back)
            .unwrap();
        assert_eq!(u32::from_le_bytes(back), 0xcafe_f00d);
        // The device's DMA landed in "guest RAM" and its interrupt fired.
        let mut on_ram = [0u8; 4];
        ram.seek(SeekFrom::Start(0x1000)).unwrap();
        ram.read_exact(&mut on_ram).unwrap();
        assert_eq!(u32::from_le_bytes(on_ram), 0xcafe_f00d);
        let mut ev = [0u8; 8];
        rx.read_exact(&mut ev).unwrap();
        assert_eq!(u64::from_ne_bytes(ev), 1);
        drop(c);

        assert_eq!(server.join().unwrap().unwrap(), 1, "one good BAR0 read");
        let log = std::fs::read_to_string(&trace).unwrap();
        assert!(log.contains("BAR0 W 0x0010 len 4 val 0xcafef00d"), "{log}");
        assert!(
            log.contains("DMA  map iova 0x0 size 0x2000 offset 0x0 flags 0x3: mapped"),
            "{log}"
        );
        assert!(
            log.contains("END connection closed (dma regions 1, msix armed 3, delivered 1)"),
            "{log}"
        );
    }

    /// Out-of-range accesses get an error reply, not the device. (Tested
    /// on the backend: the crate's `Client` waits for a body after an
    /// error reply, so it cannot be the one to send them.)
    #[test]
    fn accesses_outside_a_bar_are_refused() {
        let mut dev = RegisterFileVf::default();
        let bars = dev.config_space().bars().to_vec();
        let mut b = Backend {
            dev: &mut dev,
            ctx: DeviceContext::default(),
            bars,
            vectors: 3,
            trace: Box::new(std::io::sink()),
            start: Instant::now(),
            seq: 0,
        };
        let mut d = [0u8; 4];
        assert!(b
            .region_read(VFIO_PCI_BAR0_REGION_INDEX, 0x3ffc, &mut d)
            .is_ok());
        assert!(b
            .region_read(VFIO_PCI_BAR0_REGION_INDEX, 0x3ffe, &mut d)
            .is_err());
        assert!(b.region_write(1, 0, &d).is_err(), "BAR1 is not declared");
        assert!(b
            .region_read(VFIO_PCI_BAR0_REGION_INDEX, u64::MAX, &mut d)
            .is_err());
        assert!(b.set_irqs(0, 0, 0, 1, Vec::new()).is_err(), "no INTx");
        let msix = VFIO_PCI_MSIX_IRQ_INDEX;
        assert!(
            b.set_irqs(msix, 0, 2, 2, Vec::new()).is_err(),
            "past 3 vectors"
        );
        assert!(b.set_irqs(msix, 0, u32::MAX, 2, Vec::new()).is_err());
        assert!(b.set_irqs(msix, 0, 0, 3, Vec::new()).is_ok());
        drop(b);
        assert_eq!(dev.reads, 1);
    }
}
