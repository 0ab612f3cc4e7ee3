// SPDX-License-Identifier: MIT
//! The NVR runner's configuration: a TOML file (docs/NVR.md) or the equivalent command line. Every
//! error names the key and, for a file, the line, so that a bad file is refused before anything
//! starts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// One camera, with the defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    pub name: String,
    /// A URI (`rtsp://…`, `file://…`, anything `uridecodebin` reads).
    pub uri: String,
    pub watchlist: PathBuf,
    pub key_file: Option<PathBuf>,
    /// 0: the embedder's calibrated threshold.
    pub threshold: f32,
    pub min_hits: u32,
    pub cooldown: u32,
    /// Detector interval (run the model on one frame in N; 0 = adaptive, the default).
    pub interval: u32,
    /// Motion gating (veilbin `idle-interval`): ms of stream time between full-frame runs on a
    /// still picture with no face tracked; 0 = off.
    pub idle_interval: u32,
    pub report_unknown: bool,
    /// Hash-chained audit log each match is appended to (faceveil `audit-log`).
    pub audit_log: Option<PathBuf>,
    /// Seconds without a frame after which a live camera is torn down and reconnected (0 = never).
    pub stall_timeout: u32,
    /// Where the highest generation of each list used is kept (veilmatch `state-dir`); `None`:
    /// in memory only.
    pub state_dir: Option<PathBuf>,
    /// Trial mode (veilmatch `trial`): matches are decided and written to `audit_log` as
    /// `trial-match` entries, never reported (no event).
    pub trial: bool,
}

/// Default of `idle-interval` (veildetect's).
pub const DEFAULT_IDLE_INTERVAL: u32 = 2000;

/// Default of `stall-timeout`.
pub const DEFAULT_STALL_TIMEOUT: u32 = 10;

/// Default of `health-interval` (seconds).
pub const DEFAULT_HEALTH_INTERVAL: u32 = 30;

/// Default of `state-dir`: the first of `$STATE_DIRECTORY` (which systemd sets from the unit's
/// `StateDirectory=`), when set.
pub fn state_directory() -> Option<PathBuf> {
    let v = std::env::var_os("STATE_DIRECTORY")?;
    let first = v.to_string_lossy().split(':').next()?.to_string();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where events go: `None` = standard output, else a file (appended).
    pub events: Option<PathBuf>,
    /// Seconds between two `faceveil-health` lines on the events output (0: none).
    pub health_interval: u32,
    /// Where Prometheus text is served (`GET /metrics`), checked by `metrics::parse_address`.
    pub metrics: Option<std::net::SocketAddr>,
    pub cameras: Vec<Camera>,
}

/// Why a configuration was refused (the message names the key, and the line for a file).
#[derive(Debug, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `[[camera]]` table, and `[defaults]` (the same keys but `name` and `url`), whose values every
/// camera takes unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Common {
    name: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    watchlist: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    threshold: Option<Spanned<f32>>,
    min_hits: Option<Spanned<u32>>,
    cooldown: Option<u32>,
    interval: Option<Spanned<u32>>,
    idle_interval: Option<u32>,
    report_unknown: Option<bool>,
    audit_log: Option<Spanned<String>>,
    stall_timeout: Option<u32>,
    state_dir: Option<Spanned<String>>,
    trial: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Output {
    /// `-` or unset: standard output.
    events: Option<String>,
    health_interval: Option<u32>,
    metrics: Option<Spanned<String>>,
    metrics_allow_remote: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    #[serde(default)]
    output: Output,
    #[serde(default)]
    defaults: Common,
    #[serde(default)]
    camera: Vec<Common>,
}

/// A camera table with its required keys present.
struct Cam<'a> {
    name: &'a Spanned<String>,
    url: &'a Spanned<String>,
    common: &'a Common,
}

/// Line of a byte offset in `text` (1-based).
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// A relative path in the file is relative to the file's folder.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A camera URL: a URI as given, a path made into a `file://` URI (relative to `base`).
pub fn uri_of(base: &Path, url: &str) -> Result<String, String> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    let abs = std::path::absolute(resolve(base, url)).map_err(|e| e.to_string())?;
    gst::glib::filename_to_uri(abs, None)
        .map(|u| u.to_string())
        .map_err(|e| e.to_string())
}

impl Config {
    /// Parses the text of a configuration file at `path` (relative paths inside are relative to its
    /// folder) and checks it: at least one camera, names unique and usable, URLs and watch lists
    /// given, values in range.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let at = |span: std::ops::Range<usize>, key: &str, msg: &str| {
            ConfigError(format!(
                "{}: line {}: {key}: {msg}",
                path.display(),
                line_of(text, span.start)
            ))
        };
        let file: File = toml::from_str(text)
            .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.to_string().trim())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if file.camera.is_empty() {
            return Err(ConfigError(format!(
                "{}: no [[camera]]: give at least one camera (name and url)",
                path.display()
            )));
        }
        for (key, v) in [("name", &file.defaults.name), ("url", &file.defaults.url)] {
            if let Some(v) = v {
                return Err(at(
                    v.span(),
                    key,
                    "belongs in a [[camera]], not in [defaults]",
                ));
            }
        }
        let mut names = BTreeSet::new();
        let mut cameras = Vec::new();
        for (i, common) in file.camera.into_iter().enumerate() {
            let missing = |key: &str| {
                ConfigError(format!(
                    "{}: camera {} (the [[camera]] number {}): {key} is missing",
                    path.display(),
                    common
                        .name
                        .as_ref()
                        .map_or("?".into(), |n| format!("'{}'", n.get_ref())),
                    i + 1
                ))
            };
            let name_s = common.name.as_ref().ok_or_else(|| missing("name"))?;
            let url_s = common.url.as_ref().ok_or_else(|| missing("url"))?;
            let c = Cam {
                name: name_s,
                url: url_s,
                common: &common,
            };
            let name = c.name.get_ref().trim().to_string();
            if name.is_empty() || name.contains(['"', '\'', '\\', '\n']) {
                return Err(at(
                    c.name.span(),
                    "name",
                    "a camera name must be non-empty, without quotes or backslashes",
                ));
            }
            if !names.insert(name.clone()) {
                return Err(at(
                    c.name.span(),
                    "name",
                    &format!("camera name '{name}' is used twice"),
                ));
            }
            if c.url.get_ref().trim().is_empty() {
                return Err(at(c.url.span(), "url", "empty"));
            }
            let uri = uri_of(base, c.url.get_ref()).map_err(|e| at(c.url.span(), "url", &e))?;
            let get = |own: &Option<Spanned<String>>, def: &Option<Spanned<String>>| {
                own.as_ref()
                    .or(def.as_ref())
                    .map(|s| resolve(base, s.get_ref()))
            };
            let watchlist =
                get(&c.common.watchlist, &file.defaults.watchlist).ok_or_else(|| {
                    at(
                        c.name.span(),
                        "watchlist",
                        &format!(
                            "camera '{name}' has no watch list (set it in [defaults] or the camera)"
                        ),
                    )
                })?;
            let threshold = c
                .common
                .threshold
                .as_ref()
                .or(file.defaults.threshold.as_ref());
            if let Some(t) = threshold
                && !(0.0..=1.0).contains(t.get_ref())
            {
                return Err(at(
                    t.span(),
                    "threshold",
                    "must be between 0 and 1 (0 = calibrated)",
                ));
            }
            if let Some(v) = c
                .common
                .min_hits
                .as_ref()
                .or(file.defaults.min_hits.as_ref())
                && *v.get_ref() == 0
            {
                return Err(at(v.span(), "min-hits", "must be at least 1"));
            }
            let trial = c.common.trial.as_ref().or(file.defaults.trial.as_ref());
            let audit_log = get(&c.common.audit_log, &file.defaults.audit_log);
            if let Some(t) = trial
                && *t.get_ref()
                && audit_log.is_none()
            {
                return Err(at(
                    t.span(),
                    "trial",
                    &format!(
                        "camera '{name}' is in trial mode but has no audit-log: trial matches \
                         are recorded only there"
                    ),
                ));
            }
            cameras.push(Camera {
                name,
                uri,
                watchlist,
                key_file: get(&c.common.key_file, &file.defaults.key_file),
                audit_log,
                threshold: threshold.map_or(0.0, |t| *t.get_ref()),
                min_hits: (c.common.min_hits.as_ref())
                    .or(file.defaults.min_hits.as_ref())
                    .map_or(2, |v| *v.get_ref()),
                cooldown: c.common.cooldown.or(file.defaults.cooldown).unwrap_or(60),
                interval: (c.common.interval.as_ref())
                    .or(file.defaults.interval.as_ref())
                    .map_or(0, |v| *v.get_ref()),
                idle_interval: (c.common.idle_interval)
                    .or(file.defaults.idle_interval)
                    .unwrap_or(DEFAULT_IDLE_INTERVAL),
                report_unknown: c
                    .common
                    .report_unknown
                    .or(file.defaults.report_unknown)
                    .unwrap_or(false),
                stall_timeout: (c.common.stall_timeout)
                    .or(file.defaults.stall_timeout)
                    .unwrap_or(DEFAULT_STALL_TIMEOUT),
                state_dir: get(&c.common.state_dir, &file.defaults.state_dir)
                    .or_else(state_directory),
                trial: trial.is_some_and(|t| *t.get_ref()),
            });
        }
        let events = match file.output.events.as_deref() {
            None | Some("-") => None,
            Some(p) => Some(resolve(base, p)),
        };
        let metrics = match &file.output.metrics {
            None => None,
            Some(m) => Some(
                crate::metrics::parse_address(
                    m.get_ref(),
                    file.output.metrics_allow_remote.unwrap_or(false),
                )
                .map_err(|e| at(m.span(), "metrics", &e))?,
            ),
        };
        Ok(Config {
            events,
            health_interval: (file.output.health_interval).unwrap_or(DEFAULT_HEALTH_INTERVAL),
            metrics,
            cameras,
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/faceveil/nvr.toml"))
    }

    const GOOD: &str = r#"
[output]
events = "events.jsonl"
health-interval = 5
metrics = "127.0.0.1:9750"

[defaults]
watchlist = "/var/lib/faceveil/watchlist.fvl"
key-file = "watchlist.key"
min-hits = 3

[[camera]]
name = "door"
url = "rtsp://127.0.0.1:8554/cam"
threshold = 0.7

[[camera]]
name = "lobby"
url = "clips/lobby.mp4"
watchlist = "other.fvl"
report-unknown = true
stall-timeout = 0
idle-interval = 0
state-dir = "state"
"#;

    #[test]
    fn defaults_apply_and_cameras_override() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.events, Some(PathBuf::from("/etc/faceveil/events.jsonl")));
        assert_eq!(c.health_interval, 5);
        assert_eq!(c.metrics, Some("127.0.0.1:9750".parse().unwrap()));
        let [door, lobby] = &c.cameras[..] else {
            panic!("{c:?}")
        };
        assert_eq!(door.uri, "rtsp://127.0.0.1:8554/cam");
        assert_eq!(
            (door.idle_interval, lobby.idle_interval),
            (DEFAULT_IDLE_INTERVAL, 0)
        );
        assert_eq!(door.watchlist, Path::new("/var/lib/faceveil/watchlist.fvl"));
        assert_eq!(
            door.key_file.as_deref(),
            Some(Path::new("/etc/faceveil/watchlist.key"))
        );
        assert_eq!((door.threshold, door.min_hits, door.cooldown), (0.7, 3, 60));
        assert_eq!(lobby.uri, "file:///etc/faceveil/clips/lobby.mp4");
        assert_eq!(lobby.watchlist, Path::new("/etc/faceveil/other.fvl"));
        assert!(lobby.report_unknown && !door.report_unknown);
        assert_eq!((door.stall_timeout, lobby.stall_timeout), (10, 0));
        assert_eq!(
            lobby.state_dir.as_deref(),
            Some(Path::new("/etc/faceveil/state"))
        );
        assert!(!door.trial && !lobby.trial, "live unless asked");
    }

    #[test]
    fn trial_mode_is_per_camera_with_a_default_and_needs_an_audit_log() {
        let with_log = GOOD.replace(
            "min-hits = 3\n",
            "min-hits = 3\naudit-log = \"/var/log/faceveil/matches.audit\"\n",
        );
        let one = with_log.replace("threshold = 0.7\n", "threshold = 0.7\ntrial = true\n");
        let c = parse(&one).unwrap();
        assert_eq!(
            c.cameras.iter().map(|c| c.trial).collect::<Vec<_>>(),
            [true, false]
        );
        // [defaults] trial = true, the lobby goes live on its own
        let all = with_log
            .replace("min-hits = 3\n", "min-hits = 3\ntrial = true\n")
            .replace("stall-timeout = 0\n", "stall-timeout = 0\ntrial = false\n");
        let c = parse(&all).unwrap();
        assert_eq!(
            c.cameras.iter().map(|c| c.trial).collect::<Vec<_>>(),
            [true, false]
        );
        // without an audit log the trial would be recorded nowhere: refused, with the line
        let no_log = GOOD.replace("threshold = 0.7\n", "threshold = 0.7\ntrial = true\n");
        let e = parse(&no_log).unwrap_err().0;
        let line = 1 + no_log.lines().position(|l| l == "trial = true").unwrap();
        assert!(
            e.contains(&format!("line {line}:")) && e.contains("trial") && e.contains("audit-log"),
            "{e}"
        );
        let typed = one.replace("trial = true", "trial = \"yes\"");
        let e = parse(&typed).unwrap_err().0;
        assert!(e.contains("trial"), "{e}");
    }

    #[test]
    fn health_lines_by_default_metrics_only_when_asked() {
        let c =
            parse("[defaults]\nwatchlist = \"w.fvl\"\n[[camera]]\nname = \"a\"\nurl = \"a.mp4\"\n")
                .unwrap();
        assert_eq!(
            (c.health_interval, c.metrics),
            (DEFAULT_HEALTH_INTERVAL, None)
        );
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let unknown = GOOD.replace("threshold = 0.7", "treshold = 0.7");
        let e = parse(&unknown).unwrap_err().0;
        assert!(e.contains("line 15") && e.contains("treshold"), "{e}");

        let twice = GOOD.replace("name = \"lobby\"", "name = \"door\"");
        let e = parse(&twice).unwrap_err().0;
        assert!(
            e.contains("line 18") && e.contains("name") && e.contains("twice"),
            "{e}"
        );

        let range = GOOD.replace("threshold = 0.7", "threshold = 7");
        let e = parse(&range).unwrap_err().0;
        assert!(e.contains("line 15") && e.contains("threshold"), "{e}");

        let typed = GOOD.replace("min-hits = 3", "min-hits = \"three\"");
        let e = parse(&typed).unwrap_err().0;
        assert!(e.contains("line 10") && e.contains("min-hits"), "{e}");

        let no_list = GOOD.replace("watchlist = \"/var/lib/faceveil/watchlist.fvl\"\n", "");
        let e = parse(&no_list).unwrap_err().0;
        assert!(e.contains("watchlist") && e.contains("'door'"), "{e}");

        let no_url = GOOD.replace("url = \"clips/lobby.mp4\"\n", "");
        let e = parse(&no_url).unwrap_err().0;
        assert!(e.contains("'lobby'") && e.contains("url is missing"), "{e}");

        let public = GOOD.replace("127.0.0.1:9750", "0.0.0.0:9750");
        let e = parse(&public).unwrap_err().0;
        assert!(
            e.contains("line 5") && e.contains("metrics") && e.contains("loopback"),
            "{e}"
        );
        let allowed = public.replace("[defaults]", "metrics-allow-remote = true\n[defaults]");
        assert!(parse(&allowed).is_ok());
        let e = parse(&GOOD.replace("127.0.0.1:9750", "localhost"))
            .unwrap_err()
            .0;
        assert!(e.contains("line 5") && e.contains("metrics"), "{e}");

        let e = parse("[output]\n").unwrap_err().0;
        assert!(e.contains("no [[camera]]"), "{e}");
        let e = parse("[[camera]\nname=1").unwrap_err().0;
        assert!(e.contains("line 1"), "{e}");
    }
}
