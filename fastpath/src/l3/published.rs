//! How [`Tables`] are published to the workers: a left-right pair (see
//! [`crate::tables::left_right`]) whose operations are [`TableOp`]s. The
//! control thread applies each batch the [`RouterModel`] emits with
//! [`LeftRight::apply_within`]; each worker reads through its
//! [`TablesReader`], taking the tables once per burst and passing a
//! quiescent point once per loop.
//!
//! [`RouterModel`]: super::model::RouterModel
//! [`TablesReader`]: super::l3_worker::TablesReader

use super::next_hop::NextHop;
use super::tables::{TableOp, Tables};
use crate::tables::{Absorb, LeftRight};

/// The control thread's end: both copies of the tables.
pub type TablesPublisher = LeftRight<Tables, TableOp>;

impl Absorb<TableOp> for Tables {
    fn absorb(&mut self, op: &TableOp) {
        // `Tables::apply` is deterministic by contract: the op alone decides.
        self.apply(op);
    }

    /// The FIBs' own figures, plus the next-hop entries and the struct;
    /// an ECMP group's member list is counted at its inline size only.
    fn memory_bytes(&self) -> usize {
        self.fib4().memory_bytes()
            + self.fib6().memory_bytes()
            + self.next_hops().len() * std::mem::size_of::<Option<NextHop>>()
            + std::mem::size_of::<Tables>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::NextHopId;
    use crate::l3::{NextHop, PortConf, PortIndex};
    use drivers::net::MacAddr;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    /// A batch published through the pair reaches a reader at its next
    /// quiescent point, whole; the memory counts both copies.
    #[test]
    fn a_batch_reaches_a_reader_after_its_quiescent_point() {
        let mut lr = TablesPublisher::new(Tables::new());
        let mut r = lr.readers().register("worker 0");
        let one_copy = lr.published().memory_bytes();
        assert_eq!(lr.memory_bytes(), 2 * one_copy);
        let nh = NextHop::Resolved {
            port: PortIndex(0),
            mac: MacAddr::local(9),
        };
        let ops = [
            TableOp::SetPort {
                port: PortIndex(0),
                conf: PortConf {
                    mac: MacAddr::local(0),
                    mtu: 1500,
                },
            },
            TableOp::SetNextHop {
                id: NextHopId(0),
                next_hop: nh.clone(),
            },
            TableOp::AddRoute4 {
                prefix: "10.1.0.0/16".parse().unwrap(),
                next_hop: NextHopId(0),
            },
        ];
        // The reader has not passed a quiescent point: the old copy cannot
        // come back, but the batch is published.
        let e = lr.apply_within(&ops, Duration::from_millis(1)).unwrap_err();
        assert!(
            matches!(e, crate::tables::ApplyError::Lagging { .. }),
            "{e}"
        );
        assert_eq!(r.get().route4(Ipv4Addr::new(10, 1, 2, 3), 0), None);
        r.quiescent();
        assert_eq!(r.get().route4(Ipv4Addr::new(10, 1, 2, 3), 0), Some(&nh));
        assert!(r.get().port(PortIndex(0)).is_some());
        // The next batch waits for the previous grace period, now over.
        lr.apply_within(
            &[TableOp::DelRoute4 {
                prefix: "10.1.0.0/16".parse().unwrap(),
            }],
            Duration::from_millis(1),
        )
        .unwrap_err();
        r.quiescent();
        assert_eq!(r.get().route4(Ipv4Addr::new(10, 1, 2, 3), 0), None);
        assert_eq!(lr.stats().publications, 2);
    }
}
