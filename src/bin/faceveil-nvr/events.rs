// SPDX-License-Identifier: MIT
//! The events file of `faceveil-nvr`: one JSON line per event, appended; created 0640; reopened
//! by its name on SIGHUP; events that cannot be written (a full disk) wait in memory and are
//! written first, in order, when it can be written again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstfaceveil::engine::backlog::{self, Backlog, Outcome};

/// Where events go: the events file (by its name, for messages) or standard output.
enum Out {
    File(std::fs::File, PathBuf),
    Stdout,
}

impl Out {
    /// Writes one whole line, or none of it: a file that took part of a line (a disk that filled
    /// up during the write) is cut back to where it was.
    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        match self {
            Out::File(f, _) => {
                let len = f.metadata()?.len();
                let written = f.write_all(&bytes).and_then(|_| f.flush());
                if written.is_err() {
                    let _ = f.set_len(len);
                }
                written
            }
            Out::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(&bytes).and_then(|_| o.flush())
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Out::File(_, p) => format!("events file {}", p.display()),
            Out::Stdout => "standard output".into(),
        }
    }
}

/// The events output and the events that wait for it (a full disk): written first, in order, as
/// soon as a write works again, retried every second meanwhile; at most
/// [`backlog::DEFAULT_CAPACITY`] wait, the oldest are dropped beyond.
pub(crate) struct EventsOut {
    out: Out,
    backlog: Backlog,
    retrying: bool,
}

pub(crate) type Events = Arc<Mutex<EventsOut>>;

impl EventsOut {
    /// Writes the events that wait and `line`, and says on standard error when writes start
    /// failing and when they work again.
    fn write(&mut self, camera: Option<&str>, line: Option<String>) {
        let EventsOut { out, backlog, .. } = self;
        let outcome = backlog.write(line, |l| out.write_line(l));
        let who = camera.map_or("faceveil-nvr:".into(), |c| format!("[{c}]"));
        match outcome {
            Outcome::Written | Outcome::StillFailing { .. } => {}
            Outcome::Failed { error, waiting } => eprintln!(
                "{who} {} cannot be written ({error}): {waiting} event(s) wait in memory (at \
                 most {}) and are written as soon as it can be written again",
                out.name(),
                backlog::DEFAULT_CAPACITY
            ),
            Outcome::Recovered { written, dropped } => eprintln!(
                "{who} {} written again: {written} event(s) that had waited are in it{}",
                out.name(),
                if dropped > 0 {
                    format!(
                        "; {dropped} older one(s) were dropped (at most {} wait)",
                        backlog::DEFAULT_CAPACITY
                    )
                } else {
                    String::new()
                }
            ),
        }
    }
}

impl Drop for EventsOut {
    /// At exit, events that still wait are tried once more, then printed to standard error: never
    /// lost silently.
    fn drop(&mut self) {
        if self.backlog.waiting() == 0 {
            return;
        }
        self.write(None, None);
        let (lines, dropped) = self.backlog.drain();
        for line in &lines {
            eprintln!(
                "faceveil-nvr: event not written to the {}: {line}",
                self.out.name()
            );
        }
        if dropped > 0 {
            eprintln!(
                "faceveil-nvr: {dropped} older event(s) were dropped (at most {} wait)",
                backlog::DEFAULT_CAPACITY
            );
        }
    }
}

/// The events file, opened for appending; created with mode 0640 whatever the umask (the
/// service's group may read it, nobody else); a file that exists keeps the mode it has.
fn open_events_file(p: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| format!("events file {}: {e}", p.display());
    let mut o = std::fs::OpenOptions::new();
    o.append(true).mode(0o640).custom_flags(libc::O_NOFOLLOW);
    match o.clone().create_new(true).open(p) {
        Ok(f) => {
            // Through the descriptor: the umask may have taken bits away.
            f.set_permissions(std::fs::Permissions::from_mode(0o640))
                .map_err(fail)?;
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => o.open(p).map_err(fail),
        Err(e) => Err(fail(e)),
    }
}

pub(crate) fn open_events(path: &Option<PathBuf>) -> Result<Events, String> {
    let out = match path {
        Some(p) => Out::File(open_events_file(p)?, p.clone()),
        None => Out::Stdout,
    };
    Ok(Arc::new(Mutex::new(EventsOut {
        out,
        backlog: Backlog::default(),
        retrying: false,
    })))
}

/// SIGHUP: the events file is opened again by its name, so that a log rotation that renamed it
/// (logrotate without `copytruncate`) gets a new file; the cameras keep running; events that wait
/// go to the new file. On failure the old file stays in use.
pub(crate) fn reopen_events(path: &Option<PathBuf>, events: &Events) {
    let Some(p) = path else { return };
    match open_events_file(p) {
        Ok(f) => {
            events.lock().unwrap_or_else(|e| e.into_inner()).out = Out::File(f, p.clone());
            eprintln!("faceveil-nvr: events file {} reopened", p.display());
        }
        Err(e) => eprintln!("faceveil-nvr: {e}; still writing to the file open before"),
    }
}

/// Appends one event line. An event that cannot be written (disk full) waits in memory with the
/// ones before it (see [`EventsOut`]); a thread retries them every second until they are written.
pub(crate) fn write_event(events: &Events, camera: &str, line: &str) {
    write_line(events, camera, line, false);
}

/// Appends a status line (`faceveil-health`) unless events wait for the output: a periodic line
/// never pushes an event out of the ones that wait (at most one status line waits among them).
pub(crate) fn write_status(events: &Events, camera: &str, line: &str) {
    write_line(events, camera, line, true);
}

fn write_line(events: &Events, camera: &str, line: &str, unless_waiting: bool) {
    let mut w = events.lock().unwrap_or_else(|e| e.into_inner());
    if unless_waiting && w.backlog.waiting() > 0 {
        return;
    }
    w.write(Some(camera), Some(line.to_string()));
    if w.backlog.waiting() == 0 || w.retrying {
        return;
    }
    w.retrying = true;
    // A weak reference: the retries end when the runner drops its events output at exit.
    let weak = Arc::downgrade(events);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(events) = weak.upgrade() else { return };
            let mut w = events.lock().unwrap_or_else(|e| e.into_inner());
            w.write(None, None);
            if w.backlog.waiting() == 0 {
                w.retrying = false;
                return;
            }
        }
    });
}
