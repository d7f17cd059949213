//! The pipeline: where a packet is ([`Next`]), what the stages note about
//! it ([`Meta`]), and the driver that runs the stages over a burst and
//! sorts the packets into their ends ([`L3Out`]).
//!
//! The stages run one after another over the whole burst (as VPP's and
//! grout's nodes do), each taking the packets parked at its node and
//! saying, per packet, where each goes next. The graph has no cycle, so one
//! pass in the order below takes every packet to an end:
//!
//! ```text
//! eth_input ─┬─ ip4_input ── fib_lookup(4) ─┐
//!            └─ ip6_input ── fib_lookup(6) ─┴─ resolve ── ip_forward ── rewrite ── output
//! every stage: ─ punt(reason) │ drop(reason)
//! ```
//!
//! [`Pipeline::run`] first runs the fused common case
//! ([`fast_path`]: IPv4 to our MAC, forwarded, in two
//! tight passes), which takes most packets to their end and parks the
//! rest where the stages pick them up; the stages then run only if it
//! parked any. [`Pipeline::run_staged`] runs the stages alone: the
//! reference the fused path is tested against.

use super::next_hop::PortIndex;
use super::tables::Tables;
use super::{
    eth_input, fast_path, fib_lookup, ip4_input, ip6_input, ip_forward, output, resolve, rewrite,
};
use crate::counters::CoreSnapshot;
use crate::fib::NextHopId;
use crate::reasons::{DropReason, PuntReason};
use arrayvec::ArrayVec;
use drivers::burst::{Burst, MAX_BURST};
use drivers::mbuf::Mbuf;
use drivers::net::MacAddr;

/// Where a packet goes next: a stage, or one of the three ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ethernet input.
    EthInput,
    /// IPv4 header checks.
    Ip4Input,
    /// IPv6 header checks.
    Ip6Input,
    /// IPv4 FIB lookup.
    Lookup4,
    /// IPv6 FIB lookup.
    Lookup6,
    /// Next-hop resolution ([`Meta::next_hop`] set).
    Resolve,
    /// TTL or hop-limit decrement and MTU check ([`Meta::port`] and
    /// [`Meta::mac`] set).
    Forward,
    /// Ethernet address rewrite.
    Rewrite,
    /// End: sent on this port.
    Output(PortIndex),
    /// End: to the kernel.
    Punt(PuntReason),
    /// End: dropped.
    Drop(DropReason),
}

/// What the stages know about one packet of the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Where it goes next.
    pub next: Next,
    /// Offset of the IP header in the frame (set by Ethernet input).
    pub l3: u16,
    /// IPv6 rather than IPv4 (set by Ethernet input).
    pub v6: bool,
    /// Received as a link-layer broadcast or multicast (set by Ethernet
    /// input).
    pub l2_multicast: bool,
    /// The route's next hop (set by the FIB lookup).
    pub next_hop: NextHopId,
    /// Output port (set by resolution).
    pub port: PortIndex,
    /// Destination MAC (set by resolution).
    pub mac: MacAddr,
}

impl Meta {
    /// A packet as it enters the pipeline: at Ethernet input, nothing
    /// known yet.
    pub const START: Meta = Meta {
        next: Next::EthInput,
        l3: 0,
        v6: false,
        l2_multicast: false,
        next_hop: NextHopId(0),
        port: PortIndex(0),
        mac: MacAddr([0; 6]),
    };
}

/// What every stage sees: the tables and the port the burst came in on.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Routes, next hops, ports.
    pub tables: &'a Tables,
    /// The input port (from the RX binding, never from the buffer).
    pub in_port: PortIndex,
}

/// A packet the pipeline leaves for the kernel, with why (the worker
/// hands it on as an [`exception::Punted`](crate::exception::Punted)).
#[derive(Debug)]
pub struct L3Punt {
    /// The frame, as received (IPv4/IPv6 padding trimmed).
    pub mbuf: Mbuf,
    /// The port it came in on.
    pub in_port: PortIndex,
    /// Why.
    pub reason: PuntReason,
}

/// A burst's worth of punted packets.
pub type PuntBurst = ArrayVec<L3Punt, MAX_BURST>;

/// Where the driver puts packets at their ends. The caller sends the TX
/// buffers (see [`output`]), moves the punts to the exception ring
/// (counting them) and frees the drops (already counted).
#[derive(Debug)]
pub struct L3Out {
    /// Per output port, packets waiting to be sent.
    pub tx: Vec<Burst>,
    /// Packets for the kernel.
    pub punts: PuntBurst,
    /// Packets to free.
    pub drops: Burst,
}

impl L3Out {
    /// Buffers for `ports` output ports.
    pub fn new(ports: usize) -> Self {
        L3Out {
            tx: (0..ports).map(|_| Burst::new()).collect(),
            punts: PuntBurst::new(),
            drops: Burst::new(),
        }
    }
}

/// The per-worker pipeline state: one [`Meta`] per packet of a burst,
/// reused from burst to burst.
#[derive(Debug)]
pub struct Pipeline {
    meta: Box<[Meta; MAX_BURST]>,
    fast: Box<fast_path::Scratch>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// A pipeline for bursts of up to [`MAX_BURST`].
    pub fn new() -> Self {
        Pipeline {
            meta: Box::new([Meta::START; MAX_BURST]),
            fast: Box::default(),
        }
    }

    /// Routes `burst` (received on `ctx.in_port`) by the fused common
    /// case and, for what it leaves, the stages, leaving
    /// it empty: each packet is in `out` (a TX buffer, the punts or the
    /// drops); drops are counted in `c`, punts when they are handed on
    /// ([`super::L3Worker::route`]).
    pub fn run(&mut self, ctx: Ctx<'_>, burst: &mut Burst, out: &mut L3Out, c: &mut CoreSnapshot) {
        // A burst holds at most MAX_BURST packets, the length of `meta`.
        let n = burst.len().min(MAX_BURST);
        let meta = &mut self.meta[..n];
        let pkts = &mut burst[..n];
        // The common case fused (it writes every packet's `meta`); the
        // stages only when it left a packet at one of them.
        let fused = fast_path::run(ctx, pkts, meta, &mut self.fast);
        if fused.done < n {
            stages(ctx, pkts, meta);
        }
        // The whole burst to one port (a router's most common burst):
        // moved without looking at each packet's end.
        if let Some(buf) = fused.all_to.and_then(|p| out.tx.get_mut(p.index())) {
            if buf.remaining_capacity() >= burst.len() {
                buf.extend(burst.drain(..));
                return;
            }
        }
        ends(burst, meta, ctx.in_port, out, c);
    }

    /// [`Pipeline::run`] by the stages alone, without the fused common
    /// case: the reference the fused path is checked against, and the
    /// baseline its benchmark compares with.
    pub fn run_staged(
        &mut self,
        ctx: Ctx<'_>,
        burst: &mut Burst,
        out: &mut L3Out,
        c: &mut CoreSnapshot,
    ) {
        let n = burst.len().min(MAX_BURST);
        let meta = &mut self.meta[..n];
        meta.fill(Meta::START);
        stages(ctx, &mut burst[..n], meta);
        ends(burst, meta, ctx.in_port, out, c);
    }
}

/// Every stage, in the graph's order, over the packets parked at each.
fn stages(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    eth_input::run(ctx, pkts, meta);
    ip4_input::run(ctx, pkts, meta);
    ip6_input::run(ctx, pkts, meta);
    fib_lookup::run(ctx, pkts, meta);
    resolve::run(ctx, pkts, meta);
    ip_forward::run(ctx, pkts, meta);
    rewrite::run(ctx, pkts, meta);
}

/// Every packet of `burst` to its end, in burst order (so packets of one
/// flow leave in the order they came).
#[inline]
fn ends(
    burst: &mut Burst,
    meta: &[Meta],
    in_port: PortIndex,
    out: &mut L3Out,
    c: &mut CoreSnapshot,
) {
    for (m, meta) in burst.drain(..).zip(meta.iter()) {
        end(m, meta.next, in_port, out, c);
    }
}

/// Puts one packet at its end. A packet left at a stage would be a bug in
/// the stage order; it is dropped and counted rather than lost.
#[inline]
fn end(m: Mbuf, next: Next, in_port: PortIndex, out: &mut L3Out, c: &mut CoreSnapshot) {
    let drop = match next {
        Next::Output(port) => match output::buffer(out, port, m) {
            Ok(()) => return,
            Err((m, reason)) => (m, reason),
        },
        // Counted when handed to the exception ring (or dropped there).
        Next::Punt(reason) => match out.punts.try_push(L3Punt {
            mbuf: m,
            in_port,
            reason,
        }) {
            Ok(()) => return,
            Err(e) => (e.element().mbuf, DropReason::PuntRingFull),
        },
        Next::Drop(reason) => (m, reason),
        _ => (m, DropReason::Stalled),
    };
    let (m, reason) = drop;
    c.drops[reason as usize] += 1;
    // `drops` has room for a whole burst and is emptied after each.
    if let Err(e) = out.drops.try_push(m) {
        drop_now(e.element());
    }
}

/// Frees a buffer outside the worker's cache (back to its pool): only if
/// the caller left `drops` full, which the worker never does.
#[cold]
fn drop_now(m: Mbuf) {
    drop(m);
}
