//! Simulated VF ports (`--ports sim:ixgbevf,sim:iavf`): every one of a
//! run is a VF of one modelled PF, in one DMA space where the pool is
//! mapped (`drivers::sim::vf_port`), and the rules the models saw broken
//! are part of the run's audit.
//!
//! Built with the `sim` feature (on by default). Without it a `sim:` port
//! is a start-up error that says so, and this is the one file that knows.

use config::port_spec::SimModel;
use drivers::pmd::VfConfig;
use drivers::pool::Pool;
use drivers::port::{DynPort, XStat};
use serde::Serialize;
use std::sync::Arc;

/// A rule a device model saw the driver break (the model's words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelViolation {
    /// The rule's short name ("enable-before-tail").
    pub rule: &'static str,
    /// Where the rule is stated (a section of docs/facts).
    pub section: &'static str,
    /// What happened.
    pub detail: String,
}

impl std::fmt::Display for ModelViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.rule, self.section, self.detail)
    }
}

/// Why a simulated port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SimPortError {
    /// This binary was built without the `sim` feature.
    #[error(
        "port {port} ({spec}) is a simulated VF, and this fastpath was built without them \
         (cargo feature `sim`, on by default: rebuild without --no-default-features)"
    )]
    NotBuilt {
        /// Port index.
        port: usize,
        /// The spec.
        spec: String,
    },
    /// The model or our driver on it failed.
    #[cfg(feature = "sim")]
    #[error("port {port}: {source}")]
    Open {
        /// Port index.
        port: usize,
        /// Why.
        source: drivers::sim::vf_port::SimPortError,
    },
}

#[cfg(feature = "sim")]
mod built {
    use super::*;
    use config::port_spec::{IavfModel, IxgbevfModel};
    use drivers::memory::DmaMapper;
    use drivers::sim::iavf::Flavor as IavfFlavor;
    use drivers::sim::ixgbevf::Flavor as IxgbevfFlavor;
    use drivers::sim::vf_port::{SimSpace, VfModel};

    /// The driver crate's model for a spec's.
    fn vf_model(model: SimModel) -> VfModel {
        match model {
            SimModel::Ixgbevf(m) => VfModel::Ixgbevf(match m {
                IxgbevfModel::X82599 => IxgbevfFlavor::X82599,
                IxgbevfModel::X540 => IxgbevfFlavor::X540,
                IxgbevfModel::X550 => IxgbevfFlavor::X550,
                IxgbevfModel::X550EmX => IxgbevfFlavor::X550EmX,
            }),
            SimModel::Iavf(m) => VfModel::Iavf(match m {
                IavfModel::Xl710 => IavfFlavor::Xl710,
                IavfModel::Avf => IavfFlavor::Adaptive,
            }),
        }
    }

    /// The simulated ports' DMA space and PF, made when first needed:
    /// a model's DMA space watches every buffer hand-off of every pool
    /// (`drivers::pool::watch`), which a run without simulated ports must
    /// not pay for.
    #[derive(Debug)]
    pub struct SimPorts(Option<SimSpace>);

    impl SimPorts {
        /// No space yet.
        pub fn new() -> SimPorts {
            SimPorts(None)
        }

        fn space(&mut self) -> &mut SimSpace {
            self.0.get_or_insert_with(SimSpace::new)
        }

        /// Where the pool is mapped (the space is made here).
        pub fn mapper(&mut self) -> Option<Arc<dyn DmaMapper>> {
            Some(self.space().mapper())
        }

        /// Open port `port` as the next VF of the PF.
        pub fn open(
            &mut self,
            port: usize,
            model: SimModel,
            cfg: &VfConfig,
            pool: &Pool,
        ) -> Result<DynPort, SimPortError> {
            self.space()
                .open(vf_model(model), cfg, pool)
                .map_err(|source| SimPortError::Open { port, source })
        }

        /// The space, once a simulated port was opened (its PF's switch
        /// takes a wire: `SimSpace::start_wire`).
        pub fn opened_space(&self) -> Option<&SimSpace> {
            self.0.as_ref()
        }

        /// Violations recorded and not taken yet.
        pub fn pending_violations(&self) -> usize {
            self.0.as_ref().map_or(0, SimSpace::pending_violations)
        }

        /// The modelled PF switch's own counters (none without simulated
        /// ports).
        pub fn switch_xstats(&self) -> Vec<XStat> {
            self.0
                .as_ref()
                .map_or_else(Vec::new, SimSpace::switch_xstats)
        }

        /// Take every violation recorded so far.
        pub fn take_violations(&self) -> Vec<ModelViolation> {
            self.0
                .as_ref()
                .map_or_else(Vec::new, SimSpace::take_violations)
                .into_iter()
                .map(|v| ModelViolation {
                    rule: v.rule.name,
                    section: v.rule.section,
                    detail: v.detail,
                })
                .collect()
        }
    }
}

#[cfg(not(feature = "sim"))]
mod built {
    use super::*;
    use drivers::memory::DmaMapper;

    /// Simulated ports are not built in: opening one is an error.
    #[derive(Debug)]
    pub struct SimPorts;

    impl SimPorts {
        /// Nothing to set up.
        pub fn new() -> SimPorts {
            SimPorts
        }

        /// No DMA space.
        pub fn mapper(&mut self) -> Option<Arc<dyn DmaMapper>> {
            None
        }

        /// Always [`SimPortError::NotBuilt`].
        pub fn open(
            &mut self,
            port: usize,
            model: SimModel,
            _cfg: &VfConfig,
            _pool: &Pool,
        ) -> Result<DynPort, SimPortError> {
            Err(SimPortError::NotBuilt {
                port,
                spec: config::port_spec::PortSpec::Sim(model).to_string(),
            })
        }

        /// None.
        pub fn pending_violations(&self) -> usize {
            0
        }

        /// No switch.
        pub fn switch_xstats(&self) -> Vec<XStat> {
            Vec::new()
        }

        /// None.
        pub fn take_violations(&self) -> Vec<ModelViolation> {
            Vec::new()
        }
    }
}

pub use built::SimPorts;

impl Default for SimPorts {
    fn default() -> Self {
        SimPorts::new()
    }
}
