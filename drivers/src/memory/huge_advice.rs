//! Transparent hugepages for large lookup tables on the ordinary heap.
//!
//! A table indexed at random (the FIB's 64 MiB first level) costs a TLB
//! miss per lookup on 4 KiB pages; on 2 MiB pages its 32 translations fit
//! the TLB. Where the kernel's transparent hugepages are in `madvise` mode
//! (the default of many distributions), a range gets them only if asked.

use std::io;

/// Asks the kernel to back the whole 4 KiB pages of `buf` with transparent
/// hugepages (`madvise(MADV_HUGEPAGE)`) when they are first touched, or
/// later by khugepaged. The contents do not change. Returns the bytes
/// advised (0 if `buf` spans no whole page). Fails where transparent
/// hugepages are unavailable (`EINVAL`); the memory then stays as it was.
pub fn advise_hugepages<T>(buf: &[T]) -> io::Result<usize> {
    const PAGE: usize = 4096;
    let start = buf.as_ptr() as usize;
    let end = start + size_of_val(buf);
    let first = start.next_multiple_of(PAGE);
    let last = end - end % PAGE;
    if last <= first {
        return Ok(0);
    }
    // SAFETY: [first, last) is page-aligned and lies inside `buf`, memory
    // this process owns and keeps mapped while borrowed. MADV_HUGEPAGE
    // only sets how the range is backed; it reads and writes no byte of it
    // and leaves its contents as they are.
    let rc = unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_HUGEPAGE,
        )
    };
    if rc == 0 {
        Ok(last - first)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advises_only_whole_pages_inside_the_buffer() {
        let v = vec![0u32; 4 << 20];
        match advise_hugepages(&v) {
            // At most the buffer, at least all but the two partial pages.
            Ok(n) => assert!(((16 << 20) - 8192..=16 << 20).contains(&n), "{n}"),
            // A kernel without transparent hugepages.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
        }
        assert!(v.iter().all(|&x| x == 0));
        assert_eq!(advise_hugepages(&[0u8; 16]).ok(), Some(0));
        assert_eq!(advise_hugepages::<u32>(&[]).ok(), Some(0));
    }
}
