//! nginx, which has no runtime API in its open-source build: gantry owns the two `server`
//! lines of an upstream file that nginx.conf `include`s, writes it atomically and runs the
//! reload command (`nginx -s reload`: new workers take the new weights, old ones finish their
//! requests). Counts come from an access log in the `gantry` format,
//! `log_format gantry '$upstream_addr|$upstream_status';`, read from where it ended last time;
//! a pool is up while it accepts connections.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::atomic;
use crate::rollout::sprt::Counts;
use crate::rollout::tool::Tool;
use crate::rollout::traffic::{Pool, Pools, Traffic};

pub struct Nginx<'a> {
    pub upstream: PathBuf,
    pub stable: String,
    pub canary: String,
    pub access_log: PathBuf,
    pub reload: Tool<'a>,
    log: Log,
}

/// Where the access log was read to, and what it held so far.
#[derive(Default)]
struct Log {
    /// `None` until the first read, which starts at the log's end: history is not this
    /// rollout's traffic.
    at: Option<(u64, u64)>,
    stable: Counts,
    canary: Counts,
}

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

impl<'a> Nginx<'a> {
    #[must_use]
    pub fn new(
        upstream: PathBuf,
        stable: String,
        canary: String,
        access_log: PathBuf,
        reload: Tool<'a>,
    ) -> Self {
        Self {
            upstream,
            stable,
            canary,
            access_log,
            reload,
            log: Log::default(),
        }
    }

    fn upstream_text(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.upstream).map_err(|error| {
            format!(
                "cannot read the upstream file `{}`: {error}",
                self.upstream.display()
            )
        })
    }

    /// Counts the log lines written since the last read (whole lines only).
    fn tally(&mut self) -> Result<(), String> {
        let failed = |error: std::io::Error| {
            format!(
                "cannot read the access log `{}`: {error}",
                self.access_log.display()
            )
        };
        let mut file = File::open(&self.access_log).map_err(failed)?;
        let metadata = file.metadata().map_err(failed)?;
        let (inode, length) = (metadata.ino(), metadata.len());
        let from = match self.log.at {
            None => {
                self.log.at = Some((inode, length));
                return Ok(());
            }
            // Rotated or truncated: the new file is all new.
            Some((was, offset)) if was != inode || offset > length => 0,
            Some((_, offset)) => offset,
        };
        file.seek(SeekFrom::Start(from)).map_err(failed)?;
        let mut chunk = Vec::new();
        file.take(length - from)
            .read_to_end(&mut chunk)
            .map_err(failed)?;
        let whole = chunk
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |end| end + 1);
        let text = String::from_utf8_lossy(&chunk[..whole]);
        for line in text.lines() {
            count_line(line, &self.stable, &self.canary, &mut self.log);
        }
        self.log.at = Some((inode, from + whole as u64));
        Ok(())
    }
}

impl Traffic for Nginx<'_> {
    fn describe(&self) -> String {
        format!(
            "nginx upstream {} ({} stable, {} canary)",
            self.upstream.display(),
            self.stable,
            self.canary
        )
    }

    fn read(&mut self) -> Result<Pools, String> {
        let text = self.upstream_text()?;
        let (stable, canary) = weights(&text, &self.stable, &self.canary)
            .map_err(|error| format!("{}: {error}", self.upstream.display()))?;
        self.tally()?;
        Ok(Pools {
            stable: Pool {
                counts: self.log.stable,
                weight: stable,
                up: accepts(&self.stable),
                latency: None,
            },
            canary: Pool {
                counts: self.log.canary,
                weight: canary,
                up: accepts(&self.canary),
                latency: None,
            },
        })
    }

    fn set_weights(&mut self, stable: u32, canary: u32) -> Result<(), String> {
        let text = self.upstream_text()?;
        let rendered = render(&text, (&self.stable, stable), (&self.canary, canary));
        atomic::write(&self.upstream, rendered.as_bytes()).map_err(|error| {
            format!(
                "cannot write the upstream file `{}`: {error}",
                self.upstream.display()
            )
        })?;
        self.reload.run(&[]).map(drop)
    }

    /// Weight alone decides: a canary at weight 0 is `down` in the file.
    fn admit_canary(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The promoted file already marks the old stable `down`; nginx's old workers finish
    /// the requests they hold.
    fn drain_stable(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// A `server ADDRESS ...;` line's address, if the line is one.
fn server_address(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next()? == "server").then_some(())?;
    Some(words.next()?.trim_end_matches(';'))
}

/// The weights the file gives the two pools: `weight=N` (nginx's default 1), 0 when `down`
/// or absent. The stable must be there.
fn weights(text: &str, stable: &str, canary: &str) -> Result<(u32, u32), String> {
    let weight_of = |address: &str| -> Result<Option<u32>, String> {
        let Some(line) = text
            .lines()
            .find(|line| server_address(line) == Some(address))
        else {
            return Ok(None);
        };
        let mut weight = 1;
        for word in line.split_whitespace().skip(2) {
            let word = word.trim_end_matches(';');
            if word == "down" {
                return Ok(Some(0));
            }
            if let Some(value) = word.strip_prefix("weight=") {
                weight = value
                    .parse()
                    .map_err(|_| format!("`{word}` is not a weight"))?;
            }
        }
        Ok(Some(weight))
    };
    let found = weight_of(stable)?
        .ok_or_else(|| format!("no `server {stable}` line for the stable pool"))?;
    Ok((found, weight_of(canary)?.unwrap_or(0)))
}

/// The file with the two pools' lines rewritten (or added at the end) for the weights; every
/// other line, and every other parameter of theirs, as it was.
fn render(text: &str, stable: (&str, u32), canary: (&str, u32)) -> String {
    let line_for = |indent: &str, address: &str, weight: u32, kept: &[&str]| {
        let mut words = vec!["server".to_owned(), address.to_owned()];
        words.extend(kept.iter().map(|word| (*word).to_owned()));
        words.push(if weight == 0 {
            "down".to_owned()
        } else {
            format!("weight={weight}")
        });
        format!("{indent}{};", words.join(" "))
    };
    let mut seen = [false, false];
    let mut out = String::new();
    for line in text.lines() {
        let address = server_address(line);
        let pool = [stable, canary]
            .iter()
            .position(|(name, _)| Some(*name) == address);
        match pool {
            Some(index) if !seen[index] => {
                seen[index] = true;
                let (name, weight) = [stable, canary][index];
                let indent = &line[..line.len() - line.trim_start().len()];
                let kept: Vec<&str> = (line.split_whitespace().skip(2))
                    .map(|word| word.trim_end_matches(';'))
                    .filter(|word| {
                        !word.is_empty() && *word != "down" && !word.starts_with("weight=")
                    })
                    .collect();
                out.push_str(&line_for(indent, name, weight, &kept));
            }
            // A second line for the same pool would double its weight.
            Some(_) => continue,
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for (index, (name, weight)) in [stable, canary].into_iter().enumerate() {
        if !seen[index] {
            out.push_str(&line_for("", name, weight, &[]));
            out.push('\n');
        }
    }
    out
}

/// One access-log line, `ADDRESSES|STATUSES`: every upstream tried, with its status (nginx
/// separates retries with `, ` and internal redirects with ` : `). A 5xx (502 is a refused
/// connection, 504 a timeout) is an error of the pool that gave it.
fn count_line(line: &str, stable: &str, canary: &str, log: &mut Log) {
    let Some((addresses, statuses)) = line.rsplit_once('|') else {
        return;
    };
    let split = |text: &str| -> Vec<String> {
        text.replace(" : ", ", ")
            .split(',')
            .map(|part| part.trim().to_owned())
            .collect()
    };
    let addresses = split(addresses);
    let statuses = split(statuses);
    for (address, status) in addresses.iter().zip(&statuses) {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        let counts = if address == stable {
            &mut log.stable
        } else if address == canary {
            &mut log.canary
        } else {
            continue;
        };
        counts.requests += 1;
        counts.errors += u64::from(status >= 500);
    }
}

/// Whether the pool accepts a connection now: the check nginx's open-source build lacks.
fn accepts(address: &str) -> bool {
    if let Some(path) = address.strip_prefix("unix:") {
        return UnixStream::connect(Path::new(path)).is_ok();
    }
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut found| found.next())
        .is_some_and(|socket| TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# included by nginx.conf's upstream app { }\nkeepalive 16;\n    server 127.0.0.1:8081 max_fails=0;\n    server 127.0.0.1:8082 weight=5 down;\n";

    #[test]
    fn weights_are_read_as_nginx_reads_them() {
        assert_eq!(
            weights(FILE, "127.0.0.1:8081", "127.0.0.1:8082"),
            Ok((1, 0))
        );
        assert_eq!(weights(FILE, "127.0.0.1:8081", "127.0.0.1:9"), Ok((1, 0)));
        assert!(
            weights(FILE, "127.0.0.1:9", "127.0.0.1:8082")
                .unwrap_err()
                .contains("no `server 127.0.0.1:9` line")
        );
        assert!(weights("server a weight=x;\n", "a", "b").is_err());
    }

    #[test]
    fn rendering_rewrites_only_the_two_lines() {
        let rendered = render(FILE, ("127.0.0.1:8081", 90), ("127.0.0.1:8082", 10));
        assert_eq!(
            rendered,
            "# included by nginx.conf's upstream app { }\nkeepalive 16;\n    server 127.0.0.1:8081 max_fails=0 weight=90;\n    server 127.0.0.1:8082 weight=10;\n"
        );
        assert_eq!(
            weights(&rendered, "127.0.0.1:8081", "127.0.0.1:8082"),
            Ok((90, 10))
        );
        let promoted = render(&rendered, ("127.0.0.1:8081", 0), ("127.0.0.1:8082", 100));
        assert!(promoted.contains("server 127.0.0.1:8081 max_fails=0 down;"));
        let added = render("server a;\n", ("a", 50), ("b", 50));
        assert_eq!(added, "server a weight=50;\nserver b weight=50;\n");
    }

    #[test]
    fn log_lines_count_every_attempt() {
        let mut log = Log::default();
        for line in [
            "127.0.0.1:8081|200",
            "127.0.0.1:8082|500",
            "127.0.0.1:8082, 127.0.0.1:8081|502, 200",
            "127.0.0.1:8082|-",
            "-|-",
            "not a gantry line",
        ] {
            count_line(line, "127.0.0.1:8081", "127.0.0.1:8082", &mut log);
        }
        assert_eq!(
            log.stable,
            Counts {
                requests: 2,
                errors: 0
            }
        );
        assert_eq!(
            log.canary,
            Counts {
                requests: 2,
                errors: 2
            }
        );
    }

    #[test]
    fn the_log_is_read_from_where_it_ended() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("access.log");
        std::fs::write(&path, "a|200\n").expect("write");
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let argv = ["true".to_owned()];
        let mut nginx = Nginx::new(
            dir.path().join("upstream.conf"),
            "a".to_owned(),
            "b".to_owned(),
            path.clone(),
            Tool {
                argv: &argv,
                root: dir.path(),
                cancel: &cancel,
            },
        );
        nginx.tally().expect("first read");
        assert_eq!(nginx.log.stable.requests, 0, "history is not counted");
        let append = |text: &str| {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            file.write_all(text.as_bytes()).expect("append");
        };
        append("a|200\nb|503\nb|2");
        nginx.tally().expect("read");
        assert_eq!((nginx.log.stable.requests, nginx.log.canary.errors), (1, 1));
        assert_eq!(nginx.log.canary.requests, 1, "the half line waits");
        append("00\n");
        nginx.tally().expect("read");
        assert_eq!(nginx.log.canary.requests, 2);
        std::fs::write(&path, "b|200\n").expect("truncate");
        nginx.tally().expect("read");
        assert_eq!(nginx.log.canary.requests, 3, "a truncated log starts over");
    }
}
