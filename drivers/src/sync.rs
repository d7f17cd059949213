//! The atomics and cells used by lock-free code, swappable for loom's.
//!
//! Built with `RUSTFLAGS="--cfg loom"`, the lock-free structures run under the
//! loom model checker, which explores every interleaving the memory model
//! allows. Only code that must be model checked (the [`crate::ring`] and
//! [`crate::rcu`]) goes through this module.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Arc, Mutex, MutexGuard};

/// Back off inside a spin-wait. Under loom this yields, so the model checker
/// can schedule the thread being waited for.
#[inline(always)]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// An `UnsafeCell` with loom's closure-based access API in both builds, so
/// the ring's code is the same under the model checker and in production.
#[derive(Debug)]
pub struct UnsafeCell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// Wrap a value.
    pub fn new(v: T) -> Self {
        #[cfg(loom)]
        return Self(loom::cell::UnsafeCell::new(v));
        #[cfg(not(loom))]
        Self(std::cell::UnsafeCell::new(v))
    }

    /// Run `f` with a raw pointer for writing. The caller upholds the
    /// exclusivity that loom checks in model runs.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with_mut(f);
        #[cfg(not(loom))]
        f(self.0.get())
    }

    /// Run `f` with a raw pointer for reading.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with(f);
        #[cfg(not(loom))]
        f(self.0.get())
    }
}
