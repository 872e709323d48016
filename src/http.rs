//! Plain HTTP/1.0 GETs on loopback or a private network: the rollout's health probes and
//! Prometheus queries, a template registry served as a static site. No TLS.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// An `http://HOST:PORT/PATH` URL, split once at validation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("`{url}` is not an http:// URL (gantry speaks plain HTTP here)")
        })?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
        let port_of = |port: &str| {
            port.parse::<u16>()
                .map_err(|_| format!("`{port}` in `{url}` is not a port"))
        };
        let (host, port) = if authority.starts_with('[') {
            let end = authority
                .find(']')
                .ok_or_else(|| format!("`{url}` is not a URL"))?;
            let (host, after) = authority.split_at(end + 1);
            match after.strip_prefix(':') {
                Some(port) => (host, port_of(port)?),
                None if after.is_empty() => (host, 80),
                None => return Err(format!("`{url}` is not a URL")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port_of(port)?),
                None => (authority, 80),
            }
        };
        if host.is_empty() || host.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
            return Err(format!("`{url}` is not a URL gantry can reach"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

pub fn connect(url: &HttpUrl, timeout: Duration) -> Result<TcpStream, String> {
    let address = (url.host.trim_matches(['[', ']']), url.port)
        .to_socket_addrs()
        .map_err(|error| format!("{url}: {error}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|error| format!("{url}: {error}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|error| format!("{url}: {error}"))?;
    Ok(stream)
}

/// A GET of `target` (a path and query) on `url`'s server: the status and the body, at most
/// `MAX_BODY` bytes. HTTP/1.0, so the body is never chunked and ends where the stream does.
pub fn get(url: &HttpUrl, target: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    const MAX_BODY: u64 = 16 << 20;
    let mut stream = connect(url, timeout)?;
    let request = format!(
        "GET {target} HTTP/1.0\r\nHost: {}:{}\r\nUser-Agent: gantry\r\n\r\n",
        url.host, url.port
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("{url}: {error}"))?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_BODY)
        .read_to_end(&mut answer)
        .map_err(|error| format!("{url}: {error}"))?;
    let code = status(&answer).ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let body = (answer.windows(4))
        .position(|window| window == b"\r\n\r\n")
        .map_or_else(Vec::new, |end| answer[end + 4..].to_vec());
    Ok((code, body))
}

/// `HTTP/1.1 200 OK` → 200.
#[must_use]
pub fn status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = HttpUrl::parse("http://127.0.0.1:8081/healthz").expect("url");
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 8081, "/healthz")
        );
        assert_eq!(
            HttpUrl::parse("http://localhost").expect("url").to_string(),
            "http://localhost:80/"
        );
        assert_eq!(
            HttpUrl::parse("http://[::1]:9/x").expect("url").host,
            "[::1]"
        );
        for bad in [
            "https://x/",
            "http://:80/",
            "http://h:99999/",
            "ftp://x",
            "http://a b/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status(b"HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(status(b"HTTP/1.1"), None);
    }

    #[test]
    fn a_get_returns_the_body() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = [0u8; 256];
            let read = stream.read(&mut request).expect("read");
            stream
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{\"a\": 1}")
                .expect("write");
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}")).expect("url");
        let answer = get(&url, "/api?query=x%20y", Duration::from_secs(2)).expect("get");
        assert_eq!(answer, (200, b"{\"a\": 1}".to_vec()));
        let request = server.join().expect("server");
        assert!(
            request.starts_with("GET /api?query=x%20y HTTP/1.0\r\n"),
            "{request}"
        );
    }
}
