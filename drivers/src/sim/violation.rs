//! Broken rules: named, cited, recorded, and fatal to the test.
//!
//! A device model never panics in its own thread: it records a
//! [`Violation`] (rule name, reference section, what happened) in the
//! [`Violations`] of its DMA space, and the test either expects it by name
//! ([`Violations::expect`]) or fails ([`Violations::assert_clean`], which
//! the sim device also runs when it is dropped).

use std::fmt;
use std::sync::Mutex;

/// A hardware or protocol rule a driver must keep, with the reference
/// section that states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Short kebab-case name, stable: tests match on it.
    pub name: &'static str,
    /// Where the rule is stated, e.g. "nic-facts-igbvf.md C.7.2".
    pub section: &'static str,
}

impl Rule {
    /// A rule.
    pub const fn new(name: &'static str, section: &'static str) -> Rule {
        Rule { name, section }
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What happened: registers, addresses, descriptor indices.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "violation: {} ({}): {}",
            self.rule.name, self.rule.section, self.detail
        )
    }
}

/// The violations seen in one DMA space (all its devices and pools).
#[derive(Debug, Default)]
pub struct Violations {
    seen: Mutex<Vec<Violation>>,
}

/// At most this many are kept (a broken driver in a loop would otherwise
/// fill memory); the rest are counted.
const KEEP: usize = 256;

impl Violations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Violation>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record one.
    pub fn record(&self, rule: Rule, detail: impl Into<String>) {
        let v = Violation {
            rule,
            detail: detail.into(),
        };
        log::debug!("{v}");
        let mut seen = self.lock();
        if seen.len() < KEEP {
            seen.push(v);
        }
    }

    /// How many are pending (not taken yet).
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Everything recorded and not taken yet.
    pub fn all(&self) -> Vec<Violation> {
        self.lock().clone()
    }

    /// True if a violation of the rule named `name` is pending.
    pub fn has(&self, name: &str) -> bool {
        self.lock().iter().any(|v| v.rule.name == name)
    }

    /// Take every pending violation.
    pub fn take(&self) -> Vec<Violation> {
        std::mem::take(&mut *self.lock())
    }

    /// Take the violations of rule `name`; panics (listing everything
    /// pending) if there is none. Returns them for further checks.
    #[track_caller]
    pub fn expect(&self, name: &str) -> Vec<Violation> {
        let mut seen = self.lock();
        let (hit, rest): (Vec<_>, Vec<_>) = seen.drain(..).partition(|v| v.rule.name == name);
        *seen = rest;
        if hit.is_empty() {
            let list = listing(&seen);
            drop(seen);
            panic!("expected a violation of {name}, got {list}");
        }
        hit
    }

    /// Panic with every pending violation, if there is any.
    #[track_caller]
    pub fn assert_clean(&self) {
        let seen = self.take();
        if !seen.is_empty() {
            panic!("{}", listing(&seen));
        }
    }
}

fn listing(v: &[Violation]) -> String {
    if v.is_empty() {
        return "no violation".to_string();
    }
    let mut s = format!("{} violation(s):", v.len());
    for x in v {
        s.push_str("\n  ");
        s.push_str(&x.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rule = Rule::new("enable-before-tail", "nic-facts-igbvf.md C.7.2");

    #[test]
    fn expect_takes_by_name_and_leaves_the_rest() {
        let v = Violations::default();
        v.record(R, "RDT(0) = 5 while disabled");
        v.record(Rule::new("other", "x"), "y");
        assert_eq!(
            v.expect("enable-before-tail")[0].to_string(),
            "violation: enable-before-tail (nic-facts-igbvf.md C.7.2): RDT(0) = 5 while disabled"
        );
        assert!(v.has("other"));
        let r = std::panic::catch_unwind(|| v.assert_clean());
        assert!(r.is_err());
        v.assert_clean();
    }

    #[test]
    #[should_panic(expected = "expected a violation of enable-before-tail")]
    fn expect_fails_without_it() {
        Violations::default().expect("enable-before-tail");
    }
}
