//! The `struct ifreq` system calls that configure the kernel side of an
//! exception interface: create or attach a TAP queue (TUNSETIFF, and its
//! virtio-net header size, TUNSETVNETHDRSZ), see whether it is still
//! attached (TUNGETIFF), set its
//! MAC (SIOCSIFHWADDR), MTU (SIOCSIFMTU) and administrative state
//! (SIOCGIFFLAGS/SIOCSIFFLAGS).
//!
//! `struct ifreq` is declared here rather than taken from `libc`, whose
//! Linux version wraps the payload in a union per field: the layout is a
//! fact of the Linux UAPI (include/uapi/linux/if.h): 16 bytes of name, then
//! a 24-byte union (on 64-bit targets the largest member is `struct ifmap`)
//! that holds a `short` of flags, an `int` MTU, or a `struct sockaddr`.

use crate::net::MacAddr;
use std::ffi::c_ulong;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// IFNAMSIZ (include/uapi/linux/if.h): names are at most 15 bytes + NUL.
pub const IFNAMSIZ: usize = 16;
/// ARPHRD_ETHER (include/uapi/linux/if_arp.h), the address family of an
/// Ethernet hardware address in SIOCSIFHWADDR.
const ARPHRD_ETHER: u16 = 1;

/// `struct ifreq` (include/uapi/linux/if.h), 40 bytes on x86_64 and
/// aarch64.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; IFNAMSIZ],
            data: [0; 24],
        };
        // The caller checked the name (is_valid_name): at most 15 bytes.
        let n = name.len().min(IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }

    /// Calls ioctl `req` on `fd` with this request.
    fn ioctl(&mut self, fd: BorrowedFd<'_>, req: c_ulong) -> io::Result<()> {
        // SAFETY: self is a live, writable `struct ifreq` of the size the
        // kernel expects for every request used here (TUNSETIFF, TUNGETIFF
        // and the SIOC[GS]IF* calls all take a `struct ifreq *`); the kernel reads
        // and writes only within it.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, self as *mut IfReq) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// What the kernel accepts as an interface name (net/core/dev.c,
/// dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':', NUL or
/// whitespace.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

/// Attach `fd` (an open /dev/net/tun) to the TAP `name` with `flags`
/// (IFF_TAP | IFF_NO_PI | ...), creating it if it does not exist.
pub fn tun_set_iff(fd: BorrowedFd<'_>, name: &str, flags: libc::c_int) -> io::Result<()> {
    let mut r = IfReq::new(name);
    // ifr_flags is a `short`; the IFF_* TUN flags all fit in 16 bits.
    r.data[..2].copy_from_slice(&(flags as u16).to_ne_bytes());
    r.ioctl(fd, libc::TUNSETIFF as c_ulong)
}

/// Whether the TAP queue `fd` is still attached to its interface. Deleting
/// a TAP (`ip link del`) detaches its queue file descriptors, which stay
/// open on nothing: TUNGETIFF on one then fails with EBADFD (the tun
/// driver's answer for a file with no interface,
/// Documentation/networking/tuntap.rst describes the attach/detach model).
pub fn tun_attached(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut r = IfReq::new("");
    match r.ioctl(fd, libc::TUNGETIFF as c_ulong) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Set the virtio-net header length of a TAP queue opened with
/// IFF_VNET_HDR (TUNSETVNETHDRSZ).
pub fn tun_set_vnet_hdr_sz(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let len = libc::c_int::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: TUNSETVNETHDRSZ reads one `int` through the pointer, which
    // points to `len`, alive across the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETVNETHDRSZ as _,
            &len as *const libc::c_int,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A datagram socket for the SIOC*IF* calls (any socket of the namespace
/// serves; the kernel looks the interface up by name).
pub fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant arguments; checked below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Set the interface's hardware address.
pub fn set_mac(sock: BorrowedFd<'_>, name: &str, mac: MacAddr) -> io::Result<()> {
    let mut r = IfReq::new(name);
    // struct sockaddr: sa_family (u16, host order), then sa_data.
    r.data[..2].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
    r.data[2..8].copy_from_slice(&mac.0);
    r.ioctl(sock, libc::SIOCSIFHWADDR as c_ulong)
}

/// Set the interface's MTU.
pub fn set_mtu(sock: BorrowedFd<'_>, name: &str, mtu: u32) -> io::Result<()> {
    let mut r = IfReq::new(name);
    let mtu = libc::c_int::try_from(mtu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    r.data[..4].copy_from_slice(&mtu.to_ne_bytes());
    r.ioctl(sock, libc::SIOCSIFMTU as c_ulong)
}

/// The interface's flags (IFF_UP, IFF_RUNNING, ...).
pub fn flags(sock: BorrowedFd<'_>, name: &str) -> io::Result<u16> {
    let mut r = IfReq::new(name);
    r.ioctl(sock, libc::SIOCGIFFLAGS as c_ulong)?;
    Ok(u16::from_ne_bytes([r.data[0], r.data[1]]))
}

/// Set or clear IFF_UP, keeping the other flags.
pub fn set_up(sock: BorrowedFd<'_>, name: &str, up: bool) -> io::Result<()> {
    let old = flags(sock, name)?;
    let up_flag = libc::IFF_UP as u16;
    let new = if up { old | up_flag } else { old & !up_flag };
    let mut r = IfReq::new(name);
    r.data[..2].copy_from_slice(&new.to_ne_bytes());
    r.ioctl(sock, libc::SIOCSIFFLAGS as c_ulong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_the_kernels_size() {
        // sizeof(struct ifreq) on 64-bit Linux.
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn names_the_kernel_would_refuse_are_refused() {
        for ok in ["fp0", "a", "port-15.x_y", "abcdefghijklmno"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "abcdefghijklmnop",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\0b",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn name_is_copied_nul_terminated() {
        let r = IfReq::new("abcdefghijklmno");
        assert_eq!(&r.name[..15], b"abcdefghijklmno");
        assert_eq!(r.name[15], 0);
    }
}
