//! One result of `fastpath check`: OK, WARN or FAIL, what was found, and
//! for WARN and FAIL how to fix it.

use serde::Serialize;
use std::fmt;

/// How a finding affects a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Status {
    /// As it should be.
    #[serde(rename = "OK")]
    Ok,
    /// The fast path runs, but not as well as it could (or this is not a
    /// pod with SR-IOV VFs).
    #[serde(rename = "WARN")]
    Warn,
    /// The fast path will not start, or will not work, as configured.
    #[serde(rename = "FAIL")]
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: the text report aligns it with `{:<4}`.
        f.pad(match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// OK, WARN or FAIL.
    pub status: Status,
    /// A short name of what was checked (`cpuset`, `hugepages-2M`,
    /// `PCIDEVICE_INTEL_COM_SRIOV`, ...).
    pub name: String,
    /// What was found, with the figures.
    pub found: String,
    /// For WARN and FAIL: a command to run or a manifest field to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// An OK finding.
    pub fn ok(name: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding {
            status: Status::Ok,
            name: name.into(),
            found: found.into(),
            fix: None,
        }
    }

    /// A WARN finding with its fix.
    pub fn warn(
        name: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            status: Status::Warn,
            name: name.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    /// A FAIL finding with its fix.
    pub fn fail(
        name: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            status: Status::Fail,
            name: name.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

/// "FAIL cpuset  CPU 5 is outside ...", then "     fix: ..." on its own
/// line for WARN and FAIL.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {:<17} {}", self.status, self.name, self.found)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     fix: {fix}")?;
        }
        Ok(())
    }
}

/// The worst status among `findings` (`Ok` when there are none).
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_json() {
        let f = Finding::fail("cpuset", "CPU 5 is outside 0-3", "set FP_MASK=1-3");
        assert_eq!(
            f.to_string(),
            "FAIL cpuset            CPU 5 is outside 0-3\n     fix: set FP_MASK=1-3"
        );
        let ok = Finding::ok("caps", "IPC_LOCK NET_ADMIN");
        assert_eq!(ok.to_string(), "OK   caps              IPC_LOCK NET_ADMIN");
        assert_eq!(
            serde_json::to_string(&[&ok, &f]).unwrap(),
            r#"[{"status":"OK","name":"caps","found":"IPC_LOCK NET_ADMIN"},{"status":"FAIL","name":"cpuset","found":"CPU 5 is outside 0-3","fix":"set FP_MASK=1-3"}]"#
        );
        assert_eq!(worst(&[]), Status::Ok);
        assert_eq!(worst(&[ok.clone(), f]), Status::Fail);
        assert_eq!(worst(&[ok]), Status::Ok);
    }
}
