//! The command backend: gantry drives any proxy through a program. Here the program is a
//! short Python script speaking HAProxy's runtime API, run under wrk's load: a blue-green
//! switch through it drops no request. A program that fails stops the rollout before
//! anything changed, quoting what it said.

use super::site::{
    BLUE_GREEN, Front, Proxy, Site, assert_blue_drained, pipeline, promoted_cleanly,
    run_under_load, serial, site_with,
};
use crate::support::require_tool;

const SCRIPT: &str = r##"#!/usr/bin/env python3
"""gantry's command backend protocol over HAProxy's runtime API."""
import csv, io, socket, sys

SOCKET, BACKEND, POOLS = "haproxy.sock", "app", {"stable": "blue", "canary": "green"}

def ask(command):
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(SOCKET)
        connection.sendall(command.encode() + b"\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.decode()

def act(command):
    answer = ask(command).strip()
    if answer:
        sys.exit(f"haproxy refused {command!r}: {answer}")

verb = sys.argv[1]
if verb == "read":
    for row in csv.DictReader(io.StringIO(ask("show stat").removeprefix("# "))):
        for role, server in POOLS.items():
            if (row["pxname"], row["svname"]) == (BACKEND, server):
                answered = sum(int(row[f"hrsp_{k}"] or 0) for k in ("1xx", "2xx", "3xx", "4xx", "5xx", "other"))
                state = "up" if row["status"].startswith("UP") else "down"
                print(role, row["weight"], answered, row["hrsp_5xx"] or 0, state)
elif verb == "weights":
    act(f"set weight {BACKEND}/{POOLS['canary']} {sys.argv[3]}")
    act(f"set weight {BACKEND}/{POOLS['stable']} {sys.argv[2]}")
elif verb == "admit":
    act(f"set server {BACKEND}/{POOLS['canary']} state ready")
elif verb == "drain":
    act(f"set server {BACKEND}/{POOLS['stable']} state drain")
else:
    sys.exit(f"unknown verb {verb!r}")
"##;

/// HAProxy moved by the script instead of by gantry's own client.
struct Scripted(Proxy);

impl Front for Scripted {
    fn port(&self) -> u16 {
        self.0.port()
    }
    fn traffic(&self) -> String {
        "{ command = { run = [\"python3\", \"traffic.py\"] } }".to_owned()
    }
    fn weights(&self) -> (u32, u32) {
        self.0.weights()
    }
}

fn scripted_site() -> Site<Scripted> {
    require_tool(
        "python3",
        "--version",
        "apt-get install python3 (scripts/test.sh installs it)",
    );
    let site = site_with(0, |test, blue, green| {
        Scripted(Proxy::start(test, blue, green))
    });
    site.test.write("traffic.py", SCRIPT);
    site
}

#[test]
fn a_blue_green_switch_through_a_command_drops_no_request() {
    let _serial = serial();
    let site = scripted_site();
    site.test
        .write("pipeline.toml", &pipeline(&site, "blue-green", BLUE_GREEN));
    let (run, load) = run_under_load(&site, 4, true);
    let predicate = promoted_cleanly(&site, &run, &load);
    // The script drained blue.
    assert_blue_drained(&site.front.0);
    assert_eq!(
        predicate["traffic"]["command"]["run"],
        serde_json::json!(["python3", "traffic.py"])
    );
}

#[test]
fn a_failing_command_stops_the_rollout_before_anything_changes() {
    let _serial = serial();
    let site = scripted_site();
    let pipeline = pipeline(&site, "blue-green", "").replace(
        "run = [\"python3\", \"traffic.py\"]",
        "run = [\"sh\", \"-c\", \"echo edge proxy unreachable >&2; exit 7\", \"traffic\"]",
    );
    site.test.write("pipeline.toml", &pipeline);
    let run = site.test.run(["run", "pipeline.toml", "--json"]).failure(1);
    let stdout = run.stdout();
    assert!(
        stdout.contains("cannot start the rollout:")
            && stdout.contains("failed (exit code 7): edge proxy unreachable; nothing was changed"),
        "{stdout}"
    );
    assert_eq!(site.front.weights(), (100, 0));
}
