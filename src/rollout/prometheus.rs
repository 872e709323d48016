//! Prometheus as the source of the figures the analysis judges: the traffic backend still
//! moves the weights and says who is up, but each pool's request and error counts (and, when
//! asked, its latency) are instant queries against Prometheus's HTTP API, with `$pool`
//! standing for the pool's name at the backend.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;

use crate::http::get;
use crate::rollout::plan::PrometheusSpec;
use crate::rollout::sprt::Counts;
use crate::rollout::traffic::{Pools, Traffic};

const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Measured<'a> {
    pub backend: &'a mut dyn Traffic,
    pub spec: &'a PrometheusSpec,
    /// The pools' names at the backend: what `$pool` becomes.
    pub names: (&'a str, &'a str),
}

impl Measured<'_> {
    /// The query's value: the sum of an instant vector, or a scalar. No series at all is an
    /// error, not a zero: a query that matches nothing would otherwise pass every canary.
    fn value(&self, query: &str, pool: &str) -> Result<f64, String> {
        let query = query.replace("$pool", pool);
        let target = format!("/api/v1/query?query={}", encode(&query));
        let (status, body) = get(&self.spec.url, &target, TIMEOUT)
            .map_err(|error| format!("Prometheus at {}: {error}", self.spec.url))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            format!(
                "Prometheus at {} answered {status} with {:?}, not its query API's JSON",
                self.spec.url,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        if answer.status != "success" {
            return Err(format!(
                "Prometheus refused `{query}`: {}",
                answer.error.unwrap_or_default()
            ));
        }
        sum(&answer.data.unwrap_or_default()).ok_or_else(|| {
            format!("`{query}` matched no series at Prometheus (wrap it in `sum(...)`, or add `or vector(0)` when none is right)")
        })
    }

    fn counts(&self, pool: &str) -> Result<Counts, String> {
        let requests = whole(self.value(&self.spec.requests, pool)?, &self.spec.requests)?;
        let errors = whole(self.value(&self.spec.errors, pool)?, &self.spec.errors)?;
        // Two queries may straddle a scrape; errors are a part of requests.
        Ok(Counts {
            requests,
            errors: errors.min(requests),
        })
    }

    fn latency(&self, pool: &str) -> Result<Option<Duration>, String> {
        let Some(query) = &self.spec.latency else {
            return Ok(None);
        };
        let seconds = self.value(query, pool)?;
        // NaN: no request in the window the query averages over.
        Ok(Duration::try_from_secs_f64(seconds).ok())
    }
}

impl Traffic for Measured<'_> {
    fn describe(&self) -> String {
        format!(
            "{}, counted by Prometheus at {}",
            self.backend.describe(),
            self.spec.url
        )
    }

    fn read(&mut self) -> Result<Pools, String> {
        let mut pools = self.backend.read()?;
        pools.stable.counts = self.counts(self.names.0)?;
        pools.canary.counts = self.counts(self.names.1)?;
        pools.stable.latency = self.latency(self.names.0)?;
        pools.canary.latency = self.latency(self.names.1)?;
        Ok(pools)
    }

    fn set_weights(&mut self, stable: u32, canary: u32) -> Result<(), String> {
        self.backend.set_weights(stable, canary)
    }

    fn admit_canary(&mut self) -> Result<(), String> {
        self.backend.admit_canary()
    }

    fn drain_stable(&mut self) -> Result<(), String> {
        self.backend.drain_stable()
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
    error: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

/// `[time, "value"]` pairs: a scalar is one, a vector has one per series.
fn sum(data: &Data) -> Option<f64> {
    let number = |pair: &serde_json::Value| pair.get(1)?.as_str()?.parse::<f64>().ok();
    match data.result_type.as_str() {
        "scalar" => number(&data.result),
        "vector" => {
            let series = data.result.as_array()?;
            if series.is_empty() {
                return None;
            }
            series
                .iter()
                .map(|one| one.get("value").and_then(number))
                .sum()
        }
        _ => None,
    }
}

#[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked finite, >= 0
fn whole(value: f64, query: &str) -> Result<u64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value.round() as u64)
    } else {
        Err(format!("`{query}` is {value}, not a count"))
    }
}

/// Percent-encoding for a query string value: everything but RFC 3986's unreserved bytes.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Data {
        let answer: Answer = serde_json::from_str(json).expect("json");
        answer.data.expect("data")
    }

    #[test]
    fn vectors_are_summed_and_scalars_read() {
        let vector = data(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"code":"2xx"},"value":[1.5,"40"]},{"metric":{"code":"5xx"},"value":[1.5,"2"]}]}}"#,
        );
        assert_eq!(sum(&vector), Some(42.0));
        let scalar =
            data(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"0.25"]}}"#);
        assert_eq!(sum(&scalar), Some(0.25));
        let empty = data(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
        assert_eq!(sum(&empty), None);
        let nan = data(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
        );
        assert!(sum(&nan).is_some_and(f64::is_nan));
        assert!(whole(f64::NAN, "q").is_err());
        assert_eq!(whole(41.6, "q"), Ok(42));
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode(r#"sum(x{server="green",code="5xx"})"#),
            "sum%28x%7Bserver%3D%22green%22%2Ccode%3D%225xx%22%7D%29"
        );
    }
}
