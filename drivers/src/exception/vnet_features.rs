//! The vhost-net feature set and virtio-net header size, chosen so that
//! none of the settings that lose frames silently can happen
//! (shared/reference/vmlab/vhost/REPORT.md, "features / header"):
//!
//! 1. **Header size.** With `VIRTIO_NET_F_MRG_RXBUF` or `VIRTIO_F_VERSION_1`
//!    acked, vhost-net expects a 12-byte header, and the TAP must be told
//!    (`TUNSETVNETHDRSZ(12)`), or RX loses every frame. Here the TAP is
//!    always given [`vnet_hdr_len`] of the very feature set acked.
//! 2. **Bit 27** (`VHOST_NET_F_VIRTIO_NET_HDR`, the same bit as
//!    `VIRTIO_F_ANY_LAYOUT`) makes vhost add and strip the header itself;
//!    with an `IFF_VNET_HDR` TAP, RX then loses every frame. [`negotiate`]
//!    acks only the bits in [`WANTED`], which does not hold it.
//! 3. **Small buffers without `MRG_RXBUF`.** A frame larger than one RX
//!    buffer is discarded without a counter. [`negotiate`] refuses a
//!    device that does not offer `MRG_RXBUF`, and our RX buffers are
//!    smaller than the largest frame, so it is always acked.
//!
//! Feature bits are from the virtio 1.2 specification (section 5.1.3 for
//! the net device, 6 for reserved bits) and include/uapi/linux/vhost.h.

/// `VIRTIO_NET_F_MRG_RXBUF` (virtio 1.2, 5.1.3): a frame may span several
/// RX buffers; the header's `num_buffers` says how many.
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// `VHOST_NET_F_VIRTIO_NET_HDR` (include/uapi/linux/vhost.h), the same
/// bit as `VIRTIO_F_ANY_LAYOUT`: vhost-net adds/strips the header itself.
pub const VHOST_NET_F_VIRTIO_NET_HDR: u64 = 1 << 27;
/// `VIRTIO_F_VERSION_1` (virtio 1.2, 6): little-endian, 12-byte header.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// What we ack, when offered: nothing else (no offloads, no event index,
/// no IOTLB: the rings and buffers are our own memory, mapped 1:1).
pub const WANTED: u64 = VIRTIO_NET_F_MRG_RXBUF | VIRTIO_F_VERSION_1;

/// `struct virtio_net_hdr` without `num_buffers` (virtio 1.2, 5.1.6):
/// the legacy size when neither MRG_RXBUF nor VERSION_1 is acked.
const HDR_LEN_LEGACY: usize = 10;
/// With `num_buffers` (`struct virtio_net_hdr_mrg_rxbuf`).
pub const HDR_LEN_MRG: usize = 12;
/// Offset of `num_buffers` in the 12-byte header.
pub const NUM_BUFFERS_OFFSET: usize = 10;

/// The device does not offer what we need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vhost-net offers features {offered:#x} without VIRTIO_NET_F_MRG_RXBUF (bit 15): frames larger than one receive buffer would be lost silently")]
pub struct FeatureError {
    /// What the device offered.
    pub offered: u64,
}

/// The features to ack, given what vhost-net offers.
pub fn negotiate(offered: u64) -> Result<u64, FeatureError> {
    if offered & VIRTIO_NET_F_MRG_RXBUF == 0 {
        return Err(FeatureError { offered });
    }
    Ok(offered & WANTED)
}

/// The virtio-net header length that goes with `acked` (what vhost-net
/// uses, drivers/vhost/net.c `vhost_net_set_features`), and so what the
/// TAP must be set to with TUNSETVNETHDRSZ.
pub fn vnet_hdr_len(acked: u64) -> usize {
    if acked & (VIRTIO_NET_F_MRG_RXBUF | VIRTIO_F_VERSION_1) != 0 {
        HDR_LEN_MRG
    } else {
        HDR_LEN_LEGACY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What 6.1's vhost-net offered in the lab (REPORT, Q3).
    const OFFERED_6_1: u64 = 0x3_3d00_8000;

    #[test]
    fn lab_kernel_offer() {
        let acked = negotiate(OFFERED_6_1).unwrap();
        assert_eq!(acked, VIRTIO_NET_F_MRG_RXBUF | VIRTIO_F_VERSION_1);
        assert_eq!(vnet_hdr_len(acked), 12);
    }

    #[test]
    fn no_mrg_rxbuf_is_refused() {
        let err = negotiate(OFFERED_6_1 & !VIRTIO_NET_F_MRG_RXBUF).unwrap_err();
        assert_eq!(err.offered, OFFERED_6_1 & !VIRTIO_NET_F_MRG_RXBUF);
        assert!(err.to_string().contains("MRG_RXBUF"));
    }

    #[test]
    fn header_length_follows_the_features() {
        assert_eq!(vnet_hdr_len(0), 10);
        assert_eq!(vnet_hdr_len(VIRTIO_F_VERSION_1), 12);
        assert_eq!(vnet_hdr_len(VIRTIO_NET_F_MRG_RXBUF), 12);
    }

    proptest! {
        /// Whatever is offered: bit 27 is never acked, nothing is acked
        /// that was not offered, MRG_RXBUF always is, and the header is
        /// then 12 bytes.
        #[test]
        fn never_a_silent_loss_setting(offered in any::<u64>()) {
            match negotiate(offered) {
                Ok(acked) => {
                    prop_assert_eq!(acked & VHOST_NET_F_VIRTIO_NET_HDR, 0);
                    prop_assert_eq!(acked & !offered, 0);
                    prop_assert!(acked & VIRTIO_NET_F_MRG_RXBUF != 0);
                    prop_assert_eq!(vnet_hdr_len(acked), 12);
                }
                Err(e) => prop_assert_eq!(offered & VIRTIO_NET_F_MRG_RXBUF, 0, "{}", e),
            }
        }
    }
}
