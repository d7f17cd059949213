//! The control socket's file: made mode 0600 in a directory made 0700 when
//! missing, never taken from a live daemon, cleared when stale, and
//! removed when the daemon stops.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Mode of the socket: the daemon's user (and root) only. Counters and
/// the configuration are not secrets, but a client can make the daemon
/// work, and a pod's other containers need not.
pub const SOCKET_MODE: u32 = 0o600;
/// Mode of a socket directory the daemon makes.
pub const DIR_MODE: u32 = 0o700;

/// Why the control socket could not be set up. Each message names the
/// fix.
#[derive(Debug, thiserror::Error)]
pub enum SocketFileError {
    /// Another daemon answers on the path.
    #[error(
        "--control-socket {0}: another fastpath is running and serving this socket; \
         stop it, or give this one another path with --control-socket (or none)"
    )]
    InUse(PathBuf),
    /// Something other than a socket is at the path.
    #[error(
        "--control-socket {0}: the path exists and is not a socket; \
         remove it or choose another path"
    )]
    NotASocket(PathBuf),
    /// The directory could not be made.
    #[error("--control-socket {path}: cannot create its directory {dir}: {source}")]
    Dir {
        /// The socket path.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A stale socket could not be removed, or the socket made.
    #[error("--control-socket {path}: {what}: {source} (check the directory's owner and mode, or choose another path)")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// The bound socket; its file is removed on drop, if it is still ours.
#[derive(Debug)]
pub struct SocketFile {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the file bound, so a socket another daemon put
    /// at the path since is left alone.
    id: (u64, u64),
}

impl SocketFile {
    /// Binds a Unix stream socket at `path` (see the module doc).
    pub fn bind(path: &Path) -> Result<SocketFile, SocketFileError> {
        let io_err = |what, source| SocketFileError::Io {
            path: path.to_owned(),
            what,
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(dir)
                    .map_err(|source| SocketFileError::Dir {
                        path: path.to_owned(),
                        dir: dir.to_owned(),
                        source,
                    })?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_socket() => {
                return Err(SocketFileError::NotASocket(path.to_owned()))
            }
            Ok(_) => match UnixStream::connect(path) {
                Ok(_) => return Err(SocketFileError::InUse(path.to_owned())),
                // Nobody listens: a daemon that died left it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    log::info!(
                        "control socket {}: removing a stale socket nobody listens on",
                        path.display()
                    );
                    std::fs::remove_file(path)
                        .map_err(|e| io_err("cannot remove the stale socket", e))?;
                }
                Err(e) => return Err(io_err("cannot check the socket already there", e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("cannot look at the path", e)),
        }
        let listener = UnixListener::bind(path).map_err(|e| match e.kind() {
            // Another daemon bound it between our look and our bind.
            io::ErrorKind::AddrInUse => SocketFileError::InUse(path.to_owned()),
            _ => io_err("cannot bind", e),
        })?;
        // Until this chmod the socket has the umask's mode; a client that
        // connects in that instant still meets a daemon that only answers
        // questions, and the directory we make is 0700.
        let made = std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .and_then(|()| std::fs::symlink_metadata(path));
        let meta = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(io_err("cannot set the socket's mode to 0600", e));
            }
        };
        Ok(SocketFile {
            listener,
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        })
    }

    /// The listener.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.id)
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_0600_in_a_0700_directory_and_removed_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/fastpath/fp.sock");
        let s = SocketFile::bind(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), SOCKET_MODE);
        assert_eq!(mode(path.parent().unwrap()), DIR_MODE);
        drop(s);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_is_refused_a_stale_one_replaced_a_file_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fp.sock");
        let live = UnixListener::bind(&path).unwrap();
        let e = SocketFile::bind(&path).unwrap_err();
        assert!(matches!(e, SocketFileError::InUse(_)), "{e}");
        assert!(e.to_string().contains("another fastpath is running"), "{e}");
        drop(live);
        // The file stays behind with nobody listening: stale.
        assert!(path.exists());
        let s = SocketFile::bind(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(s);
        std::fs::write(&path, "not a socket").unwrap();
        let e = SocketFile::bind(&path).unwrap_err();
        assert!(matches!(e, SocketFileError::NotASocket(_)), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }
}
