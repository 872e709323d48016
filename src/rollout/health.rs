//! The rollout's health probe: a GET of the new pool's health URL, straight to it, not
//! through the traffic backend; healthy on a 2xx answer.

use std::io::{Read, Write};
use std::time::Duration;

use crate::http::{HttpUrl, connect, status};

/// One probe: the status code, or why there was none.
pub fn probe(url: &HttpUrl, timeout: Duration) -> Result<u16, String> {
    let mut stream = connect(url, timeout)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: gantry-rollout\r\nConnection: close\r\n\r\n",
        url.path, url.host, url.port
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("{url}: {error}"))?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(count) => read += count,
            Err(error) => return Err(format!("{url}: {error}")),
        }
    }
    status(&head[..read]).ok_or_else(|| format!("{url}: not an HTTP answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_server_answers_and_a_closed_port_does_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = [0u8; 256];
            let _ = stream.read(&mut request);
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .expect("write");
        });
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/healthz")).expect("url");
        assert_eq!(probe(&url, Duration::from_secs(2)), Ok(204));
        server.join().expect("server");
        assert!(probe(&url, Duration::from_secs(2)).is_err());
    }
}
