//! The UNIX control socket, as conntrackd 1.4.7 speaks it (`src/local.c`): the client
//! connects to `UNIX { Path }`, sends its request as one native-endian `int`, and prints
//! everything the daemon writes back until the daemon closes the connection. There is no
//! status in the protocol: the client exits 0 once it could connect and send.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Sends one request (`None`: 1.4.7's "no action", -1) and copies the reply to `out`.
///
/// # Errors
/// When the daemon cannot be reached or the request cannot be sent (1.4.7's "can't
/// connect"); errors while reading the reply end it quietly, as in 1.4.7.
pub fn request(
    path: &Path,
    action: Option<crate::action::Action>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut s = UnixStream::connect(path)?;
    let code = action.map_or(-1, |a| a.code());
    s.write_all(&code.to_ne_bytes())?;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // 1.4.7 prints each chunk as a C string: a NUL ends what is shown of it.
                let chunk = &buf[..n];
                let shown = chunk.split(|b| *b == 0).next().unwrap_or(chunk);
                out.write_all(shown)?;
            }
        }
    }
    out.flush()
}

/// Creates the listening socket as 1.4.7 does: any stale file at `path` is removed first.
///
/// # Errors
/// When the socket cannot be bound (1.4.7 then logs "can't open unix socket!").
pub fn listen(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Reads a client's request: `Ok(None)` when it closed before sending four bytes.
///
/// # Errors
/// I/O errors of the read.
pub fn read_request(s: &mut UnixStream) -> io::Result<Option<i32>> {
    let mut b = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match s.read(&mut b[got..]) {
            Ok(0) => return Ok(None),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(i32::from_ne_bytes(b)))
}
