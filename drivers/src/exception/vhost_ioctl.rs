//! The vhost-net control calls (include/uapi/linux/vhost.h and
//! vhost_types.h): owner, features, memory table, vring setup, backend.
//! Request numbers are built the way `_IOW`/`_IOR` build them
//! (include/uapi/asm-generic/ioctl.h: direction in bits 30-31, argument
//! size in bits 16-29, type in 8-15, number in 0-7).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `VHOST_VIRTIO`, the ioctl type of vhost.
const VHOST_VIRTIO: u64 = 0xAF;
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (VHOST_VIRTIO << 8) | nr
}

/// `struct vhost_vring_state`.
#[repr(C)]
struct VringState {
    index: u32,
    num: u32,
}

/// `struct vhost_vring_file`.
#[repr(C)]
struct VringFile {
    index: u32,
    fd: i32,
}

/// `struct vhost_vring_addr`.
#[repr(C)]
struct VringAddr {
    index: u32,
    flags: u32,
    desc_user_addr: u64,
    used_user_addr: u64,
    avail_user_addr: u64,
    log_guest_addr: u64,
}

/// `struct vhost_memory` with exactly one `struct vhost_memory_region`.
#[repr(C)]
struct MemoryOne {
    nregions: u32,
    padding: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
    flags_padding: u64,
}

const GET_FEATURES: u64 = ioc(IOC_READ, 0x00, 8);
const SET_FEATURES: u64 = ioc(IOC_WRITE, 0x00, 8);
const SET_OWNER: u64 = ioc(0, 0x01, 0);
/// The size is that of the header (`struct vhost_memory` without regions).
const SET_MEM_TABLE: u64 = ioc(IOC_WRITE, 0x03, 8);
const SET_VRING_NUM: u64 = ioc(IOC_WRITE, 0x10, std::mem::size_of::<VringState>());
const SET_VRING_ADDR: u64 = ioc(IOC_WRITE, 0x11, std::mem::size_of::<VringAddr>());
const SET_VRING_BASE: u64 = ioc(IOC_WRITE, 0x12, std::mem::size_of::<VringState>());
const SET_VRING_KICK: u64 = ioc(IOC_WRITE, 0x20, std::mem::size_of::<VringFile>());
const SET_VRING_CALL: u64 = ioc(IOC_WRITE, 0x21, std::mem::size_of::<VringFile>());
/// `VHOST_SET_VRING_ERR`: "Set eventfd to signal an error"
/// (include/uapi/linux/vhost.h): the device's worker signals it when it
/// cannot use the virtqueue (a descriptor or ring it cannot read).
const SET_VRING_ERR: u64 = ioc(IOC_WRITE, 0x22, std::mem::size_of::<VringFile>());
const NET_SET_BACKEND: u64 = ioc(IOC_WRITE, 0x30, std::mem::size_of::<VringFile>());

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// ioctl `req` with a pointer to `arg`, which the kernel reads or fills.
fn ioctl_ptr<T>(fd: BorrowedFd<'_>, req: u64, arg: &mut T) -> io::Result<()> {
    // SAFETY: arg is a live, writable value of the `#[repr(C)]` type the
    // request is defined with (its size is encoded in `req`), so the
    // kernel reads and writes only within it.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) })
}

/// `VHOST_SET_OWNER`: bind the device to this process (its memory map
/// is where the rings and buffers are).
pub fn set_owner(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a request without argument.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), SET_OWNER as _) })
}

/// `VHOST_GET_FEATURES`.
pub fn features(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut f = 0u64;
    ioctl_ptr(fd, GET_FEATURES, &mut f)?;
    Ok(f)
}

/// `VHOST_SET_FEATURES`.
pub fn set_features(fd: BorrowedFd<'_>, mut f: u64) -> io::Result<()> {
    ioctl_ptr(fd, SET_FEATURES, &mut f)
}

/// `VHOST_SET_MEM_TABLE` with one region at `addr` of `len` bytes, its
/// "guest physical" address being its virtual address (descriptors hold
/// our own pointers).
pub fn set_mem_one(fd: BorrowedFd<'_>, addr: u64, len: u64) -> io::Result<()> {
    let mut m = MemoryOne {
        nregions: 1,
        padding: 0,
        guest_phys_addr: addr,
        memory_size: len,
        userspace_addr: addr,
        flags_padding: 0,
    };
    ioctl_ptr(fd, SET_MEM_TABLE, &mut m)
}

/// Addresses of one split virtqueue.
#[derive(Debug, Clone, Copy)]
pub struct VringAddrs {
    /// Descriptor table.
    pub desc: u64,
    /// Available ring.
    pub avail: u64,
    /// Used ring.
    pub used: u64,
}

/// The eventfds of one virtqueue.
#[derive(Debug, Clone, Copy)]
pub struct VringFds {
    /// We signal it after publishing.
    pub kick: RawFd,
    /// The device signals it after using (never read: rings are polled).
    pub call: RawFd,
    /// The device signals it on an error.
    pub err: RawFd,
}

/// `VHOST_SET_VRING_NUM`, `_BASE` (0), `_ADDR`, `_KICK`, `_CALL` and
/// `_ERR` for virtqueue `index`.
pub fn set_vring(
    fd: BorrowedFd<'_>,
    index: u32,
    num: u32,
    addrs: VringAddrs,
    fds: VringFds,
) -> io::Result<()> {
    ioctl_ptr(fd, SET_VRING_NUM, &mut VringState { index, num })?;
    ioctl_ptr(fd, SET_VRING_BASE, &mut VringState { index, num: 0 })?;
    ioctl_ptr(
        fd,
        SET_VRING_ADDR,
        &mut VringAddr {
            index,
            flags: 0,
            desc_user_addr: addrs.desc,
            used_user_addr: addrs.used,
            avail_user_addr: addrs.avail,
            log_guest_addr: 0,
        },
    )?;
    ioctl_ptr(
        fd,
        SET_VRING_KICK,
        &mut VringFile {
            index,
            fd: fds.kick,
        },
    )?;
    ioctl_ptr(
        fd,
        SET_VRING_CALL,
        &mut VringFile {
            index,
            fd: fds.call,
        },
    )?;
    ioctl_ptr(fd, SET_VRING_ERR, &mut VringFile { index, fd: fds.err })
}

/// `VHOST_NET_SET_BACKEND`: attach virtqueue `index` to the TAP queue
/// `tap` (-1 detaches).
pub fn set_backend(fd: BorrowedFd<'_>, index: u32, tap: RawFd) -> io::Result<()> {
    ioctl_ptr(fd, NET_SET_BACKEND, &mut VringFile { index, fd: tap })
}

/// A non-blocking eventfd (kick or call).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call; the result is checked.
    let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Signal an eventfd (a kick). A full counter (EAGAIN) still means
/// "signalled", so the result is not needed.
pub fn signal(fd: BorrowedFd<'_>) {
    let one = 1u64;
    // SAFETY: writes the 8 bytes of `one`, which lives across the call.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// How many times a non-blocking eventfd was signalled since the last
/// call (reading resets it; eventfd(2)): 0 if it was not.
pub fn take_count(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut n = 0u64;
    // SAFETY: reads at most 8 bytes into `n`, which lives across the call.
    let rc = unsafe { libc::read(fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(0),
            _ => Err(e),
        };
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// An error eventfd reads as the number of signals, then 0.
    #[test]
    fn error_counts_are_taken() {
        let e = eventfd().unwrap();
        assert_eq!(take_count(e.as_fd()).unwrap(), 0);
        signal(e.as_fd());
        signal(e.as_fd());
        assert_eq!(take_count(e.as_fd()).unwrap(), 2);
        assert_eq!(take_count(e.as_fd()).unwrap(), 0);
    }

    /// The request numbers as <linux/vhost.h> spells them on x86_64.
    #[test]
    fn request_numbers() {
        assert_eq!(GET_FEATURES, 0x8008_af00);
        assert_eq!(SET_FEATURES, 0x4008_af00);
        assert_eq!(SET_OWNER, 0x0000_af01);
        assert_eq!(SET_MEM_TABLE, 0x4008_af03);
        assert_eq!(SET_VRING_NUM, 0x4008_af10);
        assert_eq!(SET_VRING_ADDR, 0x4028_af11);
        assert_eq!(SET_VRING_BASE, 0x4008_af12);
        assert_eq!(SET_VRING_KICK, 0x4008_af20);
        assert_eq!(SET_VRING_CALL, 0x4008_af21);
        assert_eq!(SET_VRING_ERR, 0x4008_af22);
        assert_eq!(NET_SET_BACKEND, 0x4008_af30);
        assert_eq!(std::mem::size_of::<MemoryOne>(), 8 + 32);
    }
}
