//! A small threaded HTTP/1.1 test server (one request per connection) with Range/If-Range,
//! ETag, cut-after-N-bytes, throttling and request recording.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server does; change it between requests through [`Server::set`].
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// path → (status, body, etag)
    pub routes: HashMap<String, (u16, Vec<u8>, Option<String>)>,
    /// Cut the next N responses after this many body bytes (connection closed).
    pub cuts: Vec<usize>,
    /// Answer Range requests with 200 and the whole body.
    pub ignore_range: bool,
    /// Sleep this long after every `throttle_chunk` bytes.
    pub throttle: Option<(usize, Duration)>,
    /// path → `Location` of a `302 Found`.
    pub redirects: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub struct Server {
    pub port: u16,
    host: String,
    behaviour: Arc<Mutex<Behaviour>>,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(behaviour: Behaviour) -> Self {
        Self::start_at("127.0.0.1", behaviour)
    }

    /// On another loopback address (e.g. `127.0.0.2`: another host for redirect tests).
    pub fn start_at(host: &str, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind((host, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, r, s) = (behaviour.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (b, r) = (b.clone(), r.clone());
                        std::thread::spawn(move || {
                            let _ = serve(stream, &b, &r);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            host: host.to_owned(),
            behaviour,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.host, self.port)
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().expect("lock"));
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    behaviour: &Mutex<Behaviour>,
    requests: &Mutex<Vec<Recorded>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    requests.lock().expect("lock").push(Recorded {
        method,
        path: path.clone(),
        headers: headers.clone(),
        body,
    });

    let (route, cut, ignore_range, throttle, redirect) = {
        let mut b = behaviour.lock().expect("lock");
        let key = path.split('?').next().unwrap_or("");
        let route = b.routes.get(key).cloned();
        let redirect = b.redirects.get(key).cloned();
        let cut = if b.cuts.is_empty() {
            None
        } else {
            Some(b.cuts.remove(0))
        };
        (route, cut, b.ignore_range, b.throttle, redirect)
    };
    let mut out = stream;
    if let Some(location) = redirect {
        write!(
            out,
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    }
    let Some((status, data, etag)) = route else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    };
    if status != 200 {
        write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            data.len()
        )?;
        out.write_all(&data)?;
        return Ok(());
    }
    let etag_hdr = etag
        .as_ref()
        .map(|e| format!("ETag: {e}\r\n"))
        .unwrap_or_default();
    let range_start = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    let if_range_ok = match (headers.get("if-range"), &etag) {
        (Some(given), Some(e)) => given == e,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let total = data.len();
    let (head, slice) = match range_start {
        Some(start) if !ignore_range && if_range_ok => {
            if start >= total {
                let head = format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\n{etag_hdr}Connection: close\r\n\r\n"
                );
                out.write_all(head.as_bytes())?;
                return Ok(());
            }
            (
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{total}\r\nContent-Length: {}\r\n{etag_hdr}Connection: close\r\n\r\n",
                    total - 1,
                    total - start
                ),
                &data[start..],
            )
        }
        _ => (
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n{etag_hdr}Accept-Ranges: bytes\r\nConnection: close\r\n\r\n"
            ),
            &data[..],
        ),
    };
    out.write_all(head.as_bytes())?;
    let send = cut.map_or(slice.len(), |c| c.min(slice.len()));
    match throttle {
        Some((chunk, pause)) => {
            for piece in slice[..send].chunks(chunk.max(1)) {
                out.write_all(piece)?;
                out.flush()?;
                std::thread::sleep(pause);
            }
        }
        None => out.write_all(&slice[..send])?,
    }
    out.flush()?;
    if cut.is_some() {
        let _ = out.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

/// A minimal HTTP CONNECT proxy: records each `CONNECT host:port` and tunnels to it.
pub struct ConnectProxy {
    pub port: u16,
    pub targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = tunnel(client, &seen);
                });
            }
        });
        Self { port, targets }
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim_end().is_empty() {
            break;
        }
    }
    seen.lock().expect("lock").push(target.clone());
    let upstream = TcpStream::connect(&target)?;
    let mut c = client;
    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut up_r, mut up_w) = (upstream.try_clone()?, upstream);
    let mut c_w = c.try_clone()?;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut c_w);
        let _ = c_w.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut reader, &mut up_w);
    let _ = up_w.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
    Ok(())
}
