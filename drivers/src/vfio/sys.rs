//! The ioctl calls, each returning a real errno.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// An ioctl whose argument is a plain integer value.
pub(crate) fn ioctl_value(fd: &OwnedFd, request: u32, value: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: the VFIO ioctls called this way (GET_API_VERSION,
    // CHECK_EXTENSION, SET_IOMMU, DEVICE_RESET) read no memory from the
    // argument; the fd is open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, value) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An ioctl whose argument points to `arg`, which the kernel may read and
/// write (a `repr(C)` VFIO structure with its `argsz` set, or an int).
pub(crate) fn ioctl_ref<T>(fd: &OwnedFd, request: u32, arg: &mut T) -> io::Result<i32> {
    // SAFETY: arg is a valid, exclusively borrowed object whose layout is
    // the one the ioctl expects (repr(C) copies of linux/vfio.h, argsz set
    // to its size so the kernel never touches bytes past it).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An ioctl whose argument is a buffer that starts with a VFIO structure
/// (its `argsz` set to the buffer's size in bytes) and has room after it
/// for the capability chain the kernel appends.
pub(crate) fn ioctl_buf(fd: &OwnedFd, request: u32, buf: &mut [u64]) -> io::Result<i32> {
    // SAFETY: buf is valid and exclusively borrowed for its whole length;
    // the caller set argsz to at most its size in bytes, so the kernel
    // writes nothing past it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, buf.as_mut_ptr()) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// VFIO_GROUP_GET_DEVICE_FD: its argument is a NUL-terminated device name,
/// and it returns a new fd.
pub(crate) fn ioctl_get_device_fd(
    group: &OwnedFd,
    request: u32,
    name: &std::ffi::CStr,
) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid NUL-terminated string that the kernel only
    // reads; the group fd is open for the call.
    let rc = unsafe { libc::ioctl(group.as_raw_fd(), request as _, name.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the ioctl returns a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(rc) })
}
