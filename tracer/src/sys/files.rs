//! Opening an output file that may be a named pipe (`--pcap FIFO` for a live tshark).
//! Opening a FIFO for writing waits until a reader opens it, which would hang the tracer
//! before it starts; here a FIFO without a reader is an error instead.

use std::{
    fs::{File, OpenOptions},
    io,
    os::{fd::AsRawFd, unix::fs::FileTypeExt, unix::fs::OpenOptionsExt},
    path::Path,
};

/// Creates (or truncates) `path` for writing; a named pipe is opened for writing only when a
/// reader has it open already (else [`io::ErrorKind::NotConnected`]).
pub fn create_output(path: &Path) -> io::Result<File> {
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if !is_fifo {
        return File::create(path);
    }
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => io::Error::new(
                io::ErrorKind::NotConnected,
                "a named pipe with no reader; start its reader first (tshark -i FILE, cat FILE...)",
            ),
            _ => e,
        })?;
    // Writes wait for the reader like on any pipe: clear the flag the open needed.
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns (through `file`), reading and setting
    // only its status flags; no memory is shared with the kernel.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}
