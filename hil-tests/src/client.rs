//! Minimal async HTTP/1.1 keep-alive client used by the load generator and the simulated devices
//! (plain HTTP only; `Content-Length` and chunked bodies). Not a general-purpose client.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A response with its body read completely.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// First header value by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection that reconnects on demand.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    /// Upper bound for a body (protects against a broken server).
    pub max_body: usize,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    /// A connection to `addr` (connects lazily).
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            max_body: 256 << 20,
        }
    }

    /// Sends a request and reads the whole response. A stale keep-alive connection is retried once.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let reused = self.stream.is_some();
        match self.try_request(method, path, headers, body).await {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.stream = None;
                self.try_request(method, path, headers, body).await
            }
            Err(e) => Err(e),
        }
    }

    async fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(bad("no connection"));
        };
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut out = req.into_bytes();
        out.extend_from_slice(body);
        let res = async {
            stream.get_mut().write_all(&out).await?;
            read_response(stream, method == "HEAD", self.max_body).await
        }
        .await;
        match res {
            Ok((r, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(r)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

async fn read_line(s: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    let n = s.read_line(&mut line).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn read_response(
    s: &mut BufReader<TcpStream>,
    head: bool,
    max: usize,
) -> io::Result<(Response, bool)> {
    let status_line = read_line(s).await?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("bad status line '{status_line}'")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(s).await?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let keep = version == "HTTP/1.1"
        && !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let mut body = Vec::new();
    if !(head || status == 204 || status == 304 || (100..200).contains(&status)) {
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let size_line = read_line(s).await?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    while !read_line(s).await?.is_empty() {}
                    break;
                }
                if body.len() + size > max {
                    return Err(bad("body too large"));
                }
                let start = body.len();
                body.resize(start + size, 0);
                s.read_exact(&mut body[start..]).await?;
                read_line(s).await?;
            }
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
            if len > max {
                return Err(bad("body too large"));
            }
            body.resize(len, 0);
            s.read_exact(&mut body).await?;
        } else {
            s.read_to_end(&mut body).await?;
            return Ok((
                Response {
                    status,
                    headers,
                    body,
                },
                false,
            ));
        }
    }
    Ok((
        Response {
            status,
            headers,
            body,
        },
        keep,
    ))
}

/// Splits `http://host:port/path?q` into (`host:port`, `/path?q`).
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn split() {
        assert_eq!(
            super::split_url("http://127.0.0.1:8080/a/b?c=1"),
            Some(("127.0.0.1:8080", "/a/b?c=1"))
        );
        assert_eq!(super::split_url("http://h"), Some(("h", "/")));
        assert_eq!(super::split_url("https://h/x"), None);
    }
}
