//! Validation of `kind = "rollout"` steps: the strategy, the traffic backend, the health
//! probe, the canary's steps and the sequential test. The `subject` (the artifact rolled
//! out) is the step's input, the signed rollout attestation its output.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::http::HttpUrl;
use crate::pipeline::convert::file;
use crate::pipeline::convert::{Converted, NotHere, not_here};
use crate::pipeline::model::{InputPattern, OutputPath};
use crate::pipeline::path;
use crate::pipeline::rollout_traffic;
use crate::pipeline::wire::{AnalysisWire, CanaryWire, HealthWire, StepWire, SubjectWire};
use crate::rollout::plan::{CanarySpec, HealthSpec, RolloutStep, Strategy};
use crate::rollout::sprt::Sprt;

/// Where a rollout's attestation goes when `output` is not given.
pub const ROLLOUT_FOLDER: &str = "out/rollout";

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `rollout` step, at their line.
pub(super) const KEYS: &[&str] = &[
    "subject",
    "output",
    "strategy",
    "traffic",
    "health",
    "canary",
    "analysis",
    "rollback_window",
    "rehearse",
    "verify",
    "start",
];

pub(crate) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Converted<RolloutStep>> {
    let before = errors.len();
    not_here(
        wire,
        &NotHere {
            kind: "rollout",
            inputs: "a rollout's input is the artifact it rolls out: name it in `subject`",
            outputs: "a rollout writes its signed record to `output` (default `out/rollout/STEP.intoto.json`)",
            network: "a rollout talks to its traffic backend and health URL, nothing else",
        },
        errors,
    );
    let strategy = strategy(wire, name_span, errors);
    let traffic = required(
        step_name,
        "traffic",
        wire.traffic.as_ref(),
        name_span,
        errors,
    )
    .and_then(|traffic| rollout_traffic::traffic(traffic, errors));
    let health = required(step_name, "health", wire.health.as_ref(), name_span, errors)
        .and_then(|health| self::health(health, errors));
    let canary = canary(strategy, wire.canary.as_ref(), name_span, errors);
    let analysis = analysis(wire.analysis.as_ref(), errors);
    let metrics = (wire.analysis.as_ref())
        .and_then(|analysis| analysis.get_ref().prometheus.as_ref())
        .map(|prometheus| rollout_traffic::prometheus(prometheus, errors));
    let verify = (wire.verify.as_ref()).map(|verify| rollout_traffic::verify(verify, errors));
    let start = (wire.start.as_ref()).map(|start| rollout_traffic::argv("start", start, errors));
    let rollback_window = wire
        .rollback_window
        .as_ref()
        .map_or(Some(Duration::from_secs(30)), |window| {
            parse_duration("rollback_window", window, errors)
        });
    let subject = if let Some(subject) = &wire.subject {
        SubjectWire::one(subject, "rollout", errors)
            .and_then(|subject| file("subject", &subject, errors))
    } else {
        errors.push(
            Diagnostic::at(format!("rollout `{step_name}` needs a `subject`"), name_span.clone())
                .hint("the artifact being rolled out, like `subject = \"out/app.tar\"`: the signed record is about it"),
        );
        None
    };
    let output = match &wire.output {
        Some(output) => file("output", output, errors),
        None => Some((
            format!("{ROLLOUT_FOLDER}/{step_name}.intoto.json"),
            name_span.clone(),
        )),
    };
    if errors.len() > before {
        return None;
    }
    let (subject, subject_span) = subject?;
    let (output, output_span) = output?;
    // An inner `None` was an error, and errors returned above.
    let (verify, metrics) = (verify.flatten(), metrics.flatten());
    let mut read = vec![(subject.clone(), subject_span.clone())];
    read.extend((verify.iter()).map(|(spec, span)| (spec.policy.clone(), span.clone())));
    for (path, span) in &read {
        if path::is_within(&output, path) || path::is_within(path, &output) {
            errors.push(Diagnostic::at(
                format!("`{path}` overlaps the rollout's output `{output}`"),
                span.clone(),
            ));
            return None;
        }
    }
    Some(Converted {
        step: RolloutStep {
            strategy: strategy?,
            traffic: traffic?,
            health: health?,
            canary: canary?,
            analysis: analysis?,
            rollback_window: rollback_window?,
            rehearse: wire.rehearse.as_ref().is_some_and(|value| *value.get_ref()),
            metrics,
            verify: verify.map(|(spec, _)| spec),
            start: start.flatten(),
            subject,
            output: output.clone(),
        },
        inputs: (read.into_iter())
            .map(|(pattern, span)| InputPattern {
                pattern,
                directory: false,
                is_glob: false,
                span,
            })
            .collect(),
        outputs: vec![OutputPath {
            path: output,
            directory: false,
            span: output_span,
        }],
    })
}

fn required<'a, T>(
    step_name: &str,
    key: &str,
    value: Option<&'a Spanned<T>>,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<&'a Spanned<T>> {
    if value.is_none() {
        let hint = match key {
            "traffic" => {
                "the proxy that moves the traffic, like `traffic = { haproxy = { socket = \"run/haproxy.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" } }`"
            }
            _ => {
                "the new pool's health URL, like `health = { url = \"http://127.0.0.1:8081/healthz\" }`"
            }
        };
        errors.push(
            Diagnostic::at(
                format!("rollout `{step_name}` needs `{key}`"),
                name_span.clone(),
            )
            .hint(hint),
        );
    }
    value
}

fn strategy(
    wire: &StepWire,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Strategy> {
    let Some(strategy) = &wire.strategy else {
        errors.push(
            Diagnostic::at("a rollout needs a `strategy`", name_span.clone())
                .hint("`strategy = \"canary\"` or `strategy = \"blue-green\"`"),
        );
        return None;
    };
    match strategy.get_ref().as_str() {
        "canary" => Some(Strategy::Canary),
        "blue-green" => Some(Strategy::BlueGreen),
        other => {
            errors.push(
                Diagnostic::at(format!("unknown strategy `{other}`"), strategy.span())
                    .hint(format!("one of: {}", Strategy::NAMES.join(", "))),
            );
            None
        }
    }
}

fn health(health: &Spanned<Box<HealthWire>>, errors: &mut Vec<Diagnostic>) -> Option<HealthSpec> {
    let health = health.get_ref();
    let url = HttpUrl::parse(health.url.get_ref())
        .map_err(|message| errors.push(Diagnostic::at(message, health.url.span())))
        .ok();
    let interval = optional_duration(
        "interval",
        health.interval.as_ref(),
        Duration::from_secs(1),
        errors,
    );
    let timeout = optional_duration(
        "timeout",
        health.timeout.as_ref(),
        Duration::from_secs(60),
        errors,
    );
    let healthy_after = match &health.healthy_after {
        None => Some(3),
        Some(count) => match u32::try_from(*count.get_ref()) {
            Ok(count) if (1..=1000).contains(&count) => Some(count),
            _ => {
                errors.push(
                    Diagnostic::at(
                        "`healthy_after` is a count of probes, 1 to 1000",
                        count.span(),
                    )
                    .hint("consecutive 2xx answers before the new pool takes traffic"),
                );
                None
            }
        },
    };
    Some(HealthSpec {
        url: url?,
        interval: interval?,
        healthy_after: healthy_after?,
        timeout: timeout?,
    })
}

fn canary(
    strategy: Option<Strategy>,
    canary: Option<&Spanned<Box<CanaryWire>>>,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<CanarySpec> {
    let steps = match canary.and_then(|canary| canary.get_ref().steps.as_ref()) {
        Some(steps) => canary_steps(steps, errors)?,
        None if strategy == Some(Strategy::Canary) => {
            errors.push(
                Diagnostic::at(
                    "a canary rollout needs its steps",
                    canary.map_or_else(|| name_span.clone(), Spanned::span),
                )
                .hint("the canary's share of traffic at each step, like `canary = { steps = [1, 10, 50, 100] }`"),
            );
            return None;
        }
        None => vec![100],
    };
    let canary = canary.map(Spanned::get_ref);
    let min_requests = match canary.and_then(|canary| canary.min_requests.as_ref()) {
        None => Some(500),
        Some(count) => u64::try_from(*count.get_ref()).ok().or_else(|| {
            errors.push(Diagnostic::at("`min_requests` is a count", count.span()));
            None
        }),
    };
    let interval = optional_duration(
        "interval",
        canary.and_then(|canary| canary.interval.as_ref()),
        Duration::from_secs(1),
        errors,
    );
    let max_wait = optional_duration(
        "max_wait",
        canary.and_then(|canary| canary.max_wait.as_ref()),
        Duration::from_secs(600),
        errors,
    );
    Some(CanarySpec {
        steps,
        min_requests: min_requests?,
        interval: interval?,
        max_wait: max_wait?,
    })
}

/// `[1, 10, 50, 100]`: rising percentages that end at 100.
fn canary_steps(
    steps: &Spanned<Vec<Spanned<i64>>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<u32>> {
    let mut out: Vec<u32> = Vec::new();
    for step in steps.get_ref() {
        let value = *step.get_ref();
        let last = out.last().copied().unwrap_or(0);
        match u32::try_from(value) {
            Ok(percent) if (1..=100).contains(&percent) && percent > last => out.push(percent),
            _ => {
                errors.push(
                    Diagnostic::at(format!("`{value}` is not a next canary step"), step.span())
                        .hint("percentages of traffic from 1 to 100, each above the one before"),
                );
                return None;
            }
        }
    }
    if out.last() != Some(&100) {
        errors.push(
            Diagnostic::at("the canary's last step must be 100", steps.span())
                .hint("a rollout that stops short of 100% has not promoted anything"),
        );
        return None;
    }
    Some(out)
}

fn analysis(
    analysis: Option<&Spanned<Box<AnalysisWire>>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Sprt> {
    let defaults = Sprt {
        alpha: 0.05,
        beta: 0.05,
        baseline_error_rate: 0.01,
        delta: 0.03,
    };
    let Some(analysis) = analysis else {
        return Some(defaults);
    };
    let wire = analysis.get_ref();
    if let Some(method) = &wire.method
        && method.get_ref() != "sprt"
    {
        errors.push(
            Diagnostic::at(
                format!("unknown analysis `{}`", method.get_ref()),
                method.span(),
            )
            .hint("`method = \"sprt\"`: Wald's sequential probability ratio test"),
        );
        return None;
    }
    let value = |given: Option<&Spanned<f64>>, default: f64| {
        given.map_or(default, |value| *value.get_ref())
    };
    let sprt = Sprt {
        alpha: value(wire.alpha.as_ref(), defaults.alpha),
        beta: value(wire.beta.as_ref(), defaults.beta),
        baseline_error_rate: value(
            wire.baseline_error_rate.as_ref(),
            defaults.baseline_error_rate,
        ),
        delta: value(wire.delta.as_ref(), defaults.delta),
    };
    match sprt.check() {
        Ok(()) => Some(sprt),
        Err(message) => {
            errors.push(Diagnostic::at(message, analysis.span()));
            None
        }
    }
}

fn optional_duration(
    key: &str,
    value: Option<&Spanned<String>>,
    default: Duration,
    errors: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    value.map_or(Some(default), |value| parse_duration(key, value, errors))
}

fn parse_duration(
    key: &str,
    value: &Spanned<String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    match duration::parse(value.get_ref()) {
        Ok(duration) if !duration.is_zero() => Some(duration),
        Ok(_) => {
            errors.push(Diagnostic::at(
                format!("`{key}` must be longer than zero"),
                value.span(),
            ));
            None
        }
        Err(message) => {
            errors.push(Diagnostic::at(
                format!("invalid `{key}`: {message}"),
                value.span(),
            ));
            None
        }
    }
}
