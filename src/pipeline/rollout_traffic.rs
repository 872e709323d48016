//! Validation of what a rollout talks to: its traffic backend (HAProxy, nginx or a command),
//! Prometheus when the analysis reads its figures there, and the policy it verifies first.

use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::http::HttpUrl;
use crate::pipeline::convert::file;
use crate::pipeline::wire::{
    CommandWire, HaproxyWire, NginxWire, PrometheusWire, TrafficWire, VerifyWire,
};
use crate::rollout::plan::{PrometheusSpec, TrafficSpec, VerifySpec};

const EXAMPLE: &str = "like `traffic = { haproxy = { socket = \"run/haproxy.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" } }`; `nginx = { ... }` and `command = { run = [...] }` are the others";

pub fn traffic(
    traffic: &Spanned<Box<TrafficWire>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<TrafficSpec> {
    let wire = traffic.get_ref();
    let named = [
        wire.haproxy.as_ref().map(Spanned::span),
        wire.nginx.as_ref().map(Spanned::span),
        wire.command.as_ref().map(Spanned::span),
    ];
    if let Some(second) = named.iter().flatten().nth(1) {
        errors.push(
            Diagnostic::at("`traffic` names more than one backend", second.clone())
                .hint("one proxy moves the traffic: keep `haproxy`, `nginx` or `command`"),
        );
        return None;
    }
    if let Some(haproxy) = &wire.haproxy {
        haproxy_spec(haproxy.get_ref(), errors)
    } else if let Some(nginx) = &wire.nginx {
        nginx_spec(nginx.get_ref(), errors)
    } else if let Some(command) = &wire.command {
        command_spec(command.get_ref(), errors)
    } else {
        errors.push(Diagnostic::at("`traffic` names no backend", traffic.span()).hint(EXAMPLE));
        None
    }
}

/// A path gantry opens itself: relative to the workspace root, or absolute.
fn host_path(key: &str, value: &Spanned<String>, errors: &mut Vec<Diagnostic>) {
    let text = value.get_ref();
    if text.is_empty() || text.contains('\0') {
        errors.push(Diagnostic::at(
            format!("`{key}` is a path (relative to the workspace root, or absolute)"),
            value.span(),
        ));
    }
}

fn different(stable: &Spanned<String>, canary: &Spanned<String>, errors: &mut Vec<Diagnostic>) {
    if stable.get_ref() == canary.get_ref() {
        errors.push(Diagnostic::at(
            "the canary must be another server than the stable",
            canary.span(),
        ));
    }
}

fn haproxy_spec(haproxy: &HaproxyWire, errors: &mut Vec<Diagnostic>) -> Option<TrafficSpec> {
    let before = errors.len();
    host_path("socket", &haproxy.socket, errors);
    for (key, name) in [
        ("backend", &haproxy.backend),
        ("stable", &haproxy.stable),
        ("canary", &haproxy.canary),
    ] {
        let text = name.get_ref();
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !valid {
            errors.push(
                Diagnostic::at(format!("`{text}` is not a HAProxy {key} name"), name.span())
                    .hint("letters, digits, `-`, `_`, `.` and `:`, as in haproxy.cfg"),
            );
        }
    }
    different(&haproxy.stable, &haproxy.canary, errors);
    (errors.len() == before).then(|| TrafficSpec::Haproxy {
        socket: haproxy.socket.get_ref().clone(),
        backend: haproxy.backend.get_ref().clone(),
        stable: haproxy.stable.get_ref().clone(),
        canary: haproxy.canary.get_ref().clone(),
    })
}

fn nginx_spec(nginx: &NginxWire, errors: &mut Vec<Diagnostic>) -> Option<TrafficSpec> {
    let before = errors.len();
    host_path("upstream", &nginx.upstream, errors);
    host_path("access_log", &nginx.access_log, errors);
    for (key, address) in [("stable", &nginx.stable), ("canary", &nginx.canary)] {
        let text = address.get_ref();
        let valid = !text.is_empty()
            && !text.contains(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | ',' | '\0'));
        if !valid {
            errors.push(
                Diagnostic::at(format!("`{text}` is not an nginx server address"), address.span())
                    .hint(format!("the {key} pool as its upstream `server` line names it, like `127.0.0.1:8081` or `unix:/run/app.sock`")),
            );
        }
    }
    different(&nginx.stable, &nginx.canary, errors);
    let reload = match &nginx.reload {
        Some(reload) => argv("reload", reload, errors),
        None => Some(vec![
            "nginx".to_owned(),
            "-s".to_owned(),
            "reload".to_owned(),
        ]),
    };
    if errors.len() > before {
        return None;
    }
    Some(TrafficSpec::Nginx {
        upstream: nginx.upstream.get_ref().clone(),
        stable: nginx.stable.get_ref().clone(),
        canary: nginx.canary.get_ref().clone(),
        access_log: nginx.access_log.get_ref().clone(),
        reload: reload?,
    })
}

fn command_spec(command: &CommandWire, errors: &mut Vec<Diagnostic>) -> Option<TrafficSpec> {
    argv("run", &command.run, errors).map(|run| TrafficSpec::Command { run })
}

pub fn argv(
    key: &str,
    words: &Spanned<Vec<Spanned<String>>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let valid = words
        .get_ref()
        .first()
        .is_some_and(|program| !program.get_ref().is_empty())
        && words
            .get_ref()
            .iter()
            .all(|word| !word.get_ref().contains('\0'));
    if !valid {
        errors.push(
            Diagnostic::at(format!("`{key}` is a program and its arguments"), words.span())
                .hint("like `[\"scripts/traffic.sh\", \"--proxy\", \"edge\"]`: a path with a `/` is relative to the workspace root"),
        );
        return None;
    }
    Some(
        words
            .get_ref()
            .iter()
            .map(|word| word.get_ref().clone())
            .collect(),
    )
}

pub fn prometheus(
    wire: &Spanned<PrometheusWire>,
    errors: &mut Vec<Diagnostic>,
) -> Option<PrometheusSpec> {
    let prometheus = wire.get_ref();
    let before = errors.len();
    let url = HttpUrl::parse(prometheus.url.get_ref())
        .map_err(|message| errors.push(Diagnostic::at(message, prometheus.url.span())))
        .ok();
    for (key, query) in [
        ("requests", Some(&prometheus.requests)),
        ("errors", Some(&prometheus.errors)),
        ("latency", prometheus.latency.as_ref()),
    ] {
        if let Some(query) = query
            && query.get_ref().trim().is_empty()
        {
            errors.push(
                Diagnostic::at(format!("`{key}` is an empty query"), query.span()).hint(
                    "PromQL with `$pool` for the pool, like `sum(haproxy_server_http_responses_total{proxy=\"app\",server=\"$pool\"})`",
                ),
            );
        }
    }
    let max_latency = match &prometheus.max_latency {
        None => None,
        Some(value) => match duration::parse(value.get_ref()) {
            Ok(limit) if !limit.is_zero() => Some(limit),
            Ok(_) => {
                errors.push(Diagnostic::at(
                    "`max_latency` must be longer than zero",
                    value.span(),
                ));
                None
            }
            Err(message) => {
                errors.push(Diagnostic::at(
                    format!("invalid `max_latency`: {message}"),
                    value.span(),
                ));
                None
            }
        },
    };
    if let Some(value) = &prometheus.max_latency
        && prometheus.latency.is_none()
    {
        errors.push(
            Diagnostic::at("`max_latency` needs a `latency` query", value.span())
                .hint("the pool's response time in seconds, like `latency = \"haproxy_server_response_time_average_seconds{proxy=\\\"app\\\",server=\\\"$pool\\\"}\"`"),
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(PrometheusSpec {
        url: url?,
        requests: prometheus.requests.get_ref().clone(),
        errors: prometheus.errors.get_ref().clone(),
        latency: prometheus
            .latency
            .as_ref()
            .map(|query| query.get_ref().clone()),
        max_latency,
    })
}

/// The policy is a workspace file (an input of the step, so its digest is in the record);
/// the attestation folders are read where they are.
pub fn verify(
    wire: &Spanned<Box<VerifyWire>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<(VerifySpec, Range<usize>)> {
    let verify = wire.get_ref();
    let before = errors.len();
    let policy = file("policy", &verify.policy, errors);
    let mut attestations = Vec::new();
    for folder in verify.attestations.iter().flat_map(Spanned::get_ref) {
        host_path("attestations", folder, errors);
        attestations.push(folder.get_ref().clone());
    }
    if errors.len() > before {
        return None;
    }
    let (policy, span) = policy?;
    Some((
        VerifySpec {
            policy,
            attestations,
        },
        span,
    ))
}
