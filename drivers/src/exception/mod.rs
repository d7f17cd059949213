//! The exception path to the kernel: one kernel network interface per
//! fast-path port, through which the fast path hands the kernel what it
//! does not handle itself (ARP, packets for our own addresses, ICMP
//! errors to generate, ...) and sends out what the kernel emits.
//!
//! [`ExceptionIface::open`] creates a TAP (`IFF_TAP | IFF_NO_PI`, and
//! `IFF_MULTI_QUEUE` with one file descriptor per queue) named after the
//! port, with the port's MAC and MTU, and hands out one RX/TX queue pair
//! per TAP queue. The interface's link state is set with
//! [`ExceptionIface::set_link`] to mirror the port's. The kernel deletes
//! the TAP when the interface and all its queues are dropped (it is not
//! persistent: its last queue file descriptor takes it away).
//!
//! Backends ([`ExceptionBackend`]): frames move either by plain `read` and
//! `write` on the TAP queues, or through vhost-net when `/dev/vhost-net`
//! opens. [`BackendChoice::Auto`] picks vhost-net when it can and plain
//! TAP otherwise; an explicit choice that cannot be had is a typed error.
//! [`ExceptionIface::backend`] says which is in use (for the statistics).
//!
//! Queues move [`Mbuf`](crate::mbuf::Mbuf)s from a [`PoolCache`] like the
//! ports' queues ([`RxQueue`]/[`TxQueue`]), never block, and account for
//! every buffer: each is delivered, freed and counted, or left with the
//! caller.

mod ifreq;
pub mod tap_queue;
mod vhost_ioctl;
pub mod vhost_queue;
mod virtq;
pub mod vnet_features;

pub use ifreq::is_valid_name;
pub use tap_queue::{TapRx, TapRxCounters, TapTx};
#[cfg(fastpath_lab)]
pub use vhost_queue::VhostTrap;
pub use vhost_queue::{Negotiated, VhostError, VhostRx, VhostTx};

use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::net::MacAddr;
use crate::pool::PoolCache;
use crate::port::{QueueCounters, RxQueue, TxQueue, XStat};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the TUN/TAP driver's control device is.
pub const TUN_PATH: &str = "/dev/net/tun";
/// Where the vhost-net device is (the SR-IOV device plugin's
/// `needVhostNet` gives a pod this and /dev/net/tun).
pub const VHOST_NET_PATH: &str = "/dev/vhost-net";
/// Smallest MTU for an Ethernet device with IPv4 (RFC 791, section 3.1:
/// every host must take 68-byte datagrams); Linux's ETH_MIN_MTU.
pub const MIN_MTU: u32 = 68;
/// Largest MTU a TAP takes (drivers/net/tun.c sets max_mtu to
/// MAX_MTU = 65535).
pub const MAX_MTU: u32 = 65535;
/// Most queues of one multi-queue TAP (include/uapi/linux/if_tun.h,
/// MAX_TAP_QUEUES = DEFAULT_MAX_NUM_RSS_QUEUES = 256).
pub const MAX_QUEUES: usize = 256;

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// vhost-net if its device opens, plain TAP otherwise.
    #[default]
    Auto,
    /// Plain TAP `read`/`write`.
    Tap,
    /// vhost-net, or an error.
    VhostNet,
}

/// The backend in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionBackend {
    /// Plain TAP `read`/`write`, one system call per frame.
    Tap,
    /// vhost-net: the kernel's vhost worker moves frames between the TAP
    /// and virtqueues in our memory.
    VhostNet,
}

impl ExceptionBackend {
    /// Name for statistics and logs.
    pub fn name(self) -> &'static str {
        match self {
            ExceptionBackend::Tap => "tap",
            ExceptionBackend::VhostNet => "vhost-net",
        }
    }
}

/// How to open an exception interface.
#[derive(Debug, Clone)]
pub struct ExceptionConfig {
    /// Interface name (the port's name), 1 to 15 bytes.
    pub name: String,
    /// The port whose interface this is: stamped on received buffers.
    pub port: PortId,
    /// The port's MAC address.
    pub mac: MacAddr,
    /// The port's MTU.
    pub mtu: u32,
    /// Number of queues (TAP queues, each an RX/TX pair).
    pub queues: usize,
    /// Backend wanted.
    pub backend: BackendChoice,
    /// The TUN/TAP control device ([`TUN_PATH`]).
    pub tun_path: PathBuf,
    /// The vhost-net device ([`VHOST_NET_PATH`]).
    pub vhost_path: PathBuf,
    /// VM lab only: a deliberately wrong vhost-net setting.
    #[cfg(fastpath_lab)]
    pub trap: VhostTrap,
}

impl ExceptionConfig {
    /// One queue, MTU 1500, automatic backend, the standard device paths.
    pub fn new(name: impl Into<String>, port: PortId, mac: MacAddr) -> ExceptionConfig {
        ExceptionConfig {
            name: name.into(),
            port,
            mac,
            mtu: 1500,
            queues: 1,
            backend: BackendChoice::Auto,
            tun_path: TUN_PATH.into(),
            vhost_path: VHOST_NET_PATH.into(),
            #[cfg(fastpath_lab)]
            trap: VhostTrap::None,
        }
    }
}

/// Why an exception interface could not be opened or changed.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionError {
    /// The name is not one the kernel takes.
    #[error("exception interface: {0:?} is not a valid interface name (1 to 15 bytes; no '/', ':', NUL or space; not . or ..)")]
    BadName(String),
    /// MTU out of range.
    #[error("exception interface {name}: MTU {mtu} out of range ({MIN_MTU} to {MAX_MTU})")]
    BadMtu {
        /// Interface.
        name: String,
        /// Asked.
        mtu: u32,
    },
    /// The MAC is not a usable station address.
    #[error("exception interface {name}: {mac} is not a unicast MAC address")]
    BadMac {
        /// Interface.
        name: String,
        /// Asked.
        mac: MacAddr,
    },
    /// Queue count out of range.
    #[error("exception interface {name}: {queues} queues asked, 1 to {MAX_QUEUES} allowed")]
    BadQueues {
        /// Interface.
        name: String,
        /// Asked.
        queues: usize,
    },
    /// No TUN/TAP device.
    #[error("exception interface {name}: cannot open {path}: {source} (load the tun module; in a pod, ask for /dev/net/tun)")]
    NoTun {
        /// Interface.
        name: String,
        /// Device path.
        path: PathBuf,
        /// errno.
        source: io::Error,
    },
    /// Creating or configuring the TAP needs CAP_NET_ADMIN.
    #[error("exception interface {name}: {op} not permitted: creating a TAP needs CAP_NET_ADMIN (run as root, or give the pod NET_ADMIN)")]
    NotPermitted {
        /// Interface.
        name: String,
        /// The call.
        op: &'static str,
    },
    /// vhost-net was asked for explicitly and cannot be had.
    #[error("exception interface {name}: vhost-net asked for but {path} does not open: {source} (load vhost_net, or in a pod set needVhostNet; or choose the tap backend)")]
    VhostUnavailable {
        /// Interface.
        name: String,
        /// Device path.
        path: PathBuf,
        /// errno.
        source: io::Error,
    },
    /// vhost-net opened but could not be set up.
    #[error("exception interface {name}: vhost-net queue {queue}: {source}")]
    Vhost {
        /// Interface.
        name: String,
        /// Queue.
        queue: usize,
        /// What failed.
        source: VhostError,
    },
    /// The interface exists and is not a TAP we can attach to (another
    /// kind of device, or a single-queue TAP held by someone else).
    #[error("exception interface {name}: cannot attach a TAP queue: {source} (is there already an interface of that name? `ip link show {name}`)")]
    Busy {
        /// Interface.
        name: String,
        /// errno.
        source: io::Error,
    },
    /// Another system call failed.
    #[error("exception interface {name}: {op}: {source}")]
    Io {
        /// Interface.
        name: String,
        /// The call.
        op: &'static str,
        /// errno.
        source: io::Error,
    },
}

fn sys_err(name: &str, op: &'static str, e: io::Error) -> ExceptionError {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => ExceptionError::NotPermitted {
            name: name.to_string(),
            op,
        },
        _ => ExceptionError::Io {
            name: name.to_string(),
            op,
            source: e,
        },
    }
}

/// Opens a character device read-write, non-blocking.
fn open_dev(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: c is a valid NUL-terminated path that outlives the call;
    // the result is checked below.
    let raw = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Which backend a choice gives, given whether the vhost-net device
/// opened (`Ok(fd)`) or why not.
fn pick_backend(
    cfg: &ExceptionConfig,
    vhost: io::Result<OwnedFd>,
) -> Result<(ExceptionBackend, Option<OwnedFd>), ExceptionError> {
    match (cfg.backend, vhost) {
        (BackendChoice::Tap, _) => Ok((ExceptionBackend::Tap, None)),
        (BackendChoice::Auto, Err(e)) => {
            log::info!(
                "exception interface {}: {} does not open ({e}): plain TAP backend",
                cfg.name,
                cfg.vhost_path.display()
            );
            Ok((ExceptionBackend::Tap, None))
        }
        (BackendChoice::VhostNet, Err(source)) => Err(ExceptionError::VhostUnavailable {
            name: cfg.name.clone(),
            path: cfg.vhost_path.clone(),
            source,
        }),
        (BackendChoice::Auto | BackendChoice::VhostNet, Ok(fd)) => {
            Ok((ExceptionBackend::VhostNet, Some(fd)))
        }
    }
}

/// Counters of one queue pair, kept by the interface for its statistics.
#[derive(Debug)]
struct QueueStats {
    rx: Arc<TapRxCounters>,
    tx: Arc<QueueCounters>,
}

/// Totals over the queues of one exception interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExceptionStats {
    /// Frames read from the kernel.
    pub from_kernel: u64,
    /// Bytes read from the kernel.
    pub from_kernel_bytes: u64,
    /// Frames written to the kernel.
    pub to_kernel: u64,
    /// Bytes written to the kernel.
    pub to_kernel_bytes: u64,
    /// Bursts from the kernel cut short for want of a buffer.
    pub rx_nombuf: u64,
    /// Frames from the kernel larger than a buffer, dropped.
    pub rx_too_large: u64,
    /// Read errors.
    pub rx_errors: u64,
    /// Frames the kernel refused, dropped.
    pub tx_refused: u64,
}

/// One kernel interface of the exception path.
#[derive(Debug)]
pub struct ExceptionIface {
    name: String,
    backend: ExceptionBackend,
    ctl: OwnedFd,
    /// The queue fds are shared with the queues; holding them here keeps
    /// the TAP alive as long as this value lives.
    _fds: Vec<Arc<OwnedFd>>,
    stats: Vec<QueueStats>,
    negotiated: Option<Negotiated>,
    /// vhost-net: the eventfds its devices signal errors on (none with
    /// plain TAP).
    errs: Vec<Arc<OwnedFd>>,
}

/// Receive half of one exception queue (kernel to us).
#[derive(Debug)]
pub enum ExceptionRx {
    /// Plain TAP.
    Tap(TapRx),
    /// vhost-net.
    Vhost(VhostRx),
}

/// Transmit half of one exception queue (us to the kernel).
#[derive(Debug)]
pub enum ExceptionTx {
    /// Plain TAP.
    Tap(TapTx),
    /// vhost-net.
    Vhost(VhostTx),
}

impl RxQueue for ExceptionRx {
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        match self {
            ExceptionRx::Tap(q) => q.rx_burst(cache, out, max),
            ExceptionRx::Vhost(q) => q.rx_burst(cache, out, max),
        }
    }
}

impl TxQueue for ExceptionTx {
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        match self {
            ExceptionTx::Tap(q) => q.tx_burst(cache, pkts),
            ExceptionTx::Vhost(q) => q.tx_burst(cache, pkts),
        }
    }
}

/// The queues of an interface, in queue order.
pub type ExceptionQueues = Vec<(ExceptionRx, ExceptionTx)>;

impl ExceptionIface {
    /// Create the TAP `cfg.name` with `cfg.queues` queues, give it the
    /// port's MAC and MTU (its link is left down: see
    /// [`set_link`](Self::set_link)), and hand out its queues.
    pub fn open(
        cfg: &ExceptionConfig,
    ) -> Result<(ExceptionIface, ExceptionQueues), ExceptionError> {
        let name = cfg.name.as_str();
        if !is_valid_name(name) {
            return Err(ExceptionError::BadName(cfg.name.clone()));
        }
        if !(MIN_MTU..=MAX_MTU).contains(&cfg.mtu) {
            return Err(ExceptionError::BadMtu {
                name: cfg.name.clone(),
                mtu: cfg.mtu,
            });
        }
        if !cfg.mac.is_unicast() {
            return Err(ExceptionError::BadMac {
                name: cfg.name.clone(),
                mac: cfg.mac,
            });
        }
        if cfg.queues == 0 || cfg.queues > MAX_QUEUES {
            return Err(ExceptionError::BadQueues {
                name: cfg.name.clone(),
                queues: cfg.queues,
            });
        }
        let vhost = match cfg.backend {
            BackendChoice::Tap => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            _ => open_dev(&cfg.vhost_path),
        };
        let (backend, vhost_fd) = pick_backend(cfg, vhost)?;
        match Self::open_with(cfg, backend, vhost_fd) {
            // The device opened but could not serve (not ours to own, a
            // feature missing): automatic choice means plain TAP then. The
            // half-made TAP went with its file descriptors.
            Err(e @ ExceptionError::Vhost { .. }) if cfg.backend == BackendChoice::Auto => {
                log::warn!("{e}: plain TAP backend instead");
                Self::open_with(cfg, ExceptionBackend::Tap, None)
            }
            r => r,
        }
    }

    fn open_with(
        cfg: &ExceptionConfig,
        backend: ExceptionBackend,
        mut vhost_fd: Option<OwnedFd>,
    ) -> Result<(ExceptionIface, ExceptionQueues), ExceptionError> {
        let name = cfg.name.as_str();
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE;
        if backend == ExceptionBackend::VhostNet {
            // vhost-net reads and writes a virtio-net header on the TAP.
            flags |= libc::IFF_VNET_HDR;
        }
        let mut tap_fds = Vec::with_capacity(cfg.queues);
        for _ in 0..cfg.queues {
            let fd = open_dev(&cfg.tun_path).map_err(|source| ExceptionError::NoTun {
                name: cfg.name.clone(),
                path: cfg.tun_path.clone(),
                source,
            })?;
            ifreq::tun_set_iff(fd.as_fd(), name, flags).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => ExceptionError::NotPermitted {
                    name: cfg.name.clone(),
                    op: "TUNSETIFF",
                },
                Some(libc::EBUSY | libc::EINVAL) => ExceptionError::Busy {
                    name: cfg.name.clone(),
                    source: e,
                },
                _ => sys_err(name, "TUNSETIFF", e),
            })?;
            tap_fds.push(Arc::new(fd));
        }
        let ctl = ifreq::control_socket().map_err(|e| sys_err(name, "socket(AF_INET)", e))?;
        let mut stats = Vec::with_capacity(cfg.queues);
        let mut queues = Vec::with_capacity(cfg.queues);
        let mut negotiated = None;
        let mut errs = Vec::new();
        for (q, fd) in tap_fds.iter().enumerate() {
            match backend {
                ExceptionBackend::Tap => {
                    let (rx, tx, rxc, txc) = tap_queue::queue(Arc::clone(fd), cfg.port);
                    stats.push(QueueStats { rx: rxc, tx: txc });
                    queues.push((ExceptionRx::Tap(rx), ExceptionTx::Tap(tx)));
                }
                ExceptionBackend::VhostNet => {
                    // One vhost-net device per queue: the one that told us
                    // vhost-net is there for the first.
                    let dev = match vhost_fd.take() {
                        Some(d) => d,
                        None => open_dev(&cfg.vhost_path).map_err(|source| {
                            ExceptionError::VhostUnavailable {
                                name: cfg.name.clone(),
                                path: cfg.vhost_path.clone(),
                                source,
                            }
                        })?,
                    };
                    let (rx, tx, rxc, txc, neg, err_fds) = vhost_queue::queue(
                        dev,
                        Arc::clone(fd),
                        cfg.port,
                        #[cfg(fastpath_lab)]
                        cfg.trap,
                    )
                    .map_err(|source| ExceptionError::Vhost {
                        name: cfg.name.clone(),
                        queue: q,
                        source,
                    })?;
                    negotiated = Some(neg);
                    errs.extend(err_fds);
                    stats.push(QueueStats { rx: rxc, tx: txc });
                    queues.push((ExceptionRx::Vhost(rx), ExceptionTx::Vhost(tx)));
                }
            }
        }
        let iface = ExceptionIface {
            name: cfg.name.clone(),
            backend,
            ctl,
            _fds: tap_fds,
            stats,
            negotiated,
            errs,
        };
        iface.set_mac(cfg.mac)?;
        iface.set_mtu(cfg.mtu)?;
        Ok((iface, queues))
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend in use.
    pub fn backend(&self) -> ExceptionBackend {
        self.backend
    }

    /// With vhost-net: the features acked and the header length the TAP
    /// was given.
    pub fn vhost_negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Number of queues.
    pub fn queue_count(&self) -> usize {
        self.stats.len()
    }

    /// Set the MAC address (the port's changed).
    pub fn set_mac(&self, mac: MacAddr) -> Result<(), ExceptionError> {
        ifreq::set_mac(self.ctl.as_fd(), &self.name, mac)
            .map_err(|e| sys_err(&self.name, "SIOCSIFHWADDR", e))
    }

    /// Set the MTU (the port's changed).
    pub fn set_mtu(&self, mtu: u32) -> Result<(), ExceptionError> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(ExceptionError::BadMtu {
                name: self.name.clone(),
                mtu,
            });
        }
        ifreq::set_mtu(self.ctl.as_fd(), &self.name, mtu)
            .map_err(|e| sys_err(&self.name, "SIOCSIFMTU", e))
    }

    /// Bring the interface up or down, mirroring the port's link.
    pub fn set_link(&self, up: bool) -> Result<(), ExceptionError> {
        ifreq::set_up(self.ctl.as_fd(), &self.name, up)
            .map_err(|e| sys_err(&self.name, "SIOCSIFFLAGS", e))
    }

    /// Whether the interface still exists: `false` once it was deleted
    /// under us (`ip link del`), which leaves our queues open on nothing
    /// (writes refused, nothing to read) with either backend, vhost-net
    /// serving the same TAP queues. An interface of the same name made
    /// since by someone else is not ours: still `false`.
    pub fn attached(&self) -> Result<bool, ExceptionError> {
        let Some(fd) = self._fds.first() else {
            return Ok(false);
        };
        ifreq::tun_attached(fd.as_fd()).map_err(|e| sys_err(&self.name, "TUNGETIFF", e))
    }

    /// vhost-net: how many errors its devices signalled since the last
    /// call (`VHOST_SET_VRING_ERR`: a virtqueue the kernel's worker could
    /// not use; it then moves nothing more on it). Always 0 with plain
    /// TAP.
    pub fn take_backend_errors(&self) -> Result<u64, ExceptionError> {
        let mut n = 0u64;
        for e in &self.errs {
            let c = vhost_ioctl::take_count(e.as_fd())
                .map_err(|e| sys_err(&self.name, "read(vhost error eventfd)", e))?;
            n = n.saturating_add(c);
        }
        Ok(n)
    }

    /// Gives up this interface's hold on its TAP (its queue file
    /// descriptors and vhost-net error eventfds): the kernel deletes the
    /// TAP once the queues handed out are dropped too. The interface can
    /// then only be asked whether its name [`exists`](Self::exists).
    pub fn release(&mut self) {
        self._fds.clear();
        self.errs.clear();
    }

    /// Whether an interface of this name exists in the namespace (ours or
    /// not).
    pub fn exists(&self) -> Result<bool, ExceptionError> {
        match ifreq::flags(self.ctl.as_fd(), &self.name) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(sys_err(&self.name, "SIOCGIFFLAGS", e)),
        }
    }

    /// Whether the interface is administratively up.
    pub fn is_up(&self) -> Result<bool, ExceptionError> {
        let f = ifreq::flags(self.ctl.as_fd(), &self.name)
            .map_err(|e| sys_err(&self.name, "SIOCGIFFLAGS", e))?;
        Ok(f & libc::IFF_UP as u16 != 0)
    }

    /// Frames the kernel dropped because we did not read them in time (the
    /// TAP's queues were full): the TAP's `tx_dropped`, read from sysfs.
    /// `None` if sysfs does not show the interface (another namespace's
    /// sysfs is mounted).
    pub fn kernel_dropped(&self) -> Option<u64> {
        std::fs::read_to_string(format!(
            "/sys/class/net/{}/statistics/tx_dropped",
            self.name
        ))
        .ok()
        .and_then(|s| s.trim().parse().ok())
    }

    /// Totals over the queues.
    pub fn stats(&self) -> ExceptionStats {
        let g = QueueCounters::get;
        let mut s = ExceptionStats::default();
        for q in &self.stats {
            s.from_kernel += g(&q.rx.q.packets);
            s.from_kernel_bytes += g(&q.rx.q.bytes);
            s.rx_nombuf += g(&q.rx.q.dropped);
            s.rx_too_large += g(&q.rx.too_large);
            s.rx_errors += g(&q.rx.errors);
            s.to_kernel += g(&q.tx.packets);
            s.to_kernel_bytes += g(&q.tx.bytes);
            s.tx_refused += g(&q.tx.dropped);
        }
        s
    }

    /// Every counter by name (stable: scripts read them), with the backend
    /// as `backend_vhost_net` 0 or 1.
    pub fn xstats(&self) -> Vec<XStat> {
        let s = self.stats();
        let mut v = vec![
            ("from_kernel_packets", s.from_kernel),
            ("from_kernel_bytes", s.from_kernel_bytes),
            ("to_kernel_packets", s.to_kernel),
            ("to_kernel_bytes", s.to_kernel_bytes),
            ("from_kernel_nombuf", s.rx_nombuf),
            ("from_kernel_too_large", s.rx_too_large),
            ("from_kernel_read_errors", s.rx_errors),
            ("to_kernel_refused", s.tx_refused),
            (
                "backend_vhost_net",
                u64::from(self.backend == ExceptionBackend::VhostNet),
            ),
        ];
        if let Some(d) = self.kernel_dropped() {
            v.push(("kernel_queue_full_drops", d));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ExceptionConfig {
        ExceptionConfig::new("fp0", PortId(0), MacAddr::local(1))
    }

    #[test]
    fn bad_settings_are_refused_before_any_system_call() {
        let mut c = cfg();
        c.tun_path = "/nonexistent/tun".into();
        c.name = "far-too-long-name".into();
        assert!(matches!(
            ExceptionIface::open(&c),
            Err(ExceptionError::BadName(_))
        ));
        let mut c = cfg();
        c.mtu = 67;
        assert!(matches!(
            ExceptionIface::open(&c),
            Err(ExceptionError::BadMtu { mtu: 67, .. })
        ));
        c.mtu = 65536;
        assert!(matches!(
            ExceptionIface::open(&c),
            Err(ExceptionError::BadMtu { .. })
        ));
        let mut c = cfg();
        c.mac = MacAddr::BROADCAST;
        assert!(matches!(
            ExceptionIface::open(&c),
            Err(ExceptionError::BadMac { .. })
        ));
        let mut c = cfg();
        c.queues = 0;
        assert!(matches!(
            ExceptionIface::open(&c),
            Err(ExceptionError::BadQueues { .. })
        ));
        c.queues = MAX_QUEUES + 1;
        assert!(matches!(
            ExceptionIface::open(&c),
            Err(ExceptionError::BadQueues { .. })
        ));
    }

    #[test]
    fn explicit_vhost_without_the_device_is_a_typed_error() {
        let mut c = cfg();
        c.backend = BackendChoice::VhostNet;
        c.vhost_path = "/nonexistent/vhost-net".into();
        let err = ExceptionIface::open(&c).unwrap_err();
        assert!(
            matches!(err, ExceptionError::VhostUnavailable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/vhost-net"), "{err}");
    }

    #[test]
    fn auto_falls_back_to_tap_and_explicit_choices_are_kept() {
        let absent = || Err(io::Error::from_raw_os_error(libc::ENOENT));
        let mut c = cfg();
        assert_eq!(pick_backend(&c, absent()).unwrap().0, ExceptionBackend::Tap);
        c.backend = BackendChoice::Tap;
        assert_eq!(pick_backend(&c, absent()).unwrap().0, ExceptionBackend::Tap);
        // Any open file stands in for the device.
        let dev = || open_dev(Path::new("/dev/null"));
        assert_eq!(pick_backend(&c, dev()).unwrap().0, ExceptionBackend::Tap);
        c.backend = BackendChoice::Auto;
        assert_eq!(
            pick_backend(&c, dev()).unwrap().0,
            ExceptionBackend::VhostNet
        );
        c.backend = BackendChoice::VhostNet;
        assert_eq!(
            pick_backend(&c, dev()).unwrap().0,
            ExceptionBackend::VhostNet
        );
        assert!(pick_backend(&c, absent()).is_err());
        assert_eq!(ExceptionBackend::Tap.name(), "tap");
        assert_eq!(ExceptionBackend::VhostNet.name(), "vhost-net");
    }

    #[test]
    fn missing_tun_device_is_a_typed_error() {
        let mut c = cfg();
        c.backend = BackendChoice::Tap;
        c.tun_path = "/nonexistent/tun".into();
        let err = ExceptionIface::open(&c).unwrap_err();
        assert!(matches!(err, ExceptionError::NoTun { .. }), "{err}");
    }
}
