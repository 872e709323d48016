//! Prometheus as the analysis's source: a real Prometheus scrapes HAProxy's own exporter
//! every 250 ms, and the rollout judges the counts and latency its queries return (the
//! traffic backend still moves the weights). A canary failing 5% is rolled back on those
//! counts; the canary's latency is recorded, and a latency above `max_latency` rolls back.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::site::{
    CANARY, Proxy, Site, free_port, pipeline, record, rolled_back_by_the_test, run_under_load,
    serial, site_with, wait_for,
};
use crate::support::{Test, require_tool};

const HINT: &str =
    "apt-get install --no-install-recommends prometheus (scripts/test.sh installs it)";

struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(test: &Test, exporter: u16) -> Self {
        require_tool("prometheus", "--version", HINT);
        let port = free_port();
        test.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: haproxy\n    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n"
            ),
        );
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                test.path("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                test.path("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus");
        let prometheus = Self { child, port };
        wait_for("prometheus's first scrape of HAProxy", || {
            prometheus
                .query("count(haproxy_server_http_responses_total)")
                .contains("\"value\"")
        });
        prometheus
    }

    /// The query API's answer, or nothing while Prometheus is not up.
    fn query(&self, query: &str) -> String {
        let encoded: String = (query.bytes())
            .map(|byte| {
                if byte.is_ascii_alphanumeric() {
                    char::from(byte).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            })
            .collect();
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = write!(
            stream,
            "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        );
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy with its Prometheus exporter, and a Prometheus scraping it.
fn measured_site(green_fail_percent: u32) -> (Site<Proxy>, Prometheus) {
    let exporter = free_port();
    let site = site_with(green_fail_percent, |test, blue, green| {
        Proxy::start_with(
            test,
            blue,
            green,
            &format!(
                "frontend metrics\n  bind 127.0.0.1:{exporter}\n  http-request use-service prometheus-exporter if {{ path /metrics }}\n"
            ),
        )
    });
    let prometheus = Prometheus::start(&site.test, exporter);
    (site, prometheus)
}

fn analysis(prometheus: &Prometheus, latency: &str) -> String {
    format!(
        "analysis = {{ method = \"sprt\", alpha = 0.05, beta = 0.05, baseline_error_rate = 0.01, delta = 0.03, prometheus = {{ url = \"http://127.0.0.1:{}\", requests = 'sum(haproxy_server_http_responses_total{{proxy=\"app\",server=\"$pool\"}})', errors = 'sum(haproxy_server_http_responses_total{{proxy=\"app\",server=\"$pool\",code=\"5xx\"}})', {latency} }} }}\n",
        prometheus.port
    )
}

/// The pipeline with its `analysis` line replaced by one that reads Prometheus.
fn measured_pipeline(site: &Site<Proxy>, prometheus: &Prometheus, latency: &str) -> String {
    let plain = pipeline(site, "canary", CANARY);
    let line = (plain.lines())
        .find(|line| line.starts_with("analysis = "))
        .expect("analysis line")
        .to_owned();
    plain.replace(&format!("{line}\n"), &analysis(prometheus, latency))
}

#[test]
fn prometheus_counts_roll_back_a_canary_failing_5_percent() {
    let _serial = serial();
    let (site, prometheus) = measured_site(5);
    site.test.write(
        "pipeline.toml",
        &measured_pipeline(&site, &prometheus, "latency = 'vector(0)'"),
    );
    let (run, load) = run_under_load(&site, 5, false);
    let predicate = &rolled_back_by_the_test(&site, &run);
    assert_eq!(
        predicate["metrics"]["prometheus"]["url"],
        format!("http://127.0.0.1:{}/", prometheus.port)
    );
    let rejected = (predicate["decisions"].as_array().expect("decisions").iter())
        .find(|decision| decision["outcome"] == "reject")
        .expect("a rejection")
        .clone();
    eprintln!(
        "prometheus-counted failing canary: rejected at {} errors in {} canary requests; {} requests in all, {} failed",
        rejected["canary"]["errors"], rejected["canary"]["requests"], load.requests, load.failed
    );
}

#[test]
fn prometheus_latency_is_recorded_and_its_ceiling_rolls_back() {
    let _serial = serial();
    let (site, prometheus) = measured_site(0);
    let measured = "latency = 'haproxy_server_response_time_average_seconds{proxy=\"app\",server=\"$pool\"}', max_latency = \"1s\"";
    site.test.write(
        "pipeline.toml",
        &measured_pipeline(&site, &prometheus, measured),
    );
    let (run, load) = run_under_load(&site, 6, true);
    assert_eq!(load.failed, 0, "{}", load.text);
    let predicate = &record(&run)["predicate"];
    assert_eq!(predicate["result"], "promoted");
    let latencies: Vec<f64> = (predicate["decisions"].as_array().expect("decisions").iter())
        .filter_map(|decision| decision["canaryLatencyMs"].as_f64())
        .collect();
    assert!(!latencies.is_empty(), "{predicate}");
    assert!(latencies.iter().all(|ms| *ms < 1000.0), "{latencies:?}");

    // Back to blue, then a canary whose (constant, for the test) latency is 500 ms.
    site.front.command("set weight app/blue 100");
    site.front.command("set weight app/green 0");
    site.front.command("set server app/blue state ready");
    site.test.write(
        "pipeline.toml",
        &measured_pipeline(
            &site,
            &prometheus,
            "latency = 'vector(0.5)', max_latency = \"250ms\"",
        ),
    );
    let run = site.test.run(["run", "pipeline.toml", "--json"]).failure(1);
    assert!(
        run.stdout()
            .contains("the canary's latency 500.0 ms is above max_latency 250.0 ms at 10%"),
        "{}",
        run.stdout()
    );
    assert_eq!(site.front.weights(), (100, 0));
}
