// SPDX-License-Identifier: MIT
//! Small secret files (a watch list's key, an MQTT broker's password): read under one rule, a
//! regular file that neither its group nor other users can write (they could swap it), with a
//! warning when every user can read it.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// Reads at most `max` bytes of the secret file `path` (wiped when dropped). `what` names it in
/// the warning ("key file", "password file"). The error of a file its group or other users can
/// write, or of one that is not a regular file, says why and how to fix it; other errors are those
/// of opening and reading it (`NotFound` for a missing file).
pub fn read_secret_file(
    path: &Path,
    what: &str,
    max: u64,
) -> io::Result<(Zeroizing<String>, Option<String>)> {
    // O_NONBLOCK: a FIFO planted in the key's place does not block the open.
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let (mode, p) = (meta.mode() & 0o7777, path.display());
    if mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "its group or other users can write it (mode {mode:04o}) and so swap it: chmod \
                 0640 {p} (its group reads it) or chmod 0600 {p}"
            ),
        ));
    }
    let warning = (mode & 0o004 != 0).then(|| {
        format!(
            "{what} {p} is readable by every user (mode {mode:04o}): chmod 0640 {p} or chmod \
             0600 {p}"
        )
    });
    let mut text = Zeroizing::new(String::new());
    f.take(max).read_to_string(&mut text)?;
    Ok((text, warning))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_rule_names_the_file_and_reads_at_most_max_bytes() {
        let d = std::env::temp_dir().join(format!("faceveil-secret-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("pw");
        std::fs::write(&p, "hunter2\nrest").unwrap();
        let chmod = |m| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        chmod(0o600);
        let (text, warning) = read_secret_file(&p, "password file", 7).unwrap();
        assert_eq!((text.as_str(), warning), ("hunter2", None));
        chmod(0o604);
        let warning = read_secret_file(&p, "password file", 64)
            .unwrap()
            .1
            .unwrap();
        assert!(
            warning.starts_with(&format!("password file {} is readable", p.display())),
            "{warning}"
        );
        chmod(0o620);
        let e = read_secret_file(&p, "password file", 64).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("mode 0620"), "{e}");
        let e = read_secret_file(&d, "password file", 64).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = read_secret_file(&d.join("none"), "password file", 64).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(d).unwrap();
    }
}
