//! `gantry worker --server grpc://HOST:PORT`: a Remote Workers API bot that runs leased
//! actions in gantry's sandbox until SIGINT or SIGTERM (see docs/remote.md).

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::Environment;
use crate::error::{Error, Result};
use crate::remote::worker::{self, Event, Options};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The REAPI server whose Bots service hands out work (`grpc://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    server: String,
    /// The server's instance name.
    #[arg(long, value_name = "NAME", default_value = "")]
    instance: String,
    /// Actions to run at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// The bot id the server knows this worker by (default: HOSTNAME-PID).
    #[arg(long, value_name = "ID")]
    name: Option<String>,
    /// Where the worker keeps fetched blobs and scratch folders (default:
    /// `$XDG_CACHE_HOME/gantry/worker`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print one JSON object per event, per line.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    if !(args.server.starts_with("grpc://") || args.server.starts_with("http://")) {
        return Err(Error::Usage(format!(
            "--server `{}`: a server is written grpc://HOST:PORT",
            args.server
        )));
    }
    let folder = match (&args.dir, &environment.xdg_cache_home, &environment.home) {
        (Some(dir), _, _) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        (None, Some(cache), _) if cache.is_absolute() => cache.join("gantry").join("worker"),
        (None, _, Some(home)) => home.join(".cache").join("gantry").join("worker"),
        _ => {
            return Err(Error::Usage(
                "no folder for the worker: pass --dir (neither XDG_CACHE_HOME nor HOME is set)"
                    .to_owned(),
            ));
        }
    };
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_default();
        format!(
            "{}-{}",
            if host.is_empty() { "gantry" } else { &host },
            std::process::id()
        )
    });
    let options = Options {
        server: args.server.clone(),
        instance: args.instance.clone(),
        concurrency: usize::from(args.concurrency),
        name,
        folder,
    };
    let json = args.json;
    let prefix = format!("worker {}", options.name);
    let report = move |event: &Event| {
        if json {
            if let Ok(text) = serde_json::to_string(event) {
                let _ = writeln!(std::io::stdout().lock(), "{text}");
            }
        } else {
            let _ = writeln!(std::io::stderr().lock(), "{prefix}: {}", render(event));
        }
    };
    worker::serve(&options, &report).map_err(|message| Error::Environment { message })?;
    Ok(0)
}

fn render(event: &Event) -> String {
    match event {
        Event::Connected { session, capacity } => {
            format!("connected (session {session}, {capacity} at once)")
        }
        Event::Started { lease } => format!("running {lease}"),
        Event::Completed { lease, outcome } => format!("finished {lease}: {outcome}"),
        Event::Dropped { lease } => format!("stopped {lease}: the server took it back"),
        Event::Retrying { error } => format!("{error}; retrying"),
        Event::SessionLost { error } => format!("session lost ({error}); starting a new one"),
        Event::Stopping { handed_back } => {
            format!("stopping; {handed_back} running action(s) handed back")
        }
    }
}
