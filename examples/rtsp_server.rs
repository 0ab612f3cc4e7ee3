// SPDX-License-Identifier: MIT
//! A test camera: serves a still photo as a live H.264 RTSP stream on 127.0.0.1, with
//! gst-rtsp-server. The RTSP tests and pipelines/rtsp.sh use it; stop it with Ctrl-C or a signal.
//!
//! ```text
//! cargo run --example rtsp_server -- --port 8554 PHOTO    # rtsp://127.0.0.1:8554/cam
//! ```

use gst_rtsp_server::prelude::*;

/// A test camera: a still photo as a live H.264 RTSP stream on 127.0.0.1.
#[derive(clap::Parser)]
#[command(name = "rtsp_server")]
struct Args {
    /// TCP port to listen on (127.0.0.1 only); the stream is rtsp://127.0.0.1:PORT/cam
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// The photo to serve (any format decodebin reads)
    photo: std::path::PathBuf,
}

fn main() {
    let Args { port, photo } = <Args as clap::Parser>::parse();
    if let Err(e) = std::fs::File::open(&photo).and_then(|f| {
        if f.metadata()?.is_file() {
            Ok(())
        } else {
            Err(std::io::Error::other("not a regular file"))
        }
    }) {
        eprintln!("rtsp_server: {}: {e}", photo.display());
        std::process::exit(2);
    }
    let photo = photo.display().to_string();
    gst::init().expect("GStreamer");
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    // One shared live stream for every client: the photo at 10 fps, a key frame every second.
    factory.set_launch(&format!(
        "( filesrc location=\"{photo}\" ! decodebin ! imagefreeze is-live=true ! videoconvert ! videoscale \
         ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=10/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 )"
    ));
    factory.set_shared(true);
    server
        .mount_points()
        .expect("mount points")
        .add_factory("/cam", factory);
    let _id = server
        .attach(None)
        .expect("attach the RTSP server (port in use?)");
    println!("rtsp://127.0.0.1:{port}/cam");
    main_loop.run();
}
