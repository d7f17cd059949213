//! The router's tables as the workers see them: immutable snapshots,
//! published by the control thread, read without locks.
//!
//! [`left_right`] keeps two copies of a table and publishes each batch of
//! updates atomically through [`drivers::rcu`] (QSBR).

pub mod left_right;

pub use left_right::{
    Absorb, ApplyError, LeftRight, OfflineReader, PublishStats, Reader, ReaderInfo, Readers,
};
