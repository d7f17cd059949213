//! [`Router`]: what `--mode l3` adds to a running forwarder. Per port an
//! exception interface (the port's MAC and MTU, its link mirrored from the
//! port's); the exception thread that moves punted packets to those
//! interfaces and the kernel's frames back out; and the control thread
//! that mirrors the kernel's routes, neighbours and addresses into the
//! workers' tables. The pod's addresses ([`super::pod_addresses`]) go on
//! the interfaces once the mirror listens.
//!
//! Start after the forwarder, stop before it: [`Router::stop`] joins both
//! threads and closes the interfaces, so every buffer the exception path
//! held is back in the pool before the forwarder's audit counts them.

use super::control::{Control, ControlStats};
use super::dev_mcast::DEV_MCAST;
use super::event_updates::PortMap;
use super::iface_recovery::{IfaceRecovery, PortNow};
use super::multicast_sync::MulticastSync;
use super::options::{RouterOptions, RouterOptionsError};
use super::pod_addresses::{apply_plan, read_plan, PodAddressesError};
use super::stats::{ExceptionIfaceStats, RouterStats};
use super::tables_view::{TablesQuery, TablesView};
use crate::exception::{
    ExceptionCounters, ExceptionLoop, ExceptionLoopError, ExceptionPort, InjectRing,
};
use crate::forwarder::Forwarder;
use crate::l3::{RouterModel, DEFAULT_MTU};
use crate::mirror::{IfIndex, KernelMirror, MirrorConfig, MirrorError};
use config::cpus::{allowed_cpus, CpuConfigError};
use config::k8s::exception_addresses::AddressPlan;
use config::port_spec::PortSpec;
use config::run_config::ValidRunConfig;
use drivers::cpu::{pin_current_thread, CpuId, CpuSet};
use drivers::exception::{ExceptionConfig, ExceptionError, ExceptionIface};
use drivers::mbuf::PortId;
use drivers::net::MacAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the exception thread sleeps after a round that moved nothing:
/// the added latency of an idle exception path (a ping's first ARP), and
/// what keeps its CPU mostly idle when there is no exception traffic.
const EXCEPTION_IDLE: Duration = Duration::from_micros(100);

/// Why the router could not start. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The forwarder was not started in L3 mode, or its L3 parts were
    /// taken already.
    #[error("the router needs a forwarder in l3 mode (--mode l3)")]
    NotL3,
    /// Interface names or `--pod-address` ports that do not fit the ports.
    #[error(transparent)]
    Options(#[from] RouterOptionsError),
    /// An exception interface could not be made (the message says why:
    /// no CAP_NET_ADMIN, the name taken, no /dev/net/tun, ...).
    #[error("port {port}: {source}")]
    Exception {
        /// Port index.
        port: usize,
        /// Why.
        source: ExceptionError,
    },
    /// The exception loop refused its configuration.
    #[error(transparent)]
    Loop(#[from] ExceptionLoopError),
    /// The kernel mirror could not open (rtnetlink).
    #[error("kernel mirror: {0}")]
    Mirror(#[from] MirrorError),
    /// The allowed CPUs could not be read.
    #[error(transparent)]
    Cpus(#[from] CpuConfigError),
    /// `--exception-cpu` names a worker's CPU.
    #[error("--exception-cpu {0}: a worker runs there; choose a CPU the workers do not use")]
    CpuIsWorker(CpuId),
    /// `--exception-cpu` names a CPU the process may not use.
    #[error("--exception-cpu {cpu}: not an allowed CPU (allowed: {allowed})")]
    CpuNotAllowed {
        /// The CPU asked for.
        cpu: CpuId,
        /// What is allowed.
        allowed: String,
    },
    /// The pod's addresses could not be read or applied.
    #[error(transparent)]
    PodAddresses(#[from] PodAddressesError),
    /// A thread could not be spawned.
    #[error("cannot spawn the {what} thread: {source}")]
    Spawn {
        /// Which.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// The running exception path and control plane of an L3 forwarder.
pub struct Router {
    ifaces: Vec<ExceptionIface>,
    /// The link state last mirrored onto each interface.
    links: Vec<Option<bool>>,
    /// Per port, the kernel interface behind it (AF_PACKET ports), whose
    /// MTU the exception interface follows, and the MTU last set.
    mtus: Vec<(Option<String>, u32)>,
    stop: Arc<AtomicBool>,
    exception: Option<JoinHandle<()>>,
    control: Option<JoinHandle<()>>,
    counters: Arc<ExceptionCounters>,
    control_stats: Arc<Mutex<ControlStats>>,
    exception_cpu: Option<CpuId>,
    /// Requests for a copy of the tables, to the control thread.
    tables_queries: Sender<TablesQuery>,
    /// Interfaces deleted under us, made again.
    recovery: IfaceRecovery,
    /// The pod's addresses applied at start, applied again to an
    /// interface made again (the kernel took them with the old one).
    plan: AddressPlan,
    /// The ports' MACs, in port order.
    macs: Vec<MacAddr>,
    /// The interfaces' multicast groups, followed onto the ports.
    mcast: MulticastSync,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("ifaces", &self.ifaces.len())
            .field("exception_cpu", &self.exception_cpu)
            .finish_non_exhaustive()
    }
}

/// The kernel interface behind port `p`, if it is an AF_PACKET port.
fn kernel_ifname(cfg: &ValidRunConfig, p: usize) -> Option<String> {
    match cfg.ports.get(p) {
        Some(PortSpec::AfPacket(ifname)) => Some(ifname.to_string()),
        _ => None,
    }
}

/// The MTU of a kernel interface (sysfs), if it can be read.
/// An interface's index, from sysfs (this network namespace's view).
fn sysfs_ifindex(ifname: &str) -> Option<IfIndex> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(IfIndex)
}

fn sysfs_mtu(ifname: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The exception thread's CPU: the one asked for (checked), else the
/// first allowed CPU no worker uses, else none (unpinned, with a warning).
fn exception_cpu(asked: Option<CpuId>, workers: &[CpuId]) -> Result<Option<CpuId>, RouterError> {
    let allowed = allowed_cpus()?;
    let cpu = pick_exception_cpu(asked, workers, &allowed.set).map_err(|e| match e {
        RouterError::CpuNotAllowed { cpu, .. } => RouterError::CpuNotAllowed {
            cpu,
            allowed: allowed.to_string(),
        },
        e => e,
    })?;
    if cpu.is_none() {
        log::warn!(
            "exception thread: every allowed CPU runs a worker; it runs unpinned and takes time from them (give a spare CPU with --exception-cpu, or fewer --cores)"
        );
    }
    Ok(cpu)
}

/// [`exception_cpu`]'s choice among `allowed`.
fn pick_exception_cpu(
    asked: Option<CpuId>,
    workers: &[CpuId],
    allowed: &CpuSet,
) -> Result<Option<CpuId>, RouterError> {
    match asked {
        Some(cpu) if workers.contains(&cpu) => Err(RouterError::CpuIsWorker(cpu)),
        Some(cpu) if !allowed.contains(cpu) => Err(RouterError::CpuNotAllowed {
            cpu,
            allowed: allowed
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }),
        Some(cpu) => Ok(Some(cpu)),
        None => Ok(allowed.iter().find(|c| !workers.contains(c))),
    }
}

impl Router {
    /// Opens the exception interfaces and the mirror, and starts the
    /// exception and control threads, for `fwd` (started in L3 mode from
    /// `cfg`). On error everything made so far is closed again, and the
    /// caller stops the forwarder.
    pub fn start(
        fwd: &mut Forwarder,
        cfg: &ValidRunConfig,
        opts: &RouterOptions,
    ) -> Result<Router, RouterError> {
        let ports = fwd.ports();
        let names = opts.ifnames_for(ports.len())?;
        let cpu = exception_cpu(opts.exception_cpu, fwd.cpus())?;
        // Read before anything is made: a bad annotations file stops the
        // start with nothing to undo.
        let plan = read_plan(&cfg.ports, &opts.pod)?;
        let queues = fwd.cpus().len().max(1);
        let mut ifaces = Vec::with_capacity(ports.len());
        let mut exc_ports = Vec::with_capacity(ports.len());
        let mut links = Vec::with_capacity(ports.len());
        let mut mtus = Vec::with_capacity(ports.len());
        let mut cfgs = Vec::with_capacity(ports.len());
        let mut inject = fwd.take_inject_rings().into_iter();
        for (p, (info, link)) in ports.iter().enumerate() {
            let mut ecfg = ExceptionConfig::new(names[p].clone(), info.id, info.mac);
            let kernel = kernel_ifname(cfg, p);
            ecfg.mtu = kernel
                .as_deref()
                .and_then(sysfs_mtu)
                .unwrap_or(u32::from(DEFAULT_MTU));
            mtus.push((kernel, ecfg.mtu));
            ecfg.queues = queues;
            ecfg.backend = opts.backend;
            let (iface, q) = ExceptionIface::open(&ecfg)
                .map_err(|source| RouterError::Exception { port: p, source })?;
            iface
                .set_link(link.up)
                .map_err(|source| RouterError::Exception { port: p, source })?;
            links.push(Some(link.up));
            let out = inject.next().ok_or(RouterError::NotL3)?;
            exc_ports.push(ExceptionPort {
                port: PortId(info.id.0),
                queues: q,
                out: InjectRing(out),
                limit: Some(opts.rate),
            });
            ifaces.push(iface);
            cfgs.push(ecfg);
        }
        let tables = fwd.take_publisher().ok_or(RouterError::NotL3)?;
        let punts = fwd.take_punt_rings();
        if punts.is_empty() {
            return Err(RouterError::NotL3);
        }
        let mut exc = ExceptionLoop::new(exc_ports, punts, fwd.pool().cache(), cfg.burst, 0)?;
        let counters = exc.counters();
        let recovery = IfaceRecovery::new(cfgs, exc.iface_changes());

        let mirror = KernelMirror::open(&MirrorConfig::new(names.iter().cloned()))?;
        // After the mirror has subscribed: it learns the addresses and
        // their routes from the kernel's events, as an operator's.
        let macs: Vec<_> = ports.iter().map(|(i, _)| i.mac).collect();
        apply_plan(&plan, &ifaces, &macs, |n| mirror.ifindex(n))?;
        let mut map = PortMap::new(names.clone(), ports.iter().map(|(i, _)| i.mac).collect());
        for n in &names {
            if let Some(i) = mirror.ifindex(n) {
                map.learn(i, n);
            }
        }
        let control_stats = Arc::new(Mutex::new(ControlStats::default()));
        let (tables_queries, queries) = mpsc::channel();
        let control = Control {
            queries,
            mirror,
            map,
            model: RouterModel::with_limits(opts.limits),
            tables,
            stats: Arc::clone(&control_stats),
        };

        let stop = Arc::new(AtomicBool::new(false));
        let stop_e = Arc::clone(&stop);
        let exception = std::thread::Builder::new()
            .name("fp-exception".into())
            .spawn(move || {
                if let Some(c) = cpu {
                    if let Err(e) = pin_current_thread(c) {
                        log::warn!("exception thread: cannot pin to CPU {c} ({e}); unpinned");
                    }
                }
                exc.run(&stop_e, EXCEPTION_IDLE);
                // Dropping the loop gives back the buffers its cache, its
                // rings and its staging held.
                drop(exc);
            })
            .map_err(|source| RouterError::Spawn {
                what: "exception",
                source,
            })?;
        let stop_c = Arc::clone(&stop);
        let control = match std::thread::Builder::new()
            .name("fp-control".into())
            .spawn(move || control.run(&stop_c))
        {
            Ok(h) => h,
            Err(source) => {
                stop.store(true, Ordering::Relaxed);
                let _ = exception.join();
                return Err(RouterError::Spawn {
                    what: "control",
                    source,
                });
            }
        };
        let mcast = MulticastSync::new(DEV_MCAST, &names);
        Ok(Router {
            mcast,
            ifaces,
            links,
            mtus,
            stop,
            exception: Some(exception),
            control: Some(control),
            counters,
            control_stats,
            exception_cpu: cpu,
            tables_queries,
            recovery,
            plan,
            macs,
        })
    }

    /// Mirrors each port's link state, and an AF_PACKET port's MTU, onto
    /// its exception interface when they changed (call from the control
    /// loop's housekeeping). The kernel then reports the interface's new
    /// MTU through the mirror, and the tables follow.
    pub fn mirror_links(&mut self, fwd: &Forwarder) {
        for (p, (_, link)) in fwd.ports().iter().enumerate() {
            let Some(iface) = self.ifaces.get(p) else {
                continue;
            };
            if let Some(last) = self.links.get_mut(p) {
                if *last != Some(link.up) {
                    let state = if link.up { "up" } else { "down" };
                    match iface.set_link(link.up) {
                        Ok(()) => {
                            log::info!(
                                "port {p}: link {state}, exception interface {} set {state}",
                                iface.name()
                            );
                            *last = Some(link.up);
                        }
                        Err(e) => {
                            log::warn!("port {p}: {e}");
                            // Tried again at the next housekeeping.
                            *last = None;
                        }
                    }
                }
            }
            if let Some((Some(kernel), last)) = self.mtus.get_mut(p) {
                match sysfs_mtu(kernel) {
                    Some(mtu) if mtu != *last => match iface.set_mtu(mtu) {
                        Ok(()) => {
                            log::info!(
                                "port {p}: MTU {mtu}, exception interface {} set to it",
                                iface.name()
                            );
                            *last = mtu;
                        }
                        Err(e) => log::warn!("port {p}: {e}"),
                    },
                    _ => {}
                }
            }
        }
    }

    /// Notices exception interfaces deleted under the fast path and makes
    /// them again (see [`super::iface_recovery`]); call from the control
    /// loop's housekeeping.
    pub fn recover_ifaces(&mut self, fwd: &Forwarder) {
        let ports = fwd.ports();
        let mtus: Vec<u32> = self.mtus.iter().map(|(_, m)| *m).collect();
        let back = self
            .recovery
            .check(Instant::now(), &mut self.ifaces, |p| PortNow {
                up: ports.get(p).is_some_and(|(_, l)| l.up),
                mtu: mtus.get(p).copied().unwrap_or(u32::from(DEFAULT_MTU)),
            });
        for &p in &back {
            if let (Some(last), Some((_, l))) = (self.links.get_mut(p), ports.get(p)) {
                *last = Some(l.up);
            }
        }
        // What fastpath applied itself (the network-status addresses,
        // --pod-address) goes on again; what an operator added by hand is
        // the operator's to add again.
        let again = AddressPlan {
            ports: (self.plan.ports.iter())
                .filter(|e| back.contains(&e.port))
                .cloned()
                .collect(),
            unmatched: Vec::new(),
        };
        if let Err(e) = apply_plan(&again, &self.ifaces, &self.macs, sysfs_ifindex) {
            log::error!("the pod's addresses could not be applied again: {e}");
        }
    }

    /// Gives each port the multicast groups the kernel joined on its
    /// exception interface, when they changed (call from the control
    /// loop's housekeeping, where ports are serviced: it may wait on a
    /// device's mailbox).
    pub fn sync_multicast(&mut self, fwd: &mut Forwarder) {
        self.mcast.sync(|p, groups| fwd.set_multicast(p, groups));
    }

    /// The exception interfaces' names, in port order.
    pub fn ifnames(&self) -> Vec<String> {
        self.ifaces.iter().map(|i| i.name().to_owned()).collect()
    }

    /// The exception thread's CPU (`None`: unpinned).
    pub fn exception_cpu(&self) -> Option<CpuId> {
        self.exception_cpu
    }

    /// A copy of the routes and neighbours, made by the control thread
    /// (within one of its rounds); `None` if it did not answer within
    /// `wait` (stopped, or stuck publishing).
    pub fn tables_view(&self, wait: Duration) -> Option<TablesView> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tables_queries.send(reply).ok()?;
        answer.recv_timeout(wait).ok()
    }

    /// Every counter now.
    pub fn stats(&self) -> RouterStats {
        let per_port = self.counters.all();
        RouterStats {
            exception_cpu: self.exception_cpu.map(|c| c.0),
            interfaces: self
                .ifaces
                .iter()
                .enumerate()
                .map(|(p, i)| ExceptionIfaceStats {
                    port: p,
                    ifname: i.name().to_owned(),
                    backend: i.backend().name(),
                    counters: per_port
                        .iter()
                        .find(|(id, _)| usize::from(id.0) == p)
                        .map(|(_, s)| *s)
                        .unwrap_or_default(),
                    kernel_dropped: i.kernel_dropped(),
                })
                .collect(),
            unknown_port: self.counters.unknown_port.load(Ordering::Relaxed),
            control: self
                .control_stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            multicast: self.mcast.stats(),
        }
    }

    /// Stops both threads (the exception loop's buffers go back to the
    /// pool), closes the interfaces (the kernel deletes them) and returns
    /// the last figures.
    pub fn stop(mut self) -> RouterStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        // Relaxed: the joins order everything the threads did.
        self.stop.store(true, Ordering::Relaxed);
        for h in [self.exception.take(), self.control.take()]
            .into_iter()
            .flatten()
        {
            if h.join().is_err() {
                log::error!("a router thread panicked (its buffers were still returned)");
            }
        }
    }
}

impl Drop for Router {
    /// A router dropped without [`Router::stop`] (an error path) still
    /// joins its threads, so their buffers are back before the audit.
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exception_cpu_is_never_a_workers() {
        let allowed = CpuSet::from_ids([CpuId(0), CpuId(1), CpuId(2)]);
        let workers = [CpuId(1), CpuId(2)];
        assert_eq!(
            pick_exception_cpu(None, &workers, &allowed).unwrap(),
            Some(CpuId(0))
        );
        assert_eq!(
            pick_exception_cpu(None, &[CpuId(0), CpuId(1), CpuId(2)], &allowed).unwrap(),
            None
        );
        assert_eq!(
            pick_exception_cpu(Some(CpuId(0)), &workers, &allowed).unwrap(),
            Some(CpuId(0))
        );
        let e = pick_exception_cpu(Some(CpuId(2)), &workers, &allowed).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--exception-cpu 2: a worker runs there; choose a CPU the workers do not use"
        );
        let e = pick_exception_cpu(Some(CpuId(7)), &workers, &allowed).unwrap_err();
        assert!(
            matches!(e, RouterError::CpuNotAllowed { cpu: CpuId(7), .. }),
            "{e}"
        );
    }
}
