// SPDX-License-Identifier: MIT
//! Shared helpers for the integration tests: plugin registration, test photos, running pipelines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;
use gstfaceveil::engine::embedder::model_id;
use gstfaceveil::engine::manifest::{ModelSpec, Task};
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::store::save;
use gstfaceveil::engine::watchlist::{Descriptor, Identity, Role, Watchlist};

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfaceveil::plugin_register_static().expect("register faceveil plugin");
    });
}

/// Fails clearly when the set-up has not been run, instead of a confusing error deep in a pipeline.
pub fn require_runtime() {
    init();
    if let Err(e) = gstfaceveil::engine::runtime::environment() {
        panic!("{e}\nRun scripts/setup.sh first (scripts/test.sh does).");
    }
}

pub fn photo(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/photos")
        .join(name);
    assert!(p.is_file(), "{} missing: run scripts/setup.sh", p.display());
    p
}

/// What a pipeline run produced.
#[derive(Debug, Default)]
pub struct Run {
    pub buffers: Vec<gst::Buffer>,
    pub element_messages: Vec<gst::Structure>,
    /// Warnings on the bus, each as "<message> (<debug>)".
    pub warnings: Vec<String>,
    /// The error on the bus, as "<message> (<debug>)": always `None` from [`run_pipeline`], always
    /// `Some` from [`run_failing`].
    pub error: Option<String>,
    /// The state change to PLAYING failed.
    pub start_failed: bool,
    /// The `stats` of each element that has them, by element name, read at the end of the run.
    pub stats: Vec<(String, gst::Structure)>,
}

impl Run {
    /// The `stats` of the element named `name` at the end of the run.
    pub fn stats(&self, name: &str) -> &gst::Structure {
        (self.stats.iter())
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no stats of an element {name}"))
    }
}

/// How long a test pipeline may take to reach EOS (or an error) before the test fails as hung.
pub const PIPELINE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `desc` (which must end in `appsink name=sink` or another sink) to EOS and collects what
/// reached the appsink named `sink`, plus element messages and warnings. The test fails on an error
/// on the bus, on a failed start, and when no EOS comes within [`PIPELINE_TIMEOUT`]: a hung or
/// broken pipeline never passes a test that expects nothing to happen.
pub fn run_pipeline(desc: &str) -> Run {
    let run = run_to_end(desc);
    assert!(
        run.error.is_none() && !run.start_failed,
        "{desc}: {}",
        run.error
            .as_deref()
            .unwrap_or("the state change to PLAYING failed")
    );
    run
}

/// Runs `desc`, which must fail: returns the run with its `error` (and whether the start failed).
/// The test fails when it reaches EOS without an error, or hangs past [`PIPELINE_TIMEOUT`].
pub fn run_failing(desc: &str) -> Run {
    let run = run_to_end(desc);
    assert!(run.error.is_some(), "{desc}: ended without an error");
    run
}

/// Runs `desc` to EOS or its first error; panics when neither comes in time.
fn run_to_end(desc: &str) -> Run {
    init();
    let pipeline = launch(desc);
    let collected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(sink) = pipeline.by_name("sink")
        && let Ok(appsink) = sink.downcast::<gst_app::AppSink>()
    {
        appsink.set_property("sync", false);
        let c = collected.clone();
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    c.lock().unwrap().push(sample.buffer_owned().unwrap());
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let mut run = Run::default();
    let bus = pipeline.bus().unwrap();
    if pipeline.set_state(gst::State::Playing).is_err() {
        run.start_failed = true;
    }
    let deadline = std::time::Instant::now() + PIPELINE_TIMEOUT;
    let mut ended = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            break;
        };
        use gst::MessageView;
        match msg.view() {
            MessageView::Eos(_) => {
                ended = true;
                break;
            }
            MessageView::Error(e) => {
                run.error = Some(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                ended = true;
                break;
            }
            MessageView::Warning(w) => run.warnings.push(format!(
                "{} ({})",
                w.error(),
                w.debug().map(|d| d.to_string()).unwrap_or_default()
            )),
            MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    run.element_messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    for e in pipeline.iterate_recurse().into_iter().flatten() {
        if e.find_property("stats")
            .is_some_and(|p| p.value_type() == gst::Structure::static_type())
        {
            run.stats
                .push((e.name().to_string(), e.property::<gst::Structure>("stats")));
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        ended,
        "{desc}: neither EOS nor an error within {PIPELINE_TIMEOUT:?}: the pipeline hung"
    );
    std::thread::sleep(Duration::from_millis(1));
    run.buffers = std::mem::take(&mut *collected.lock().unwrap());
    run
}

/// Fails the test (after stopping `pipeline`) if its bus holds an error; other messages are
/// dropped.
fn fail_on_bus_error(pipeline: &gst::Pipeline, bus: &gst::Bus) {
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            pipeline.set_state(gst::State::Null).unwrap();
            panic!("error on the bus: {} {:?}", e.error(), e.debug());
        }
    }
}

/// `filesrc ! decodebin ! videoconvert ! <caps>`: a still photo as one raw frame.
pub fn photo_src(name: &str, caps: &str) -> String {
    format!(
        "filesrc location={} ! decodebin ! videoconvert ! {caps}",
        photo(name).display()
    )
}

/// Faces (with the embedder's part) of a single photo through
/// `veildetect ! veilembed <props>`.
pub fn embed_photo(name: &str, caps: &str, props: &str) -> Vec<gstfaceveil::meta::Face> {
    require_runtime();
    let run = run_pipeline(&format!(
        "{} ! veildetect ! veilembed {props} ! appsink name=sink",
        photo_src(name, caps)
    ));
    assert_eq!(run.buffers.len(), 1);
    gstfaceveil::meta::faces(&run.buffers[0])
}

/// The descriptor of the only (or the best) face of a photo.
pub fn descriptor(name: &str, caps: &str) -> Vec<f32> {
    let faces = embed_photo(name, caps, "");
    faces
        .first()
        .and_then(|f| f.embedding.as_ref())
        .and_then(|e| e.vector.clone())
        .unwrap_or_else(|| panic!("{name}: no descriptor"))
}

pub fn embedder_spec() -> gstfaceveil::engine::manifest::ModelSpec {
    use gstfaceveil::engine::manifest::{ModelSpec, Task};
    ModelSpec::resolve(None, Task::Embedder).expect("embedder model (run scripts/setup.sh)")
}

/// An example binary of this crate (`cargo test` builds the examples beside the test binaries).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        p.is_file(),
        "{} missing: cargo test builds the examples",
        p.display()
    );
    p
}

/// The folder where this test build put the plugin (`libgstfaceveil.so`, from `cargo build --lib`).
pub fn plugin_dir() -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        dir.join("libgstfaceveil.so").is_file(),
        "{} has no libgstfaceveil.so: run cargo build --lib first (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Resident memory of this process, in kB.
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test camera (examples/rtsp_server) serving `photo` on `port`; waits until it listens.
pub struct RtspCamera(std::process::Child);

impl RtspCamera {
    pub fn start(port: u16, photo_name: &str) -> RtspCamera {
        let child = std::process::Command::new(example("rtsp_server"))
            .args(["--port", &port.to_string()])
            .arg(photo(photo_name))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "RTSP test camera did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RtspCamera(child)
    }

    /// The server's process (to freeze it with SIGSTOP, as a hung camera).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn url(port: u16) -> String {
        format!("rtsp://127.0.0.1:{port}/cam")
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceveil-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the `faceveil` CLI on `list`; returns the exit code and stdout + stderr.
pub fn cli(list: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(list)
        .args(args)
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Runs the CLI and requires success; returns its output.
pub fn cli_ok(list: &std::path::Path, args: &[&str]) -> String {
    let (code, text) = cli(list, args);
    assert_eq!(code, 0, "faceveil {args:?}: {text}");
    text
}

/// The generation `faceveil verify` reports for `list`.
pub fn generation(list: &std::path::Path) -> u64 {
    let v = cli_ok(list, &["verify"]);
    v.split("generation ")
        .nth(1)
        .and_then(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no generation in {v}"))
}

/// `<dir>/w.fvl`, a new list with obama enrolled from obama.jpg.
pub fn obama_list(dir: &std::path::Path) -> PathBuf {
    let list = dir.join("w.fvl");
    cli_ok(&list, &["init"]);
    cli_ok(
        &list,
        &[
            "enroll",
            "--label",
            "obama",
            photo("obama.jpg").to_str().unwrap(),
        ],
    );
    list
}

/// Branches feeding a `concat name=c`: 640x480 I420 at 10 fps, `frames` frames of each photo.
fn segments_into_concat(segments: &[(&str, usize)]) -> String {
    segments
        .iter()
        .map(|(p, n)| {
            format!(
                " filesrc location=\"{}\" ! decodebin ! imagefreeze num-buffers={n} ! videoconvert ! videoscale ! videorate \
                 ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=10/1 ! c.",
                photo(p).display()
            )
        })
        .collect()
}

/// An H.264 MP4 of 640x480 segments at 10 fps, `frames` frames of each photo.
pub fn clip(dir: &std::path::Path, segments: &[(&str, usize)]) -> PathBuf {
    let out = dir.join("clip.mp4");
    run_pipeline(&format!(
        "concat name=c ! x264enc tune=zerolatency ! mp4mux ! filesink location=\"{}\" {}",
        out.display(),
        segments_into_concat(segments)
    ));
    out
}

/// The same segments (raw, no encoding) through `veildetect ! veilembed ! veilmatch` with
/// `list` and the matcher's `props`.
pub fn watch_segments(segments: &[(&str, usize)], list: &std::path::Path, props: &str) -> Run {
    require_runtime();
    run_pipeline(&format!(
        "concat name=c ! veildetect ! veilembed reembed-interval=2 ! veilmatch name=fw watchlist=\"{}\" {props} \
         ! appsink name=sink {}",
        list.display(),
        segments_into_concat(segments)
    ))
}

/// `gst::parse::launch` of a whole pipeline.
pub fn launch(desc: &str) -> gst::Pipeline {
    gst::parse::launch(desc)
        .unwrap_or_else(|e| panic!("parse {desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// The element named `name` in `pipeline`, as type `T` (an AppSrc, an AppSink, …).
pub fn child<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> T {
    pipeline
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"))
        .downcast::<T>()
        .unwrap_or_else(|_| panic!("{name} has another type"))
}

// ---- Stand-ins that need no ONNX Runtime: a fake embedder model and synthetic descriptors ----

const DIM: usize = 128;

/// A stand-in embedder model: the real manifest (without its mean file, so scores are plain cosine)
/// beside a file that is not a network. `faceveil` only hashes the model and reads its manifest.
pub fn fake_model(dir: &Path) -> PathBuf {
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/dlib_resnet.toml"),
    )
    .unwrap();
    let manifest: String = manifest
        .lines()
        .filter(|l| !l.starts_with("mean-file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("fake.toml"), manifest).unwrap();
    let model = dir.join("fake.onnx");
    std::fs::write(&model, b"a stand-in for the embedder model").unwrap();
    model
}

pub fn fake_model_id(model: &Path) -> String {
    model_id(&ModelSpec::resolve(Some(model), Task::Embedder).unwrap()).unwrap()
}

/// A deterministic unit vector per seed (different seeds are nearly orthogonal in 128 dimensions).
pub fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

/// `unit(seed)` moved by `amount` toward `unit(noise)`: the same person on another frame.
pub fn near(seed: u64, noise: u64, amount: f32) -> Vec<f32> {
    unit(seed)
        .iter()
        .zip(unit(noise))
        .map(|(a, b)| a + amount * b)
        .collect()
}

/// A list of `people` (label, seed of their descriptor) under `key`, written as the library does.
pub fn write_list(path: &Path, model_id: &str, people: &[(&str, u64)], key: [u8; 32]) {
    let mut list = Watchlist::new();
    for (label, seed) in people {
        list.identities.push(Identity {
            id: format!("id-{label}"),
            label: label.to_string(),
            note: None,
            added_by: "harness".into(),
            added_at: 0,
            expires_at: None,
            suspended: false,
            role: Role::Listed,
            descriptors: vec![Descriptor {
                model_id: model_id.into(),
                vector: unit(*seed),
            }],
        });
    }
    save(path, &mut list, &Secret::Key(key)).unwrap();
}

// ---- Moving faces: synthetic 640x480 RGB frames with photos pasted where a function says ----

/// A photo scaled to `w`×`h`, as packed RGB rows.
pub struct Sprite {
    pub rgb: Vec<u8>,
    pub w: usize,
    pub h: usize,
}

/// `name` scaled to `w`×`h` (no borders).
pub fn sprite(name: &str, w: usize, h: usize) -> Sprite {
    let run = run_pipeline(&format!(
        "{} ! videoscale add-borders=false ! video/x-raw,format=RGB,width={w},height={h} ! appsink name=sink",
        photo_src(name, "video/x-raw")
    ));
    let map = run.buffers[0].map_readable().unwrap();
    // videoconvert output for RGB has 4-aligned rows
    let stride = (w * 3).div_ceil(4) * 4;
    let rgb = (0..h)
        .flat_map(|y| map[y * stride..y * stride + w * 3].to_vec())
        .collect();
    Sprite { rgb, w, h }
}

/// Size of the frames of [`moving_frames`].
pub const MOVING_W: usize = 640;
pub const MOVING_H: usize = 480;

/// `frames` 640x480 RGB frames (rows 4-aligned): a grey background with sprite `k` pasted at
/// `pos(frame, k)` (its top-left corner; it must fit).
pub fn moving_frames(
    sprites: &[Sprite],
    frames: usize,
    pos: impl Fn(usize, usize) -> (usize, usize),
) -> Vec<Vec<u8>> {
    let stride = (MOVING_W * 3).div_ceil(4) * 4;
    (0..frames)
        .map(|n| {
            let mut frame = vec![90u8; stride * MOVING_H];
            for (k, s) in sprites.iter().enumerate() {
                let (x0, y0) = pos(n, k);
                for y in 0..s.h {
                    let dst = (y0 + y) * stride + x0 * 3;
                    frame[dst..dst + s.w * 3]
                        .copy_from_slice(&s.rgb[y * s.w * 3..(y + 1) * s.w * 3]);
                }
            }
            frame
        })
        .collect()
}

/// Pushes [`moving_frames`] at 25 fps through `appsrc ! <middle> ! appsink`; returns what came out
/// and the pipeline (at EOS, for reading stats; the caller sets it to NULL). The test fails on an
/// error on the bus and when no EOS comes within [`PIPELINE_TIMEOUT`].
pub fn push_frames(middle: &str, frames: Vec<Vec<u8>>) -> (Vec<gst::Buffer>, gst::Pipeline) {
    let buffers = frames
        .into_iter()
        .enumerate()
        .map(|(n, frame)| {
            let mut buf = gst::Buffer::from_mut_slice(frame);
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * n as u64));
            buf
        })
        .collect();
    push_buffers(middle, buffers)
}

/// [`push_frames`] of buffers made by the caller (frames of [`moving_frames`]' size and format,
/// with their timestamps and whatever metadata the test puts on them).
pub fn push_buffers(middle: &str, buffers: Vec<gst::Buffer>) -> (Vec<gst::Buffer>, gst::Pipeline) {
    let pipeline = launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={MOVING_W},height={MOVING_H},framerate=25/1 \
         ! {middle} ! appsink name=sink sync=false"
    ));
    let src = child::<gst_app::AppSrc>(&pipeline, "src");
    let sink = child::<gst_app::AppSink>(&pipeline, "sink");
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for buf in buffers {
        src.push_buffer(buf).unwrap();
    }
    src.end_of_stream().unwrap();
    let deadline = std::time::Instant::now() + PIPELINE_TIMEOUT;
    let mut out = Vec::new();
    loop {
        // An element that failed pushes nothing more, EOS included: look at the bus meanwhile.
        fail_on_bus_error(&pipeline, &bus);
        if let Some(s) = sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            out.push(s.buffer_owned().unwrap());
        } else if sink.is_eos() {
            break;
        } else if std::time::Instant::now() > deadline {
            pipeline.set_state(gst::State::Null).unwrap();
            panic!("{middle}: no EOS within {PIPELINE_TIMEOUT:?}: the pipeline hung");
        }
    }
    fail_on_bus_error(&pipeline, &bus);
    (out, pipeline)
}

/// A test camera in this process whose stream shows `photo` for `on`, then a blank grey frame for
/// `off`, over and over: every showing is a new visit (a new track), so a listed face alerts again
/// on each one, and the alerts stop once the face is no longer listed. Serves
/// rtsp://127.0.0.1:PORT/cam (see [`RtspCamera::url`]) like [`RtspCamera`]; stops when dropped.
pub struct BlinkingCamera {
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlinkingCamera {
    pub fn start(port: u16, photo_name: &str, on: Duration, off: Duration) -> BlinkingCamera {
        use gst_rtsp_server::prelude::*;
        init();
        let photo = photo(photo_name);
        let context = gst::glib::MainContext::new();
        let main_loop = gst::glib::MainLoop::new(Some(&context), false);
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        // `blank`: passthrough while the face shows; contrast and saturation 0 make a flat frame.
        factory.set_launch(&format!(
            "( filesrc location=\"{}\" ! decodebin ! imagefreeze is-live=true ! videoconvert \
             ! videoscale ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=10/1 \
             ! videobalance name=blank ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
             ! rtph264pay name=pay0 pt=96 )",
            photo.display()
        ));
        factory.set_shared(true);
        factory.connect_media_configure(move |_, media| {
            let Some(blank) = media
                .element()
                .downcast::<gst::Bin>()
                .ok()
                .and_then(|b| b.by_name("blank"))
            else {
                return;
            };
            let blank = blank.downgrade();
            std::thread::spawn(move || {
                let mut showing = true;
                loop {
                    std::thread::sleep(if showing { on } else { off });
                    let Some(b) = blank.upgrade() else { return };
                    showing = !showing;
                    let v = if showing { 1.0f64 } else { 0.0 };
                    b.set_property("contrast", v);
                    b.set_property("saturation", v);
                }
            });
        });
        server
            .mount_points()
            .expect("mount points")
            .add_factory("/cam", factory);
        let (tx, rx) = std::sync::mpsc::channel();
        let (ctx, ml) = (context.clone(), main_loop.clone());
        let thread = std::thread::spawn(move || {
            ctx.with_thread_default(|| {
                // The source lives as long as the context: it goes with the thread.
                let _id = server.attach(Some(&ctx)).inspect(|_| {
                    let _ = tx.send(true);
                });
                ml.run();
            })
            .expect("main context");
        });
        assert!(
            rx.recv().unwrap_or(false),
            "attach the RTSP server (port in use?)"
        );
        BlinkingCamera {
            main_loop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlinkingCamera {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The test stand-in for the service's system user `faceveil` of docs/NVR.md (a test never
/// touches a real deployment's account): a system user with a group of the same name.
pub const SERVICE_USER: &str = "faceveil-test";

/// [`SERVICE_USER`], made as NVR.md makes `faceveil` when it is missing (another test may make it
/// at the same time): its uid and gid. `None` (with the reason printed) when not root.
pub fn faceveil_service_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: creating the service user and running as it needs root");
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = std::process::Command::new("id")
            .args([flag, SERVICE_USER])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        // Exit 9: made meanwhile by another test. Debian's useradd makes the group of the name.
        let status = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                SERVICE_USER,
            ])
            .status()
            .unwrap();
        assert!(matches!(status.code(), Some(0 | 9)), "useradd: {status}");
    }
    Some((id("-u").unwrap(), id("-g").unwrap()))
}

/// Polls `done` every 200 ms until it holds or `timeout` has passed; whether it held at the end.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done()
}

/// The `faceveil-match` lines of an events file (none while it does not exist).
pub fn matches_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"event\":\"faceveil-match\""))
        .count()
}

/// obama2 (on the list) beside biden (not) moving a little, 12 frames of 640x480 pushed through
/// `middle` (a pipeline description between appsrc and appsink).
pub fn obama_and_biden_through(middle: &str) -> Vec<gst::Buffer> {
    let sprites = [
        sprite("obama2.jpg", 240, 300),
        sprite("biden.jpg", 200, 300),
    ];
    let frames = moving_frames(&sprites, 12, |_, k| [(30, 90), (380, 90)][k]);
    let (out, pipeline) = push_frames(middle, frames);
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

/// A field of a message that is an array, as `T`s.
pub fn array<T: for<'a> gst::glib::value::FromValue<'a> + 'static>(
    s: &gst::StructureRef,
    f: &str,
) -> Vec<T> {
    s.get::<gst::ArrayRef>(f)
        .unwrap_or_else(|e| panic!("{f}: {e} in {s}"))
        .iter()
        .map(|v| v.get::<T>().unwrap())
        .collect()
}
