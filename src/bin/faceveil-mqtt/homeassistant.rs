// SPDX-License-Identifier: MIT
//! Home Assistant MQTT discovery for the bridge: the ids a camera gets in topics and in Home
//! Assistant, the retained discovery configs of a camera's device (a "Watch-list alert" binary
//! sensor and a "Last identified" sensor), and which retained configs a removal clears.
//!
//! Discovery topic: `<discovery prefix>/<component>/<node id>/<object id>/config`, the node id
//! `faceveil_<camera>`, the object ids `alert` and `last_identified`; the payload holds only keys of
//! Home Assistant's MQTT binary sensor and sensor schemas, unabbreviated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use gstfaceveil::engine::audit::hex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The longest camera id kept as it is in a topic level or an id.
const MAX_ID: usize = 64;
/// The bytes of a changed id kept before its hash.
const KEPT: usize = 40;

/// `id` with every character `keep` refuses replaced by `_`; an id that was changed, is empty or
/// longer than [`MAX_ID`] bytes is cut to [`KEPT`] bytes and gets `_` and the first 8 hex digits
/// of its SHA-256, so that two ids never end up the same.
fn clean(id: &str, keep: impl Fn(char) -> bool) -> String {
    let replaced: String = id.chars().map(|c| if keep(c) { c } else { '_' }).collect();
    if replaced == id && !id.is_empty() && id.len() <= MAX_ID {
        return replaced;
    }
    let mut cut = KEPT.min(replaced.len());
    while !replaced.is_char_boundary(cut) {
        cut -= 1;
    }
    let h = hex(&Sha256::digest(id.as_bytes())[..4]);
    format!("{}_{h}", &replaced[..cut])
}

/// A camera id as one level of an MQTT topic: as it is unless it holds `/`, `+`, `#` or a control
/// character (NUL among them), is empty or is longer than 64 bytes (see [`clean`]).
pub fn topic_level(camera: &str) -> String {
    clean(camera, |c| !matches!(c, '/' | '+' | '#') && !c.is_control())
}

/// A camera id as Home Assistant's node and object ids take it: `[A-Za-z0-9_-]` (see [`clean`]).
pub fn object_id(camera: &str) -> String {
    clean(camera, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    })
}

/// The camera id as the device's name shows it: control characters replaced, at most 64
/// characters.
fn display_name(camera: &str) -> String {
    let name: String = camera
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(MAX_ID)
        .collect();
    if name.is_empty() {
        "(no name)".into()
    } else {
        name
    }
}

/// The longest state Home Assistant keeps for a sensor (characters).
const MAX_STATE: usize = 255;

/// The label as the "Last identified" sensor's state: at most 255 characters.
pub fn label_state(label: &str) -> String {
    label.chars().take(MAX_STATE).collect()
}

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";
pub const ON: &str = "ON";
pub const OFF: &str = "OFF";
/// The object ids of a camera's entities.
const ALERT: &str = "alert";
const LAST_IDENTIFIED: &str = "last_identified";
/// The last level of their state topics.
const ALERT_STATE: &str = "alert";
const LABEL_STATE: &str = "last-identified";

/// The bridge's availability topic (its last will): `<prefix>/bridge/<client id>/availability`,
/// four levels, so that it is no camera's topic.
pub fn availability_topic(prefix: &str, client_id: &str) -> String {
    format!("{prefix}/bridge/{}/availability", topic_level(client_id))
}

/// What a camera's discovery configs name.
pub struct Discovery {
    /// Home Assistant's discovery prefix (`homeassistant`).
    pub ha_prefix: String,
    /// The bridge's own first topic level (`faceveil`).
    pub prefix: String,
    /// The availability topic ([`availability_topic`]).
    pub availability: String,
    /// Seconds the alert stays on after the camera's last match.
    pub off_delay: u32,
}

impl Discovery {
    /// The alert's state topic: `<prefix>/<camera>/alert`, `ON` or `OFF`, retained.
    pub fn alert_topic(&self, camera: &str) -> String {
        format!("{}/{}/{ALERT_STATE}", self.prefix, topic_level(camera))
    }

    /// The last identified label's state topic: `<prefix>/<camera>/last-identified`, retained.
    pub fn label_topic(&self, camera: &str) -> String {
        format!("{}/{}/{LABEL_STATE}", self.prefix, topic_level(camera))
    }

    fn config_topic(&self, component: &str, camera: &str, object: &str) -> String {
        format!(
            "{}/{component}/faceveil_{}/{object}/config",
            self.ha_prefix,
            object_id(camera)
        )
    }

    /// The camera's discovery configs: (topic, JSON payload), the binary sensor's first.
    pub fn configs(&self, camera: &str) -> [(String, String); 2] {
        let id = format!("faceveil_{}", object_id(camera));
        let version = env!("CARGO_PKG_VERSION");
        let common = json!({
            "availability_topic": self.availability,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "qos": 1,
            "device": {
                "identifiers": [id],
                "name": format!("faceveil {}", display_name(camera)),
                "manufacturer": "faceveil",
                "model": "faceveil-nvr camera",
                "sw_version": version,
            },
            "origin": { "name": "faceveil", "sw_version": version },
        });
        let with = |extra: Value| {
            let mut v = common.clone();
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            v.to_string()
        };
        let alert = with(json!({
            "name": "Watch-list alert",
            "unique_id": format!("{id}_{ALERT}"),
            "state_topic": self.alert_topic(camera),
            "payload_on": ON,
            "payload_off": OFF,
            "off_delay": self.off_delay,
            "icon": "mdi:account-alert",
        }));
        let label = with(json!({
            "name": "Last identified",
            "unique_id": format!("{id}_{LAST_IDENTIFIED}"),
            "state_topic": self.label_topic(camera),
            "icon": "mdi:account-check",
        }));
        [
            (self.config_topic("binary_sensor", camera, ALERT), alert),
            (self.config_topic("sensor", camera, LAST_IDENTIFIED), label),
        ]
    }
}

/// The most cameras the bridge announces; the events of further ones are still published.
pub const MAX_CAMERAS: usize = 256;

/// A retained message (QoS 1) to publish.
#[derive(Debug, PartialEq)]
pub struct Retained {
    pub topic: String,
    pub payload: String,
}

fn retained(topic: String, payload: &str) -> Retained {
    Retained {
        topic,
        payload: payload.to_string(),
    }
}

/// A camera announced: until when its alert is on, and the last label identified on it.
#[derive(Default)]
struct Camera {
    off_at: Option<Instant>,
    label: Option<String>,
}

/// The cameras announced and their states: what to publish when the bridge connects, when a
/// camera is first seen, when a match comes and when an alert's time is up.
pub struct Announcer {
    d: Discovery,
    cameras: BTreeMap<String, Camera>,
    warned: bool,
}

impl Announcer {
    /// The cameras `listed` (`--camera`) are announced at every connection from the first on.
    pub fn new(d: Discovery, listed: &[String]) -> Announcer {
        let cameras = listed
            .iter()
            .take(MAX_CAMERAS)
            .map(|c| (c.clone(), Camera::default()))
            .collect();
        Announcer {
            d,
            cameras,
            warned: false,
        }
    }

    /// A camera's configs, then its states: the alert `ON` or `OFF`, the last label if any.
    fn announce(&self, camera: &str, c: &Camera) -> Vec<Retained> {
        let mut out: Vec<Retained> = self
            .d
            .configs(camera)
            .into_iter()
            .map(|(topic, payload)| Retained { topic, payload })
            .collect();
        let on = if c.off_at.is_some() { ON } else { OFF };
        out.push(retained(self.d.alert_topic(camera), on));
        if let Some(label) = &c.label {
            out.push(retained(self.d.label_topic(camera), label));
        }
        out
    }

    /// At each connection (a broker restarted without persistence has lost the retained
    /// messages): `online`, then every camera announced.
    pub fn connected(&self) -> Vec<Retained> {
        let mut out = vec![retained(self.d.availability.clone(), ONLINE)];
        for (camera, c) in &self.cameras {
            out.extend(self.announce(camera, c));
        }
        out
    }

    /// An event of `camera`: its announcement the first time; a warning, once, when
    /// [`MAX_CAMERAS`] are announced already.
    pub fn seen(&mut self, camera: &str) -> Result<Vec<Retained>, String> {
        if self.cameras.contains_key(camera) {
            return Ok(Vec::new());
        }
        if self.cameras.len() >= MAX_CAMERAS {
            if self.warned {
                return Ok(Vec::new());
            }
            self.warned = true;
            return Err(format!(
                "{MAX_CAMERAS} cameras are announced to Home Assistant already: further cameras \
                 get no entities (their events are still published)"
            ));
        }
        let c = Camera::default();
        let out = self.announce(camera, &c);
        self.cameras.insert(camera.to_string(), c);
        Ok(out)
    }

    /// A match on `camera` (announced by [`Announcer::seen`]): the alert `ON` until `off_delay`
    /// seconds after `now`, and the label, when the event has one.
    pub fn matched(&mut self, camera: &str, label: Option<&str>, now: Instant) -> Vec<Retained> {
        let off_at = now + Duration::from_secs(self.d.off_delay.into());
        let Some(c) = self.cameras.get_mut(camera) else {
            return Vec::new();
        };
        c.off_at = Some(off_at);
        let mut out = vec![retained(self.d.alert_topic(camera), ON)];
        if let Some(label) = label {
            let state = label_state(label);
            out.push(retained(self.d.label_topic(camera), &state));
            c.label = Some(state);
        }
        out
    }

    /// When the next alert turns off.
    pub fn next_off(&self) -> Option<Instant> {
        self.cameras.values().filter_map(|c| c.off_at).min()
    }

    /// `OFF` for every alert whose time is up at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Retained> {
        self.turn_off(|t| t <= now)
    }

    /// `OFF` for every alert on whose time `due` says is up.
    fn turn_off(&mut self, due: impl Fn(Instant) -> bool) -> Vec<Retained> {
        let mut out = Vec::new();
        for (camera, c) in &mut self.cameras {
            if c.off_at.is_some_and(&due) {
                c.off_at = None;
                out.push(retained(self.d.alert_topic(camera), OFF));
            }
        }
        out
    }

    /// When the bridge stops: `OFF` for the alerts still on, then `offline`.
    pub fn close(&mut self) -> Vec<Retained> {
        let mut out = self.turn_off(|_| true);
        out.push(retained(self.d.availability.clone(), OFFLINE));
        out
    }
}

/// The topic filters under which a removal looks for faceveil's retained configs.
pub fn config_filters(ha_prefix: &str) -> [String; 2] {
    [
        format!("{ha_prefix}/binary_sensor/+/{ALERT}/config"),
        format!("{ha_prefix}/sensor/+/{LAST_IDENTIFIED}/config"),
    ]
}

/// One of faceveil's retained configs found on the broker.
struct Ours {
    topic: String,
    node: String,
    state: Option<String>,
    availability: Option<String>,
}

/// A retained config found under `ha_prefix` that faceveil wrote (component, node id
/// `faceveil_…`, object id and `origin` name as [`Discovery::configs`] writes them), with its
/// state and availability topics where they are faceveil's under `prefix`.
fn ours(ha_prefix: &str, prefix: &str, topic: &str, payload: &str) -> Option<Ours> {
    let rest = topic.strip_prefix(ha_prefix)?.strip_prefix('/')?;
    let [component, node, object, "config"] = rest.split('/').collect::<Vec<_>>()[..] else {
        return None;
    };
    let state_level = match (component, object) {
        ("binary_sensor", ALERT) => ALERT_STATE,
        ("sensor", LAST_IDENTIFIED) => LABEL_STATE,
        _ => return None,
    };
    if !node.starts_with("faceveil_") {
        return None;
    }
    let v: Value = serde_json::from_str(payload).ok()?;
    if v["origin"]["name"] != "faceveil" {
        return None;
    }
    // Only topics of the shape faceveil writes are cleared, whatever a config names.
    let levels = |t: &str| -> Option<Vec<String>> {
        let rest = t.strip_prefix(prefix)?.strip_prefix('/')?;
        Some(rest.split('/').map(str::to_string).collect())
    };
    let state = v["state_topic"]
        .as_str()
        .filter(|t| matches!(levels(t).as_deref(), Some([_, last]) if last == state_level))
        .map(str::to_string);
    let availability = v["availability_topic"]
        .as_str()
        .filter(|t| {
            matches!(levels(t).as_deref(), Some([b, _, a]) if b == "bridge" && a == "availability")
        })
        .map(str::to_string);
    Some(Ours {
        topic: topic.to_string(),
        node: node.to_string(),
        state,
        availability,
    })
}

/// What a removal clears.
#[derive(Debug, PartialEq)]
pub struct Removal {
    /// The topics to clear (an empty retained message each): the configs first, then their
    /// state topics, then availability topics no config left names.
    pub topics: Vec<String>,
    /// The node ids (`faceveil_<camera>`) whose configs are cleared.
    pub nodes: BTreeSet<String>,
    /// Cameras asked for that have no config on the broker.
    pub missing: Vec<String>,
}

/// Which of the retained configs `found` (topic, payload) to clear: faceveil's under `ha_prefix`
/// (with state topics under `prefix`), of the `cameras` named, or of every camera when none is.
pub fn removals(
    ha_prefix: &str,
    prefix: &str,
    found: &[(String, String)],
    cameras: &[String],
) -> Removal {
    let wanted: BTreeSet<String> = cameras
        .iter()
        .map(|c| format!("faceveil_{}", object_id(c)))
        .collect();
    let all: Vec<Ours> = found
        .iter()
        .filter_map(|(t, p)| ours(ha_prefix, prefix, t, p))
        .collect();
    let (gone, kept): (Vec<&Ours>, Vec<&Ours>) = all
        .iter()
        .partition(|o| wanted.is_empty() || wanted.contains(&o.node));
    let still: BTreeSet<&str> = kept
        .iter()
        .filter_map(|o| o.availability.as_deref())
        .collect();
    let mut topics: Vec<String> = Vec::new();
    let mut push = |t: &str| {
        if !topics.iter().any(|x| x == t) {
            topics.push(t.to_string());
        }
    };
    gone.iter().for_each(|o| push(&o.topic));
    gone.iter()
        .filter_map(|o| o.state.as_deref())
        .for_each(&mut push);
    gone.iter()
        .filter_map(|o| o.availability.as_deref())
        .filter(|a| !still.contains(a))
        .for_each(&mut push);
    let nodes: BTreeSet<String> = gone.iter().map(|o| o.node.clone()).collect();
    let missing = cameras
        .iter()
        .filter(|c| !nodes.contains(&format!("faceveil_{}", object_id(c))))
        .cloned()
        .collect();
    Removal {
        topics,
        nodes,
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc() -> Discovery {
        Discovery {
            ha_prefix: "homeassistant".into(),
            prefix: "faceveil".into(),
            availability: availability_topic("faceveil", "faceveil-bridge"),
            off_delay: 30,
        }
    }

    #[test]
    fn plain_ids_stay_and_hostile_ones_become_safe_and_distinct() {
        assert_eq!(topic_level("porch"), "porch");
        assert_eq!(topic_level("front door"), "front door");
        assert_eq!(object_id("porch-2_a"), "porch-2_a");
        for hostile in [
            "a/b",
            "a+b",
            "a#b",
            "a\0b",
            "a\nb",
            "",
            &"x".repeat(100_000),
        ] {
            let level = topic_level(hostile);
            assert!(
                !level.contains(['/', '+', '#', '\0']) && !level.is_empty() && level.len() <= 49,
                "{level:?}"
            );
            let id = object_id(hostile);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !id.is_empty()
                    && id.len() <= 49,
                "{id:?}"
            );
        }
        // ids that the replacement alone would merge stay apart, and the same id always gives the
        // same result
        assert_ne!(topic_level("a/b"), topic_level("a+b"));
        assert_ne!(topic_level("a/b"), "a_b");
        assert_ne!(object_id("front door"), object_id("front_door"));
        assert_eq!(object_id("front door"), object_id("front door"));
        // cut on a character boundary
        let long = "é".repeat(60);
        assert!(topic_level(&long).starts_with(&"é".repeat(20)));
    }

    #[test]
    fn configs_follow_home_assistants_discovery_schema() {
        let d = disc();
        let [(bt, bp), (st, sp)] = d.configs("porch");
        assert_eq!(
            bt,
            "homeassistant/binary_sensor/faceveil_porch/alert/config"
        );
        assert_eq!(
            st,
            "homeassistant/sensor/faceveil_porch/last_identified/config"
        );
        let b: Value = serde_json::from_str(&bp).unwrap();
        let s: Value = serde_json::from_str(&sp).unwrap();
        assert_eq!(b["state_topic"], "faceveil/porch/alert");
        assert_eq!(b["payload_on"], "ON");
        assert_eq!(b["payload_off"], "OFF");
        assert_eq!(b["off_delay"], 30);
        assert_eq!(b["unique_id"], "faceveil_porch_alert");
        assert_eq!(s["state_topic"], "faceveil/porch/last-identified");
        assert_eq!(s["unique_id"], "faceveil_porch_last_identified");
        for v in [&b, &s] {
            assert_eq!(
                v["availability_topic"],
                "faceveil/bridge/faceveil-bridge/availability"
            );
            assert_eq!(v["payload_available"], "online");
            assert_eq!(v["payload_not_available"], "offline");
            assert_eq!(v["device"]["identifiers"], json!(["faceveil_porch"]));
            assert_eq!(v["device"]["name"], "faceveil porch");
            assert_eq!(v["device"]["manufacturer"], "faceveil");
        }
        // a hostile id: safe topics, the raw id only as the (escaped, cut) device name
        let [(bt, bp), _] = d.configs("x/#+\0y");
        assert!(bt.starts_with("homeassistant/binary_sensor/faceveil_x____y_"));
        assert_eq!(bt.matches('/').count(), 4);
        let b: Value = serde_json::from_str(&bp).unwrap();
        assert_eq!(b["device"]["name"], "faceveil x/#+_y");
        assert!(
            !b["state_topic"]
                .as_str()
                .unwrap()
                .contains(['#', '+', '\0'])
        );
    }

    #[test]
    fn labels_are_cut_to_what_home_assistant_keeps() {
        assert_eq!(label_state("obama"), "obama");
        assert_eq!(label_state(&"é".repeat(300)).chars().count(), 255);
    }

    #[test]
    fn removal_clears_faceveils_configs_and_states_only() {
        let d = disc();
        let mut found: Vec<(String, String)> = Vec::new();
        for cam in ["porch", "gate"] {
            found.extend(d.configs(cam));
        }
        // another program's config, and one that claims faceveil but points elsewhere
        found.push((
            "homeassistant/binary_sensor/other_porch/alert/config".into(),
            r#"{"origin":{"name":"other"},"state_topic":"x/y/alert"}"#.into(),
        ));
        found.push((
            "homeassistant/binary_sensor/faceveil_evil/alert/config".into(),
            r#"{"origin":{"name":"faceveil"},"state_topic":"home/lights/set","availability_topic":"a/b"}"#.into(),
        ));
        found.push((
            "homeassistant/sensor/faceveil_x/last_identified/config".into(),
            "not json".into(),
        ));

        let r = removals("homeassistant", "faceveil", &found, &["porch".into()]);
        assert_eq!(
            r.topics,
            [
                "homeassistant/binary_sensor/faceveil_porch/alert/config",
                "homeassistant/sensor/faceveil_porch/last_identified/config",
                "faceveil/porch/alert",
                "faceveil/porch/last-identified",
            ]
        );
        assert!(r.missing.is_empty());

        let r = removals(
            "homeassistant",
            "faceveil",
            &found,
            &["porch".into(), "garage".into()],
        );
        assert_eq!(r.missing, ["garage"]);

        // every camera: the availability topic goes too, the foreign topics stay
        let r = removals("homeassistant", "faceveil", &found, &[]);
        assert_eq!(r.topics.len(), 4 + 4 + 1 + 1, "{:?}", r.topics);
        assert!(r.topics.contains(&d.availability));
        assert!(
            r.topics
                .contains(&"homeassistant/binary_sensor/faceveil_evil/alert/config".into())
        );
        assert!(
            !r.topics.iter().any(|t| t.starts_with("home/")
                || t.starts_with("a/")
                || t.contains("other_porch"))
        );
        assert_eq!(
            r.nodes.iter().map(String::as_str).collect::<Vec<_>>(),
            ["faceveil_evil", "faceveil_gate", "faceveil_porch"]
        );
    }

    #[test]
    fn an_alert_turns_on_with_a_match_and_off_after_the_delay() {
        let t0 = Instant::now();
        let mut a = Announcer::new(disc(), &["porch".into()]);
        let c = a.connected();
        assert_eq!(c[0], retained(disc().availability, "online"));
        assert_eq!(c.len(), 1 + 2 + 1, "{c:?}");
        assert_eq!(c[3], retained("faceveil/porch/alert".into(), "OFF"));
        // a camera seen the first time is announced once
        assert_eq!(a.seen("gate").unwrap().len(), 3);
        assert!(a.seen("gate").unwrap().is_empty());
        assert!(a.seen("porch").unwrap().is_empty());
        assert_eq!(a.next_off(), None);

        let m = a.matched("gate", Some("obama"), t0);
        assert_eq!(
            m,
            [
                retained("faceveil/gate/alert".into(), "ON"),
                retained("faceveil/gate/last-identified".into(), "obama"),
            ]
        );
        assert_eq!(a.next_off(), Some(t0 + Duration::from_secs(30)));
        assert!(a.expire(t0 + Duration::from_secs(29)).is_empty());
        // a second match keeps it on longer
        a.matched("gate", None, t0 + Duration::from_secs(20));
        assert!(a.expire(t0 + Duration::from_secs(31)).is_empty());
        assert_eq!(
            a.expire(t0 + Duration::from_secs(50)),
            [retained("faceveil/gate/alert".into(), "OFF")]
        );
        assert_eq!(a.next_off(), None);
        // a reconnection announces both cameras again, with the last label
        let c = a.connected();
        assert!(c.contains(&retained("faceveil/gate/last-identified".into(), "obama")));
        assert_eq!(c.len(), 1 + 3 + 4);

        // stopping turns alerts off, then says offline
        a.matched("porch", Some("obama"), Instant::now());
        assert_eq!(
            a.close(),
            [
                retained("faceveil/porch/alert".into(), "OFF"),
                retained(disc().availability, "offline"),
            ]
        );
    }

    #[test]
    fn cameras_beyond_the_limit_get_no_entities_and_one_warning() {
        let mut a = Announcer::new(disc(), &[]);
        for i in 0..MAX_CAMERAS {
            assert!(!a.seen(&format!("c{i}")).unwrap().is_empty());
        }
        let e = a.seen("one-more").unwrap_err();
        assert!(e.contains("256 cameras"), "{e}");
        assert!(a.seen("and-another").unwrap().is_empty());
        assert!(
            a.matched("one-more", Some("obama"), Instant::now())
                .is_empty()
        );
    }
}
