//! A small HTTP/1.1 proxy on 127.0.0.1 between vhdprep and Azurite that injects the faults
//! users meet (a dropped connection, 503 with Retry-After, a stall) on a seeded schedule, and
//! counts and checks what passes: the bytes of every Put Page forwarded, and whether each
//! body matches its Content-MD5 (Azurite does not check it; Azure does).
//!
//! One request per connection: the proxy answers with `Connection: close`, which the SDK's
//! HTTP client handles as any server closing an idle keep-alive connection.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Answer 503 Server Busy with `Retry-After: 1`.
    Busy,
    /// Read the request and answer nothing for this long, then close.
    Stall(Duration),
}

/// Fault probabilities (per mille) and the seed of their schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub seed: u64,
    pub drop_permille: u64,
    pub busy_permille: u64,
    pub stall_permille: u64,
    pub stall: Duration,
}

impl Schedule {
    /// No faults.
    pub fn clean() -> Self {
        Schedule {
            seed: 1,
            drop_permille: 0,
            busy_permille: 0,
            stall_permille: 0,
            stall: Duration::ZERO,
        }
    }
}

/// What went through.
#[derive(Debug, Default)]
pub struct Stats {
    /// Body bytes of Put Page requests forwarded to the service.
    pub put_page_bytes: AtomicU64,
    /// Put Page requests forwarded.
    pub put_pages: AtomicU64,
    /// Put Page bodies whose MD5 differed from their Content-MD5 header (or had none).
    pub md5_mismatches: AtomicU64,
    /// Faults injected.
    pub faults: AtomicU64,
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    pub port: u16,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy to `upstream_port` on 127.0.0.1.
    pub fn start(upstream_port: u16, schedule: Schedule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(Mutex::new(schedule.seed | 1));
        let (s2, st2) = (stats.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let fault = {
                            let mut x = rng.lock().unwrap();
                            *x ^= *x << 13;
                            *x ^= *x >> 7;
                            *x ^= *x << 17;
                            let roll = *x % 1000;
                            if roll < schedule.drop_permille {
                                Fault::Drop
                            } else if roll < schedule.drop_permille + schedule.busy_permille {
                                Fault::Busy
                            } else if roll
                                < schedule.drop_permille
                                    + schedule.busy_permille
                                    + schedule.stall_permille
                            {
                                Fault::Stall(schedule.stall)
                            } else {
                                Fault::Pass
                            }
                        };
                        let stats = s2.clone();
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream_port, fault, &stats);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { port, stats, stop }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request head and body from `c`.
fn read_request(c: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.read(&mut byte)?;
        if n == 0 || buf.len() > 1 << 20 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = c.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&byte[..n]);
    }
    Ok((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(mut c: TcpStream, upstream: u16, fault: Fault, stats: &Stats) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (head, body) = read_request(&mut c)?;
    let put_page =
        head.starts_with("PUT ") && head.lines().next().unwrap_or("").contains("comp=page");
    match fault {
        Fault::Pass => {}
        Fault::Drop => {
            stats.faults.fetch_add(1, Ordering::Relaxed);
            let _ = c.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Busy => {
            stats.faults.fetch_add(1, Ordering::Relaxed);
            c.write_all(
                b"HTTP/1.1 503 Server Busy\r\nRetry-After: 1\r\nx-ms-error-code: ServerBusy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        Fault::Stall(d) => {
            stats.faults.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(d);
            let _ = c.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
    if put_page {
        let want = header(&head, "content-md5").unwrap_or("").to_string();
        let got = md5_base64(&body);
        if want != got {
            stats.md5_mismatches.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Forward with Connection: close, relay the whole answer, close.
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if put_page && answer.starts_with(b"HTTP/1.1 201") {
        stats
            .put_page_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        stats.put_pages.fetch_add(1, Ordering::Relaxed);
    }
    c.write_all(&answer)?;
    let _ = c.shutdown(Shutdown::Both);
    Ok(())
}

/// Base64 of the MD5 of `b` (RFC 1321, written out here so the proxy checks vhdprep's MD5s
/// with code that is not vhdprep's).
fn md5_base64(b: &[u8]) -> String {
    let d = md5(b);
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in d.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = input.to_vec();
    let bits = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, v) in [a0, b0, c0, d0].iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

#[test]
fn md5_matches_rfc_1321() {
    let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        hex(md5(b"The quick brown fox jumps over the lazy dog")),
        "9e107d9d372bb6826bd81d3542a419d6"
    );
    assert_eq!(md5_base64(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
}
