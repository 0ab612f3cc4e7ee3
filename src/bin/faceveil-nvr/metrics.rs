// SPDX-License-Identifier: MIT
//! The Prometheus endpoint of `faceveil-nvr` (docs/NVR.md, *Health*): `GET /metrics` on an address
//! of this machine's loopback, unless the configuration allows another one explicitly (nothing
//! leaves the machine unless configured). A plain HTTP/1.1 responder on one thread: one request per
//! connection, answered and closed; a client that says nothing for 2 s is dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::health::{Registry, prometheus};

/// The content type of the text exposition format 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The longest request head read.
const MAX_HEAD: usize = 8192;

/// The `metrics` address: an IP address and a port (`127.0.0.1:9750`, `[::1]:9750`), on the
/// loopback unless `allow_remote`.
pub fn parse_address(text: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        format!("'{text}' is not an address and port such as 127.0.0.1:9750 or [::1]:9750")
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "{addr} is not a loopback address: the metrics would be reachable from other \
             machines; use 127.0.0.1 or ::1, or allow it with metrics-allow-remote"
        ));
    }
    Ok(addr)
}

/// The answer to a request head: status line, content type and body.
fn answer(head: &str, registry: &Registry) -> (&'static str, &'static str, String) {
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next());
    let path = target.map(|t| t.split('?').next().unwrap_or_default());
    match (method, path) {
        ("GET" | "HEAD", Some("/metrics")) => {
            ("200 OK", CONTENT_TYPE, prometheus(&registry.snapshots()))
        }
        (_, Some("/metrics")) => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        (_, Some(_)) => ("404 Not Found", "text/plain", "see /metrics\n".into()),
        _ => ("400 Bad Request", "text/plain", "bad request\n".into()),
    }
}

/// Reads the request head (up to the blank line) and answers it.
fn respond(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let (status, content_type, body) = answer(&head, registry);
    let body = if head.starts_with("HEAD ") {
        ""
    } else {
        body.as_str()
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes())?;
    stream.flush()
}

/// Binds `addr` and answers scrapes on a thread of its own, for as long as the process runs.
/// Returns the address bound (its port, where 0 was asked).
pub fn serve(addr: SocketAddr, registry: Arc<Registry>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("metrics address {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        let _ = respond(s, &registry);
                    }
                    // Out of file descriptors, say: try again a little later.
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_unless_allowed() {
        assert!(parse_address("127.0.0.1:9750", false).is_ok());
        assert!(parse_address("[::1]:9750", false).is_ok());
        let e = parse_address("0.0.0.0:9750", false).unwrap_err();
        assert!(
            e.contains("not a loopback") && e.contains("metrics-allow-remote"),
            "{e}"
        );
        assert!(parse_address("192.0.2.1:9750", false).is_err());
        assert!(parse_address("192.0.2.1:9750", true).is_ok());
        let e = parse_address("localhost:9750", false).unwrap_err();
        assert!(e.contains("127.0.0.1:9750"), "{e}");
        assert!(parse_address("127.0.0.1", false).is_err());
    }

    #[test]
    fn answers_get_metrics_and_nothing_else() {
        let r = Registry::default();
        r.camera("door");
        let (status, ctype, body) = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        assert_eq!((status, ctype), ("200 OK", CONTENT_TYPE));
        assert!(
            body.contains("faceveil_camera_up{camera=\"door\"} 0"),
            "{body}"
        );
        assert_eq!(answer("GET /metrics?x=1 HTTP/1.1\r\n\r\n", &r).0, "200 OK");
        assert_eq!(answer("GET / HTTP/1.1\r\n\r\n", &r).0, "404 Not Found");
        assert_eq!(
            answer("POST /metrics HTTP/1.1\r\n\r\n", &r).0,
            "405 Method Not Allowed"
        );
        assert_eq!(answer("", &r).0, "400 Bad Request");
    }
}
