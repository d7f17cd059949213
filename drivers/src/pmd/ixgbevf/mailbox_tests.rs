//! The ixgbevf mailbox protocol against the scripted PF
//! ([`super::scripted_pf`]). The expected words are written out from the
//! A.5.3 table, not computed by the code under test.

use super::mailbox::*;
use super::regs::VFMAILBOX;
use super::scripted_pf::*;
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::vf_mailbox::{MBX_R2C_BITS, MBX_RSTD, MBX_VFU};

/// A mailbox after VF_RESET (admin MAC, filter type 0) and negotiation
/// of `api`; the PF's record of those two exchanges is cleared.
fn up(pf: &ScriptedPf, api: ApiVersion) -> PfMailbox {
    let mut m = PfMailbox::new(fast());
    m.enable();
    pf.push(Answer::Reply(vec![0x01 | SUCCESS, 0x3322_1102, 0x5544, 0]));
    m.reset(pf).unwrap();
    for v in ApiVersion::OFFER {
        pf.push(if v == api {
            ok(0x08, &[])
        } else {
            refused(0x08)
        });
        if v == api {
            break;
        }
    }
    assert_eq!(m.negotiate_api(pf).unwrap(), api);
    pf.clear_sent();
    m
}

#[test]
fn reset_reply_without_cts_gives_the_mac_and_filter_type() {
    // The reply to VF_RESET has no CTS (A.5.3, A.5.4).
    let pf = ScriptedPf::new(vec![Answer::Reply(vec![
        0x0000_0001 | SUCCESS,
        0x3322_1102,
        0x0000_5544,
        2,
    ])]);
    let mut m = PfMailbox::new(fast());
    m.enable();
    let r = m.reset(&pf).unwrap();
    assert_eq!(r.mac, Some(MAC));
    assert_eq!(r.mc_filter_type, 2);
    assert_eq!(m.mc_filter_type(), 2);
    assert_eq!(m.api(), ApiVersion::V1_0);
    assert_eq!(m.lost_contact(), None);
    assert_eq!(pf.sent(), vec![vec![0x0000_0001]]);
    pf.assert_clean();
}

#[test]
fn reset_failure_means_no_admin_mac() {
    let pf = ScriptedPf::new(vec![Answer::Reply(vec![0x01 | FAILURE, 0, 0, 3])]);
    let mut m = PfMailbox::new(fast());
    m.enable();
    let r = m.reset(&pf).unwrap();
    assert_eq!(r.mac, None);
    assert_eq!(r.mc_filter_type, 3);
    // A FAILURE to VF_RESET is not a loss of CTS (A.5.3).
    assert_eq!(m.lost_contact(), None);
    pf.assert_clean();
}

#[test]
fn each_message_has_its_exact_words_and_length() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_3);
    let group = MacAddr([0x01, 0x00, 0x5e, 0x7f, 0x12, 0x34]);

    pf.push(ok(0x02, &[]));
    m.set_mac(&pf, MAC).unwrap();
    pf.push(ok(0x03, &[]));
    m.set_multicast(&pf, &[group, group, group]).unwrap();
    pf.push(ok(0x04, &[]));
    m.set_vlan(&pf, 100, true).unwrap();
    pf.push(ok(0x04, &[]));
    m.set_vlan(&pf, 4095, false).unwrap();
    pf.push(ok(0x05, &[]));
    m.set_lpe(&pf, 1518).unwrap();
    pf.push(ok(0x09, &[4, 4, 0, 0]));
    m.get_queues(&pf).unwrap();
    pf.push(ok(0x0C, &[2]));
    m.update_xcast_mode(&pf, XcastMode::AllMulti).unwrap();
    pf.push(ok(0x10, &[1]));
    m.get_link_state(&pf).unwrap();
    pf.push(ok(0x0A, &[0; 8]));
    m.get_reta(&pf).unwrap();
    pf.push(ok(0x0B, &[0; 10]));
    m.get_rss_key(&pf).unwrap();

    // Filter type 0 hashes address bits 47:36: 0x3412 >> 4 = 0x341.
    let mc = [0x0003_0003, 0x0341_0341, 0x0000_0341, 0, 0, 0, 0, 0];
    let expect: Vec<Vec<u32>> = vec![
        vec![0x02, 0x3322_1102, 0x0000_5544],
        [&mc[..], &[0; 8]].concat(),
        vec![0x0001_0004, 100],
        vec![0x0000_0004, 4095],
        vec![0x05, 1518],
        vec![0x09, 0, 0, 0, 0],
        vec![0x0C, 2],
        vec![0x10, 0],
        vec![0x0A],
        vec![0x0B],
    ];
    assert_eq!(pf.sent(), expect);
    assert_eq!(pf.sent()[1].len(), 16);
    pf.assert_clean();
}

#[test]
fn api_negotiation_falls_back_from_1_3_to_1_0() {
    let pf = ScriptedPf::new(vec![
        Answer::Reply(vec![0x01 | SUCCESS, 0, 0, 0]),
        refused(0x08),
        refused(0x08),
        refused(0x08),
        ok(0x08, &[]),
    ]);
    let mut m = PfMailbox::new(fast());
    m.enable();
    m.reset(&pf).unwrap();
    assert_eq!(m.negotiate_api(&pf).unwrap(), ApiVersion::V1_0);
    assert_eq!(m.api(), ApiVersion::V1_0);
    // The API enum puts 2.0 at 1: 1.3 = 4, 1.2 = 3, 1.1 = 2, 1.0 = 0.
    assert_eq!(
        pf.sent()[1..],
        [
            vec![0x08, 4, 0],
            vec![0x08, 3, 0],
            vec![0x08, 2, 0],
            vec![0x08, 0, 0],
        ]
    );
    // 1.0 has no GET_QUEUES: refused here, nothing sent.
    let before = pf.sent().len();
    assert!(matches!(
        m.get_queues(&pf),
        Err(IxMbxError::Unsupported {
            needs: ApiVersion::V1_1,
            have: ApiVersion::V1_0,
            ..
        })
    ));
    assert_eq!(pf.sent().len(), before);
    pf.assert_clean();
}

#[test]
fn negotiation_stops_at_the_first_accepted_version() {
    let pf = ScriptedPf::default();
    let m = up(&pf, ApiVersion::V1_2);
    assert_eq!(m.api(), ApiVersion::V1_2);
    pf.assert_clean();
}

#[test]
fn no_common_api_is_an_error() {
    let pf = ScriptedPf::new(vec![refused(0x08); 4]);
    let mut m = PfMailbox::new(fast());
    m.enable();
    assert_eq!(m.negotiate_api(&pf), Err(IxMbxError::NoCommonApi));
    assert_eq!(pf.sent().len(), 4);
    pf.assert_clean();
}

#[test]
fn a_refusal_with_cts_is_a_nack_without_cts_a_lost_cts() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_3);
    pf.push(refused(0x04));
    assert_eq!(
        m.set_vlan(&pf, 7, true),
        Err(IxMbxError::Nack {
            msg: "SET_VLAN",
            reply: 0x04 | FAILURE | CTS
        })
    );
    assert_eq!(m.lost_contact(), None);
    // The PF that revoked the VF answers FAILURE without CTS (A.5.4).
    pf.push(Answer::Reply(vec![0x05 | FAILURE]));
    assert_eq!(
        m.set_lpe(&pf, 9018),
        Err(IxMbxError::CtsLost {
            msg: "SET_LPE",
            word: 0x05 | FAILURE
        })
    );
    assert_eq!(m.lost_contact(), Some(LostContact::CtsLost(0x05 | FAILURE)));
    pf.assert_clean();
}

#[test]
fn a_silent_pf_times_out_and_the_mailbox_stays_off() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_1);
    pf.push(Answer::Silent);
    assert_eq!(
        m.set_lpe(&pf, 1518),
        Err(IxMbxError::Timeout {
            msg: "SET_LPE",
            waited_for: "PFACK"
        })
    );
    assert_eq!(m.lost_contact(), Some(LostContact::TimedOut));
    // Off until the next VF reset (A.8 #14): nothing more is sent.
    assert_eq!(
        m.set_lpe(&pf, 1518),
        Err(IxMbxError::Transport(MbxError::Disabled))
    );
    assert_eq!(pf.sent().len(), 1);
    pf.assert_clean();
}

#[test]
fn read_to_clear_bits_survive_the_read_that_returned_them() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_2);
    // One VFMAILBOX read returns PFSTS (a PF_CONTROL_MSG with CTS) and
    // RSTD together; reading the message must not lose the RSTD.
    let acks = pf.acks();
    pf.post(0x0100 | CTS);
    pf.raise(MBX_RSTD);
    assert_eq!(
        m.poll_event(&pf).unwrap(),
        Some(PfEvent::Control { cts: true })
    );
    assert_eq!(pf.acks(), acks + 1, "the message was read and ACKed");
    assert_eq!(
        pf.read32(VFMAILBOX) & MBX_R2C_BITS,
        0,
        "the hardware bits are spent"
    );
    assert!(m.take_pf_reset(&pf), "RSTD kept in the cache");
    assert!(!m.take_pf_reset(&pf), "and consumed once");
    assert_eq!(m.poll_event(&pf).unwrap(), None);
    pf.assert_clean();
}

#[test]
fn a_control_message_without_cts_revokes_the_vf() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_2);
    pf.post(0x0100);
    assert_eq!(
        m.poll_event(&pf).unwrap(),
        Some(PfEvent::Control { cts: false })
    );
    assert_eq!(m.lost_contact(), Some(LostContact::CtsLost(0x0100)));
    pf.assert_clean();
}

#[test]
fn a_pf_reset_mid_request_ends_the_wait_and_is_kept() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_1);
    // The PF acknowledges, then resets instead of replying.
    pf.push(Answer::AckThenReset);
    assert_eq!(m.get_queues(&pf), Err(IxMbxError::PfReset("GET_QUEUES")));
    // Not a timeout: the mailbox is still on, and the reset is still
    // there for the reset handling.
    assert_eq!(m.lost_contact(), None);
    // While RSTI holds, nothing is sent.
    assert_eq!(m.set_lpe(&pf, 1518), Err(IxMbxError::PfReset("SET_LPE")));
    assert_eq!(pf.sent().len(), 1);
    pf.end_reset();
    assert!(m.take_pf_reset(&pf), "RSTD kept in the cache");
    // After the reset the VF talks again: VF_RESET first.
    pf.push(Answer::Reply(vec![0x01 | SUCCESS, 0x3322_1102, 0x5544, 0]));
    assert_eq!(m.reset(&pf).unwrap().mac, Some(MAC));
    pf.assert_clean();
}

#[test]
fn a_reset_seen_before_sending_sends_nothing() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_3);
    pf.raise(MBX_RSTD);
    assert_eq!(
        m.set_mac(&pf, MAC),
        Err(IxMbxError::PfReset("SET_MAC_ADDR"))
    );
    assert!(pf.sent().is_empty());
    assert!(m.take_pf_reset(&pf));
    pf.assert_clean();
}

#[test]
fn get_queues_is_clamped_as_the_facts_say() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_1);
    pf.push(ok(0x09, &[2, 2, 1, 0]));
    assert_eq!(
        m.get_queues(&pf).unwrap(),
        QueueInfo {
            tx: 2,
            rx: 2,
            tcs: 1,
            default_queue: 0
        }
    );
    // 0 and > 8 become 8; more TCs than RX queues become 1; a default
    // queue not below the TX count becomes 0 (A.5.3).
    pf.push(ok(0x09, &[0, 9, 9, 8]));
    assert_eq!(
        m.get_queues(&pf).unwrap(),
        QueueInfo {
            tx: 8,
            rx: 8,
            tcs: 1,
            default_queue: 0
        }
    );
    pf.push(ok(0x09, &[4, 4, 4, 3]));
    assert_eq!(
        m.get_queues(&pf).unwrap(),
        QueueInfo {
            tx: 4,
            rx: 4,
            tcs: 4,
            default_queue: 3
        }
    );
    pf.assert_clean();
}

#[test]
fn xcast_mode_reports_what_the_pf_applied() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_2);
    // An untrusted VF gets MULTI at most (A.5.3).
    pf.push(ok(0x0C, &[1]));
    assert_eq!(
        m.update_xcast_mode(&pf, XcastMode::AllMulti).unwrap(),
        XcastMode::Multi
    );
    // PROMISC needs 1.3: refused locally.
    assert!(matches!(
        m.update_xcast_mode(&pf, XcastMode::Promisc),
        Err(IxMbxError::Unsupported {
            needs: ApiVersion::V1_3,
            ..
        })
    ));
    pf.push(ok(0x0C, &[7]));
    assert!(matches!(
        m.update_xcast_mode(&pf, XcastMode::Multi),
        Err(IxMbxError::Transport(MbxError::Unexpected { .. }))
    ));
    pf.assert_clean();
}

#[test]
fn reta_and_rss_key_are_decoded() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_2);
    // Entries 0..15 in word 1 as 0,1,2,3 repeating: 0b11_10_01_00 = 0xE4.
    let mut words = [0u32; 8];
    words[0] = 0xE4E4_E4E4;
    words[7] = 0xC000_0000; // entry 127 = 3
    pf.push(ok(0x0A, &words));
    let reta = m.get_reta(&pf).unwrap();
    assert_eq!(reta.0[..5], [0, 1, 2, 3, 0]);
    assert_eq!(reta.0[16..127], [0; 111]);
    assert_eq!(reta.0[127], 3);
    let key: Vec<u32> = (0..10).map(|i| 0x0403_0201 + 0x0404_0404 * i).collect();
    pf.push(ok(0x0B, &key));
    let k = m.get_rss_key(&pf).unwrap();
    let want: Vec<u8> = (1..=40).collect();
    assert_eq!(k[..], want[..]);
    pf.assert_clean();
}

#[test]
fn bad_arguments_are_refused_before_sending() {
    let pf = ScriptedPf::default();
    let mut m = up(&pf, ApiVersion::V1_3);
    let group = MacAddr([0x01, 0, 0x5e, 0, 0, 1]);
    assert!(matches!(
        m.set_multicast(&pf, &[group; 31]),
        Err(IxMbxError::BadArgument(_))
    ));
    assert!(matches!(
        m.set_vlan(&pf, 4096, true),
        Err(IxMbxError::BadArgument(_))
    ));
    assert!(matches!(
        m.set_mac(&pf, group),
        Err(IxMbxError::BadArgument(_))
    ));
    assert!(pf.sent().is_empty());
    // 30 fit.
    pf.push(ok(0x03, &[]));
    m.set_multicast(&pf, &[group; 30]).unwrap();
    assert_eq!(pf.sent()[0][0], 0x001E_0003);
    pf.assert_clean();
}

#[test]
fn multicast_hash_takes_the_bits_of_each_filter_type() {
    // Bytes 4, 5 = 0x12, 0x34: address bits 47:32 = 0x3412 (A.5.3).
    let mac = MacAddr([0x01, 0x00, 0x5e, 0x7f, 0x12, 0x34]);
    assert_eq!(mc_hash(mac, 0), 0x341); // bits 47:36
    assert_eq!(mc_hash(mac, 1), 0x682); // bits 46:35
    assert_eq!(mc_hash(mac, 2), 0xD04); // bits 45:34
    assert_eq!(mc_hash(mac, 3), 0x412); // bits 43:32
}

#[test]
fn the_buffer_is_written_only_under_the_lock() {
    // The scripted PF records any VFMBMEM write without VFU; every test's
    // assert_clean checks it. Here a PF that holds the buffer (never
    // grants VFU) makes the send fail before anything is written.
    struct Held(ScriptedPf);
    impl RegisterSpace for Held {
        fn read32(&self, o: u32) -> u32 {
            self.0.read32(o) & !MBX_VFU
        }
        fn write32(&self, o: u32, v: u32) {
            self.0.write32(o, v)
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    let held = Held(ScriptedPf::default());
    let mut m = PfMailbox::new(fast());
    m.enable();
    assert_eq!(
        m.set_lpe(&held, 1518),
        Err(IxMbxError::Transport(MbxError::Busy))
    );
    assert!(held.0.sent().is_empty());
    held.0.assert_clean();
}
