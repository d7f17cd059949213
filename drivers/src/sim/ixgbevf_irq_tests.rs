//! VTEITR interrupt throttling in the ixgbevf model (nic-facts.md A.3
//! EITR): first on [`Irq`] itself with made-up times, so every instant is
//! exact, then on a running model whose device thread must send a
//! held-back message on its own when the interval ends.

use super::ixgbevf::{
    Flavor, Irq, Ixgbevf, IxgbevfConfig, EITR_CNT_WDIS, VTEIAC, VTEIAM, VTEICR, VTEICS, VTEIMS,
    VTEITR0,
};
use super::{DeviceModel, Iommu, IrqSink};
use crate::mmio::RegisterSpace;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// VTEITR value of `counts` interval counts (bits 11:3).
fn eitr(counts: u32) -> u32 {
    counts << 3
}

/// Vector 0 unmasked, its cause auto-cleared (as the Linux VF driver sets
/// VTEIAC), throttled to `counts`·2.048 µs.
fn irq(counts: u32) -> Irq {
    let mut i = Irq {
        eiac: 1,
        ..Irq::default()
    };
    i.eims = 1;
    i.eitr[0] = eitr(counts) | EITR_CNT_WDIS;
    i
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn the_interval_is_bits_11_3_in_2048_ns_counts() {
    let mut i = Irq::default();
    // Linux's 20K-interrupts/s setting (IXGBE_20K_ITR = 200): 25 counts.
    i.eitr[0] = 200 | EITR_CNT_WDIS;
    assert_eq!(i.interval(0), Duration::from_nanos(25 * 2048));
    // The largest value, 0xFF8: 511 counts.
    i.eitr[1] = 0xFF8;
    assert_eq!(i.interval(1), Duration::from_nanos(511 * 2048));
    // Bits outside the field do not count.
    i.eitr[2] = 0x7 | 0x7FFF_F000;
    assert_eq!(i.interval(2), Duration::ZERO);
}

#[test]
fn a_steady_stream_of_causes_gets_at_most_one_message_per_interval() {
    let mut i = irq(50); // 102.4 µs
    let gap = i.interval(0);
    let t0 = Instant::now();
    let mut sends = Vec::new();
    // A cause every 10 µs for 10 ms; the device thread runs when a hold
    // ends (next_due) and at each cause.
    let mut t = t0;
    while t < t0 + Duration::from_millis(10) {
        let before = i.sent[0];
        if i.next_due().is_some_and(|d| d <= t) {
            i.release(t, t);
        }
        i.raise(1, t);
        if i.sent[0] != before {
            assert_eq!(i.sent[0], before + 1, "one message per step at most");
            sends.push(t);
        }
        t += us(10);
    }
    assert!(sends.len() > 10, "messages keep coming: {}", sends.len());
    for w in sends.windows(2) {
        assert!(
            w[1] - w[0] >= gap,
            "{:?} apart, interval {gap:?}",
            w[1] - w[0]
        );
        // And no longer than the interval plus one step: a held message
        // goes out as soon as the hold ends.
        assert!(w[1] - w[0] <= gap + us(10), "{:?} apart", w[1] - w[0]);
    }
    assert!(i.held_back[0] > 0, "causes waited for the interval");
}

#[test]
fn a_cause_during_the_hold_stays_pending_and_is_sent_when_it_ends() {
    let mut i = irq(100); // 204.8 µs
    let t0 = Instant::now();
    i.raise(1, t0);
    assert_eq!(i.sent[0], 1, "no hold yet: at once");
    assert_eq!(i.eicr, 0, "auto-cleared at the send");
    assert_eq!(i.next_due(), None, "nothing held back");
    i.raise(1, t0 + us(50));
    assert_eq!(i.sent[0], 1, "held");
    assert_eq!(i.eicr, 1, "pending in VTEICR meanwhile");
    let due = t0 + i.interval(0);
    assert_eq!(
        i.next_due(),
        Some(due),
        "the device thread wakes when the hold ends"
    );
    i.release(due - us(1), due - us(1));
    assert_eq!(i.sent[0], 1, "not before the interval");
    i.release(due, due);
    assert_eq!(i.sent[0], 2);
    assert_eq!(i.eicr, 0, "auto-clear applied at that send");
    assert_eq!(i.next_due(), None);
    // The send started a new hold.
    i.raise(1, due + us(1));
    assert_eq!(i.sent[0], 2);
    assert_eq!(i.next_due(), Some(due + i.interval(0)));
    // Several causes in one hold make one message.
    i.raise(1, due + us(2));
    i.raise(1, due + us(3));
    i.release(due + i.interval(0), due + i.interval(0));
    assert_eq!(i.sent[0], 3);
    assert_eq!(i.held_back[0], 2);
}

#[test]
fn a_cause_the_driver_clears_during_the_hold_sends_nothing() {
    let mut i = irq(100);
    let t0 = Instant::now();
    i.raise(1, t0);
    i.raise(1, t0 + us(10));
    i.eicr = 0; // the driver read VTEICR
    assert_eq!(i.next_due(), None);
    i.release(t0 + us(1000), t0 + us(1000));
    assert_eq!(i.sent[0], 1);
}

#[test]
fn a_masked_vector_sends_nothing_and_its_cause_stays_pending() {
    let mut i = irq(100);
    i.eims = 0;
    let t0 = Instant::now();
    for n in 0..10 {
        i.raise(1, t0 + us(100 * n));
        i.release(t0 + us(100 * n), t0 + us(100 * n));
    }
    assert_eq!(i.sent[0], 0);
    assert_eq!(i.eicr, 1, "pending");
    assert_eq!(i.next_due(), None, "nothing to wake for");
    // Unmasking sends it (no hold running).
    let t1 = t0 + us(1000);
    i.unmask(1, t1);
    assert_eq!(i.sent[0], 1);
    assert_eq!(i.eicr, 0);

    // Masked during a hold: the hold ends with nothing sent, the cause
    // stays pending, and unmasking sends it then.
    i.raise(1, t1 + us(10));
    i.eims = 0; // VTEIMC
    let end = t1 + i.interval(0);
    assert_eq!(i.next_due(), None, "masked: nothing due");
    i.release(end, end);
    assert_eq!(i.sent[0], 1);
    assert_eq!(i.eicr, 1);
    i.unmask(1, end + us(5));
    assert_eq!(i.sent[0], 2);
}

#[test]
fn unmasking_during_the_hold_waits_for_its_end() {
    let mut i = irq(100);
    let t0 = Instant::now();
    i.raise(1, t0);
    i.eims = 0;
    i.raise(1, t0 + us(10));
    i.unmask(1, t0 + us(20));
    assert_eq!(i.sent[0], 1, "still in the hold");
    let end = t0 + i.interval(0);
    assert_eq!(i.next_due(), Some(end));
    i.release(end, end);
    assert_eq!(i.sent[0], 2);
}

#[test]
fn vteiam_masks_the_vector_at_each_send() {
    let mut i = irq(100);
    i.eiam = 1;
    let t0 = Instant::now();
    i.raise(1, t0);
    assert_eq!(i.sent[0], 1);
    assert_eq!(i.eims, 0, "auto-masked");
    // Causes keep coming: pending, nothing sent, even past the interval.
    for n in 1..20 {
        let t = t0 + us(50 * n);
        i.release(t, t);
        i.raise(1, t);
    }
    assert_eq!(i.sent[0], 1);
    assert_eq!(i.eicr, 1);
    // The driver re-arms (VTEIMS) after the interval: sent, masked again.
    let t1 = t0 + us(1000);
    i.unmask(1, t1);
    assert_eq!(i.sent[0], 2);
    assert_eq!(i.eims, 0);
    // Re-armed within the hold: sent when the hold ends, with auto-mask.
    i.raise(1, t1 + us(1));
    i.unmask(1, t1 + us(2));
    assert_eq!(i.sent[0], 2);
    let end = t1 + i.interval(0);
    assert_eq!(i.next_due(), Some(end));
    i.release(end, end);
    assert_eq!(i.sent[0], 3);
    assert_eq!(i.eims, 0);
}

#[test]
fn interval_zero_is_unmoderated() {
    let mut i = irq(0);
    let t0 = Instant::now();
    for n in 0..100 {
        i.raise(1, t0 + Duration::from_nanos(n));
    }
    assert_eq!(i.sent[0], 100, "every cause sent at once");
    assert_eq!(i.held_back[0], 0);
    assert_eq!(i.next_due(), None);
    assert_eq!(i.hold_until, [None; 3]);
}

#[test]
fn vectors_are_throttled_each_on_its_own() {
    let mut i = irq(100);
    i.eims = 0b11;
    i.eiac = 0b11;
    let t0 = Instant::now();
    i.raise(1, t0);
    // Vector 1 has no interval: its messages are not held by vector 0's.
    for n in 1..5 {
        i.raise(0b11, t0 + us(n));
    }
    assert_eq!(i.sent, [1, 4, 0]);
}

#[test]
fn a_write_without_cnt_wdis_ends_the_hold_at_once() {
    let mut i = irq(100);
    let t0 = Instant::now();
    i.raise(1, t0);
    i.raise(1, t0 + us(10));
    // With CNT_WDIS the running hold is kept (and the new interval counts
    // from the next message).
    i.write_eitr(0, eitr(10) | EITR_CNT_WDIS, t0 + us(20));
    assert_eq!(i.sent[0], 1);
    assert_eq!(i.next_due(), Some(t0 + Duration::from_nanos(100 * 2048)));
    // Without it the timer is cleared: the held message goes out now.
    i.write_eitr(0, eitr(10), t0 + us(30));
    assert_eq!(i.sent[0], 2);
    assert_eq!(i.next_due(), None);
    assert_eq!(i.hold_until[0], Some(t0 + us(30) + i.interval(0)));
}

/// The running model, with VTEICS as the cause: the device thread must
/// wake by itself for a held-back message (no flush here), and the
/// messages the sink gets over a steady stream fit the interval.
#[test]
fn the_device_thread_sends_held_back_messages_when_the_interval_ends() {
    let iommu = Iommu::new();
    let dev = Ixgbevf::start(IxgbevfConfig::new(Flavor::X82599, None), &iommu);
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    dev.with(|m, _| {
        m.set_irq_sink(IrqSink::new(move |v| {
            g.lock().unwrap().push((v, Instant::now()));
        }))
    });
    let bar = dev.bar();
    // The largest interval, 511 counts: 1.0465 ms.
    bar.write32(VTEITR0, 0xFF8 | EITR_CNT_WDIS);
    bar.write32(VTEIAC, 1);
    bar.write32(VTEIAM, 0);
    bar.write32(VTEIMS, 1);
    let gap = Duration::from_nanos(511 * 2048);

    let start = Instant::now();
    bar.write32(VTEICS, 1);
    bar.write32(VTEICS, 1);
    // The model's own next_due (what the device thread sleeps until)
    // includes the hold's end.
    let (held_until, model_due) = dev.with(|m, _| (m.irq.next_due(), m.next_due()));
    if let Some(d) = held_until {
        assert!(
            model_due.is_some_and(|m| m <= d),
            "{model_due:?} after {d:?}"
        );
    }
    assert_eq!(dev.irq().sent[0], 1, "the second cause is held");
    let deadline = start + Duration::from_secs(10);
    while dev.irq().sent[0] < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(100));
    }
    assert_eq!(dev.irq().sent[0], 2, "sent when the hold ended, unprompted");
    assert!(start.elapsed() >= gap, "not before the interval");
    assert_eq!(bar.read32(VTEICR) & 1, 0, "auto-cleared at that send");

    // A steady stream for 30 intervals: at most one message per interval
    // (counted over the whole window, which no scheduling delay can make
    // fail), and the stream's last cause still gets its message.
    while dev.irq().next_due().is_some() {
        std::thread::sleep(Duration::from_micros(100));
    }
    let first = dev.irq().sent[0];
    let from = Instant::now();
    while from.elapsed() < gap * 30 {
        bar.write32(VTEICS, 1);
        std::thread::sleep(Duration::from_micros(20));
    }
    while dev.irq().next_due().is_some() && from.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_micros(100));
    }
    let window = from.elapsed();
    let n = dev.irq().sent[0] - first;
    let most = (window.as_nanos() / gap.as_nanos()) as u64 + 1;
    assert!(n <= most, "{n} messages in {window:?}, at most {most}");
    assert!(n >= 2, "messages kept coming: {n}");
    assert!(dev.irq().held_back[0] > 0);
    assert_eq!(bar.read32(VTEICR) & 1, 0, "the last cause was sent");
    let got = got.lock().unwrap();
    assert_eq!(
        got.len() as u64,
        dev.irq().sent[0],
        "each message reached the sink"
    );
    assert!(got.iter().all(|&(v, _)| v == 0));
}
