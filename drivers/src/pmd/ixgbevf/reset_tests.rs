//! The VF reset and handshake (A.6 steps 3-12) against the scripted PF:
//! the order of the register writes, no mailbox use while the reset
//! holds RSTI, the messages sent, and the failures.

use super::mailbox::*;
use super::regs::*;
use super::reset::*;
use super::scripted_pf::*;
use crate::pmd::vf_mailbox::MBX_RSTD;
use std::time::Duration;

fn quick() -> ResetTiming {
    ResetTiming {
        stop_settle: Duration::ZERO,
        reset_settle: Duration::ZERO,
        rst_polls: 20,
        rst_poll_delay: Duration::ZERO,
    }
}

fn reset_reply() -> Answer {
    Answer::Reply(vec![0x01 | SUCCESS, 0x3322_1102, 0x5544, 1])
}

#[test]
fn reset_runs_the_steps_in_the_documented_order() {
    let pf = ScriptedPf::new(vec![reset_reply(), ok(0x08, &[]), ok(0x09, &[2, 2, 0, 0])]);
    pf.set_reset_hold(Some(5));
    pf.preset(rxdctl(3), RXDCTL_ENABLE | RXDCTL_VME);
    let mut m = PfMailbox::new(fast());
    let id = reset_vf(&pf, &mut m, &quick()).unwrap();
    assert_eq!(
        id,
        VfIdentity {
            mac: Some(MAC),
            mc_filter_type: 1,
            api: ApiVersion::V1_3,
            queues: QueueInfo {
                tx: 2,
                rx: 2,
                tcs: 0,
                default_queue: 0
            },
        }
    );
    assert_eq!(
        pf.sent(),
        vec![vec![0x01], vec![0x08, 4, 0], vec![0x09, 0, 0, 0, 0]]
    );
    assert!(
        !pf.mailbox_during_reset(),
        "mailbox used before RSTI cleared"
    );

    let w = pf.writes();
    let at = |reg: u32, val: u32| {
        w.iter()
            .position(|&x| x == (reg, val))
            .unwrap_or_else(|| panic!("no write of {val:#x} to {reg:#x}"))
    };
    let rst = at(CTRL, CTRL_RST);
    // Step 3 first: interrupts masked.
    assert_eq!(w[0], (VTEIMC, 7));
    // Step 4 before the reset: every queue stopped, the enabled RX queue
    // keeps its other bits, PSRTYPE cleared.
    for q in 0..8 {
        assert!(at(txdctl(q), TXDCTL_SWFLSH) < rst);
    }
    assert!(at(rxdctl(3), RXDCTL_VME) < rst);
    assert!(at(PSRTYPE, 0) < rst);
    // Step 9 after it: the A.3 defaults on all eight queues.
    for q in 0..8 {
        assert!(at(srrctl(q), 0x402) > rst);
        assert!(at(tdwbal(q), 0) > rst);
        assert!(at(dca_rxctrl(q), 0xA200) > rst);
        assert!(at(dca_txctrl(q), 0x2A00) > rst);
    }
    // The RSTD the reset raised was consumed by the wait, not left for
    // the link check to take as a second reset.
    assert!(!m.take_pf_reset(&pf));
    pf.assert_clean();
}

#[test]
fn a_pf_that_stays_in_reset_fails_without_a_message() {
    let pf = ScriptedPf::default();
    pf.set_reset_hold(None);
    let mut m = PfMailbox::new(fast());
    assert_eq!(
        reset_vf(&pf, &mut m, &quick()),
        Err(ResetError::PfStillInReset { polls: 20 })
    );
    assert!(pf.sent().is_empty());
    pf.assert_clean();
}

#[test]
fn api_1_0_skips_get_queues_and_assumes_one_pair() {
    let mut script = vec![reset_reply()];
    script.extend([refused(0x08), refused(0x08), refused(0x08), ok(0x08, &[])]);
    let pf = ScriptedPf::new(script);
    pf.set_reset_hold(Some(1));
    let mut m = PfMailbox::new(fast());
    let id = reset_vf(&pf, &mut m, &quick()).unwrap();
    assert_eq!(id.api, ApiVersion::V1_0);
    assert_eq!((id.queues.tx, id.queues.rx), (1, 1));
    assert_eq!(pf.sent().len(), 5, "no GET_QUEUES under 1.0");
    pf.assert_clean();
}

#[test]
fn events_from_before_the_reset_are_forgotten_and_contact_restored() {
    let pf = ScriptedPf::new(vec![Answer::Silent]);
    pf.set_reset_hold(Some(2));
    let mut m = PfMailbox::new(fast());
    m.enable();
    // A timed-out request and a cached RSTD from before the reset.
    assert!(matches!(
        m.set_lpe(&pf, 1518),
        Err(IxMbxError::Timeout { .. })
    ));
    pf.raise(MBX_RSTD);
    assert!(m.transport().peek_bit(&pf, MBX_RSTD));
    assert!(m.lost_contact().is_some());
    pf.push(Answer::Reply(vec![0x01 | FAILURE, 0, 0, 0]));
    pf.push(ok(0x08, &[]));
    pf.push(ok(0x09, &[4, 4, 0, 1]));
    let id = reset_vf(&pf, &mut m, &quick()).unwrap();
    assert_eq!(id.mac, None, "FAILURE to VF_RESET: no admin MAC");
    assert_eq!(id.queues.default_queue, 1);
    assert_eq!(m.lost_contact(), None);
    assert!(!m.take_pf_reset(&pf));
    pf.assert_clean();
}
