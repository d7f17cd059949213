//! The igbvf mailbox: the shared VF mailbox transport
//! ([`crate::pmd::vf_mailbox`]) at the igbvf offsets (nic-facts-igbvf.md
//! C.2, C.5).

use super::regs::{V2PMAILBOX, VMBMEM};
use crate::pmd::vf_mailbox::{self, MbxLayout};

pub use crate::pmd::vf_mailbox::{LostContact, MbxError, MbxTiming};

/// igbvf's V2PMAILBOX / VMBMEM (C.2).
#[derive(Debug)]
pub struct IgbvfMbx;

impl MbxLayout for IgbvfMbx {
    const CTRL: u32 = V2PMAILBOX;
    const MEM: u32 = VMBMEM;
}

/// The igbvf VF mailbox.
pub type Mailbox = vf_mailbox::Mailbox<IgbvfMbx>;
