//! The control thread: follows the kernel through the mirror, turns its
//! events into router model updates, and publishes each batch of table
//! operations to the workers.
//!
//! One round: wait up to [`WAIT`] for events, translate them
//! ([`PortMap::updates`]), feed the model, and publish the ops with
//! [`LeftRight::apply_within`](crate::tables::LeftRight::apply_within).
//! A batch is visible to every worker when that call returns `Ok`: each
//! has passed a quiescent point after the publication. The time from the
//! events' arrival to then is the event-to-worker latency reported. A
//! batch a stalled worker kept from being applied is kept and applied,
//! with what came since, in a later round.

use super::event_updates::{PortMap, Skipped};
use super::tables_view::{answer_queries, TablesQuery, TablesView};
use crate::l3::{RouterModel, TableOp, TablesPublisher, Update};
use crate::mirror::{KernelEvent, KernelMirror, MirrorCounters};
use crate::tables::{ApplyError, PublishStats};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest wait for kernel events in one round: how late a stop is seen.
const WAIT: Duration = Duration::from_millis(20);

/// Longest wait for the workers' quiescent points per publication. A
/// worker passes one every loop (microseconds); this much means one is
/// stuck, and the batch waits for the next round rather than the thread.
const PUBLISH_WAIT: Duration = Duration::from_millis(100);

/// How long to wait before reading again after the mirror failed.
const RETRY: Duration = Duration::from_millis(100);

/// What the control thread did, for the statistics.
#[derive(Debug, Clone, Default)]
pub struct ControlStats {
    /// The mirror's counters (messages, events, ignored by reason,
    /// resyncs).
    pub mirror: MirrorCounters,
    /// Events about an interface that is not ours (mapped to no port).
    pub events_not_ours: u64,
    /// `local` routes left to the kernel.
    pub local_routes: u64,
    /// Updates the model took.
    pub updates: u64,
    /// Updates the model refused (logged).
    pub refused: u64,
    /// Mirror reads that failed (logged; the thread goes on).
    pub mirror_errors: u64,
    /// Publications of the tables.
    pub publish: PublishStats,
    /// Batches a stalled worker kept from being applied (retried).
    pub not_applied: u64,
    /// Bytes of both copies of the tables.
    pub memory_bytes: usize,
    /// IPv4 routes in the FIB (ours and the neighbours' host routes).
    pub routes4: usize,
    /// IPv6 routes in the FIB.
    pub routes6: usize,
    /// Next-hop entries in use.
    pub next_hops: usize,
    /// Table operations the FIB refused (a full pool).
    pub failed_ops: u64,
    /// The last batch's time from its events' arrival until every worker
    /// read it.
    pub last_latency: Duration,
    /// The longest such time.
    pub max_latency: Duration,
}

/// The thread's state.
pub struct Control {
    pub(super) mirror: KernelMirror,
    pub(super) map: PortMap,
    pub(super) model: RouterModel,
    pub(super) tables: TablesPublisher,
    pub(super) stats: Arc<Mutex<ControlStats>>,
    /// The operator's requests for a copy of the tables (answered once
    /// per round, so within [`WAIT`]).
    pub(super) queries: Receiver<TablesQuery>,
}

impl Control {
    /// Runs rounds until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut events: Vec<KernelEvent> = Vec::new();
        let mut updates: Vec<Update> = Vec::new();
        // Ops not yet applied (a stalled worker), then this round's.
        let mut ops: Vec<TableOp> = Vec::new();
        let mut since: Option<Instant> = None;
        let mut local = ControlStats::default();
        self.refresh(&mut local);
        // Relaxed: the flag carries no data; the join orders the rest.
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.mirror.wait(WAIT, &mut events) {
                local.mirror_errors += 1;
                log::error!("kernel mirror: {e}; retrying");
                std::thread::sleep(RETRY);
            }
            answer_queries(&self.queries, || {
                TablesView::new(self.tables.published(), &self.model)
            });
            if events.is_empty() && ops.is_empty() {
                continue;
            }
            let arrived = *since.get_or_insert_with(Instant::now);
            for ev in events.drain(..) {
                log::debug!("kernel: {ev}");
                match self.map.updates(&ev, &mut updates) {
                    Ok(()) => {}
                    Err(Skipped::NotOurs) => local.events_not_ours += 1,
                    Err(Skipped::LocalRoute) => local.local_routes += 1,
                }
            }
            for u in updates.drain(..) {
                // A refused update changed nothing, or (next-hop ids ran
                // out) appended ops that must still be applied.
                match self.model.update(&u, &mut ops) {
                    Ok(()) => local.updates += 1,
                    Err(e) => {
                        local.refused += 1;
                        log::warn!("router model refused {u:?}: {e}");
                    }
                }
            }
            if ops.is_empty() {
                since = None;
            } else {
                match self.tables.apply_within(&ops, PUBLISH_WAIT) {
                    Ok(()) => {
                        ops.clear();
                        let took = arrived.elapsed();
                        local.last_latency = took;
                        local.max_latency = local.max_latency.max(took);
                        since = None;
                    }
                    // Published: the workers have it (one was slow to
                    // say so, and the next batch waits for it first).
                    Err(e @ ApplyError::Lagging { .. }) => {
                        log::warn!("tables: {e}");
                        ops.clear();
                        since = None;
                    }
                    Err(e @ ApplyError::NotApplied { .. }) => {
                        local.not_applied += 1;
                        log::warn!("tables: {e}; retrying");
                    }
                }
            }
            self.refresh(&mut local);
        }
    }

    /// Copies the figures to the shared statistics.
    fn refresh(&self, local: &mut ControlStats) {
        let t = self.tables.published();
        local.mirror = self.mirror.counters().clone();
        local.publish = self.tables.stats();
        local.memory_bytes = self.tables.memory_bytes();
        local.routes4 = t.fib4().len();
        local.routes6 = t.fib6().len();
        local.next_hops = t.next_hops().len();
        local.failed_ops = t.failed_ops();
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = local.clone();
    }
}
