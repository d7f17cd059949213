//! MSI-X vectors as eventfds (VFIO_USER_DEVICE_SET_IRQS).

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
};

/// One optional eventfd per vector; writing it makes QEMU deliver the
/// vector's MSI-X message (QEMU emulates the table, mask and PBA).
/// Shared (`Arc`) between the connection, which sets the fds, and the
/// device thread, which signals them.
#[derive(Debug, Default)]
pub struct MsixVectors {
    fds: Mutex<Vec<Option<File>>>,
    delivered: AtomicU64,
}

impl MsixVectors {
    /// Applies a SET_IRQS for the MSI-X index. With DATA_EVENTFD the fds
    /// replace vectors `start..start+count` (QEMU may send fewer fds than
    /// `count` while it enables MSI-X: those vectors get none); DATA_NONE
    /// with count 0 disables all vectors (VFIO semantics).
    pub fn set(&self, flags: u32, start: u32, count: u32, fds: Vec<File>) {
        if flags & VFIO_IRQ_SET_ACTION_TRIGGER == 0 {
            return;
        }
        let mut table = self.lock();
        if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
            table.clear();
            return;
        }
        if flags & VFIO_IRQ_SET_DATA_EVENTFD == 0 {
            return;
        }
        let (start, count) = (start as usize, count as usize);
        if table.len() < start + count {
            table.resize_with(start + count, || None);
        }
        let mut fds = fds.into_iter();
        for slot in &mut table[start..start + count] {
            *slot = fds.next();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<File>>> {
        self.fds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signals `vector`; false if it has no eventfd (not enabled by the
    /// guest) or the write failed.
    pub fn signal(&self, vector: u16) -> bool {
        let table = self.lock();
        let Some(Some(fd)) = table.get(vector as usize) else {
            return false;
        };
        let ok = (&*fd).write_all(&1u64.to_ne_bytes()).is_ok();
        // Relaxed: a statistic, read for the trace's last line.
        self.delivered.fetch_add(u64::from(ok), Ordering::Relaxed);
        ok
    }

    /// Vectors that have an eventfd.
    pub fn armed(&self) -> usize {
        self.lock().iter().filter(|f| f.is_some()).count()
    }

    /// Interrupts signalled so far.
    pub fn delivered(&self) -> u64 {
        // Relaxed: see `signal`.
        self.delivered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn vectors_follow_set_irqs_and_disable() {
        let (mut rx, tx) = std::io::pipe().unwrap();
        let fd = || File::from(std::os::fd::OwnedFd::from(tx.try_clone().unwrap()));
        let v = MsixVectors::default();
        let trigger = VFIO_IRQ_SET_ACTION_TRIGGER;
        // QEMU enabling MSI-X: vector 0 announced with no fd yet.
        v.set(trigger | VFIO_IRQ_SET_DATA_EVENTFD, 0, 1, Vec::new());
        assert!(!v.signal(0));
        v.set(trigger | VFIO_IRQ_SET_DATA_EVENTFD, 1, 2, vec![fd(), fd()]);
        assert_eq!(v.armed(), 2);
        assert!(v.signal(2));
        let mut ev = [0u8; 8];
        rx.read_exact(&mut ev).unwrap();
        assert_eq!(u64::from_ne_bytes(ev), 1);
        assert!(!v.signal(3), "past the table");
        v.set(trigger | VFIO_IRQ_SET_DATA_NONE, 0, 0, Vec::new());
        assert_eq!(v.armed(), 0);
        assert!(!v.signal(1));
        assert_eq!(v.delivered(), 1);
    }
}
