// SPDX-License-Identifier: MIT
//! The deployment of docs/NVR.md, run for real: a system user runs `faceveil-nvr` on live cameras,
//! the watch list and its key are root's, group that user's, mode 0640, and root runs the
//! `faceveil` CLI beside the service. What root does must take effect in the running service
//! within seconds, without a restart: `remove` stops a person's alerts, `enroll` starts them,
//! `rekey` changes nothing a camera sees. The test cameras show each face for a while, then a
//! blank frame, over and over, so that every showing is a new visit (a new alert while listed).
//!
//! Needs root (useradd, setpriv); it says so and returns otherwise. CI runs it as root.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BlinkingCamera, RtspCamera, cli_ok, free_port, photo, require_runtime, scratch};

/// The service's system user (and group), as `faceveil` in docs/NVR.md.
use common::SERVICE_USER as USER;
/// How soon what root does must show in the service's alerts.
const WITHIN: Duration = Duration::from_secs(5);
/// Each face shows this long, then a blank frame for `OFF`: one visit every 5 s.
const ON: Duration = Duration::from_secs(3);
const OFF: Duration = Duration::from_secs(2);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines the service wrote, each with when it came: (time, from standard error, line).
type Lines = Arc<Mutex<Vec<(Instant, bool, String)>>>;

/// `faceveil-nvr --config CONFIG` run as [`USER`] (setpriv, its groups), as systemd runs the unit:
/// only the environment the test set-up needs, and `STATE_DIRECTORY` as `StateDirectory=` sets it.
struct Service {
    child: Child,
    lines: Lines,
}

impl Service {
    fn start(config: &Path, state: &Path) -> Service {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
            "--",
            env!("CARGO_BIN_EXE_faceveil-nvr"),
            "--config",
        ])
        .arg(config)
        .env_clear()
        .env("STATE_DIRECTORY", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for var in [
            "PATH",
            "FACEVEIL_MODEL_DIR",
            "ORT_DYLIB_PATH",
            "GST_PLUGIN_PATH",
            "GST_PLUGIN_SYSTEM_PATH",
            "LD_LIBRARY_PATH",
            "GST_DEBUG",
            "RUST_BACKTRACE",
        ] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let lines: Lines = Arc::default();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stderr, pipe) in [
            (false, Box::new(out) as Box<dyn std::io::Read + Send>),
            (true, Box::new(err)),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if stderr {
                        eprintln!("    nvr: {l}");
                    }
                    lines.lock().unwrap().push((Instant::now(), stderr, l));
                }
            });
        }
        Service { child, lines }
    }

    /// When `label` was alerted on `camera`.
    fn alerts(&self, camera: &str, label: &str) -> Vec<Instant> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, stderr, _)| !stderr)
            .filter_map(|(t, _, l)| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["event"] == "faceveil-match" && v["camera-id"] == camera && v["label"] == label)
                    .then_some(*t)
            })
            .collect()
    }

    /// Lines on standard error after `since` that contain `needle`.
    fn said_after(&self, since: Instant, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, stderr, l)| *stderr && *t >= since && l.contains(needle))
            .map(|(_, _, l)| l.clone())
            .collect()
    }

    /// The first alert of `label` on `camera` after `since`, waiting up to `timeout` for it.
    fn next_alert(
        &mut self,
        camera: &str,
        label: &str,
        since: Instant,
        timeout: Duration,
    ) -> Option<Instant> {
        let deadline = since + timeout;
        loop {
            if let Some(t) = self.alerts(camera, label).into_iter().find(|t| *t > since) {
                return Some(t);
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the service exited"
            );
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `install -d -m MODE -o OWNER -g GROUP DIR`.
fn install_dir(dir: &Path, owner: &str, mode: u32) {
    std::fs::create_dir_all(dir).unwrap();
    run(
        "chown",
        &[&format!("{owner}:{USER}"), dir.to_str().unwrap()],
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The files of the deployment under `d`, as NVR.md lays them out in /var/lib/faceveil and
/// /etc/faceveil.
struct Deployment {
    list: PathBuf,
    key: PathBuf,
    config: PathBuf,
    state: PathBuf,
}

impl Deployment {
    /// Root runs `faceveil --list LIST --key-file KEY ARGS`, and nothing else.
    fn root_runs(&self, args: &[&str]) -> Instant {
        let mut all = vec!["--key-file", self.key.to_str().unwrap()];
        all.extend_from_slice(args);
        cli_ok(&self.list, &all);
        Instant::now()
    }
}

/// The set-up of docs/NVR.md ("As a systemd service"), with `cameras` as (name, port).
fn deploy(d: &Path, cameras: &[(&str, u16)]) -> Deployment {
    common::faceveil_service_user().expect("root");
    // Every path component the service user must traverse.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (lib, etc) = (d.join("var-lib-faceveil"), d.join("etc-faceveil"));
    install_dir(&lib, "root", 0o750);
    install_dir(&etc, "root", 0o750);
    let dep = Deployment {
        list: lib.join("watchlist.fvl"),
        key: etc.join("watchlist.key"),
        config: etc.join("nvr.toml"),
        // StateDirectory=faceveil/state: the service user's own directory.
        state: lib.join("state"),
    };
    dep.root_runs(&["init", "--default-expiry", "90d"]);
    dep.root_runs(&[
        "enroll",
        "--label",
        "obama",
        photo("obama.jpg").to_str().unwrap(),
    ]);
    let (list, key) = (dep.list.to_str().unwrap(), dep.key.to_str().unwrap());
    run("chgrp", &[USER, list, key]);
    run("chmod", &["0640", list, key]);
    std::fs::create_dir(&dep.state).unwrap();
    run(
        "chown",
        &[&format!("{USER}:{USER}"), dep.state.to_str().unwrap()],
    );
    std::fs::set_permissions(&dep.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut config = format!(
        "[output]\nevents = \"-\"\n[defaults]\nwatchlist = \"{list}\"\nkey-file = \"{key}\"\n\
         cooldown = 1\nstall-timeout = 10\n"
    );
    for (name, port) in cameras {
        config += &format!(
            "[[camera]]\nname = \"{name}\"\nurl = \"{}\"\n",
            RtspCamera::url(*port)
        );
    }
    std::fs::write(&dep.config, config).unwrap();
    dep
}

/// Seconds from `from` to `to` (negative: before).
fn secs(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64()
    } else {
        -(from - to).as_secs_f64()
    }
}

#[test]
fn what_root_does_with_the_cli_takes_effect_in_the_running_service() {
    if !is_root() {
        eprintln!("skipped: needs root (useradd, setpriv), as in CI");
        return;
    }
    require_runtime();
    let d = scratch("deploy");
    let (door, gate) = (free_port(), free_port());
    let _door = BlinkingCamera::start(door, "obama.jpg", ON, OFF);
    let _gate = BlinkingCamera::start(gate, "biden.jpg", ON, OFF);
    let dep = deploy(&d, &[("door", door), ("gate", gate)]);
    let mut nvr = Service::start(&dep.config, &dep.state);
    let start = Instant::now();

    // Positive control: obama alerts at every visit (two of them), biden, not listed, never.
    let first = nvr.next_alert("door", "obama", start, Duration::from_secs(120));
    let first = first.expect("no alert of obama: the service does not match");
    let second = nvr.next_alert("door", "obama", first, Duration::from_secs(12));
    assert!(second.is_some(), "a second visit did not alert again");
    assert!(
        nvr.alerts("gate", "biden").is_empty(),
        "biden alerted unlisted"
    );

    // (a) root removes obama: the alerts stop.
    let removed = dep.root_runs(&["remove", "--label", "obama"]);
    std::thread::sleep(WITHIN + ON + OFF + ON + OFF);
    let last = nvr.alerts("door", "obama").into_iter().max().unwrap();
    eprintln!(
        "remove: last alert of obama {:+.1} s after the CLI exited",
        secs(removed, last)
    );
    assert!(
        last < removed + WITHIN,
        "obama still alerted {:.1} s after 'faceveil remove' ({:?})",
        secs(removed, last),
        nvr.said_after(removed, "watch list")
    );

    // (b) root enrolls biden, whom the gate camera shows: an alert.
    let enrolled = dep.root_runs(&[
        "enroll",
        "--label",
        "biden",
        photo("biden.jpg").to_str().unwrap(),
    ]);
    let alert = nvr.next_alert("gate", "biden", enrolled, WITHIN);
    assert!(
        alert.is_some(),
        "no alert of biden within {WITHIN:?} of 'faceveil enroll' ({:?})",
        nvr.said_after(enrolled, "watch list")
    );
    eprintln!(
        "enroll: first alert of biden {:.1} s after the CLI exited",
        secs(enrolled, alert.unwrap())
    );

    // (c) root rekeys: the service reads the new key and goes on matching, no restart.
    let rekeyed = dep.root_runs(&["rekey"]);
    let reloaded = Instant::now() + WITHIN;
    while nvr.said_after(rekeyed, "reloaded").len() < 2 && Instant::now() < reloaded {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        nvr.said_after(rekeyed, "reloaded").len(),
        2,
        "both cameras reload the rekeyed list within {WITHIN:?} ({:?})",
        nvr.said_after(rekeyed, "watch list")
    );
    let alert = nvr.next_alert("gate", "biden", rekeyed, WITHIN + ON + OFF);
    assert!(
        alert.is_some(),
        "biden's alerts stopped after 'faceveil rekey'"
    );
    eprintln!(
        "rekey: reloaded, next alert of biden {:.1} s after the CLI exited",
        secs(rekeyed, alert.unwrap())
    );
    // The list under the new key is the one in use: a change made after the rekey takes effect.
    let back = dep.root_runs(&[
        "enroll",
        "--label",
        "obama",
        photo("obama.jpg").to_str().unwrap(),
    ]);
    let alert = nvr.next_alert("door", "obama", back, WITHIN);
    assert!(
        alert.is_some(),
        "no alert of obama re-enrolled after the rekey"
    );
    eprintln!(
        "enroll after rekey: first alert of obama {:.1} s after the CLI exited",
        secs(back, alert.unwrap())
    );
    assert!(
        nvr.said_after(start, "reload failed").is_empty(),
        "{:?}",
        nvr.said_after(start, "reload failed")
    );
    assert!(
        nvr.child.try_wait().unwrap().is_none(),
        "the service exited"
    );
    drop(nvr);
    let _ = std::fs::remove_dir_all(&d);
}
