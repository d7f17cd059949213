//! `lat-bench`'s parts: the forwarder between two ring ports with a
//! source and a sink at their far ends ([`rig`]), the paced source and
//! the sink ([`traffic`], [`pacing`]), where every packet went
//! ([`tally`]), and the lines printed ([`report`]).

pub mod pacing;
pub mod report;
pub mod rig;
pub mod tally;
pub mod traffic;
