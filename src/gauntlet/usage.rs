//! A run's usage document as a gate's evidence (docs/usage.md): the `usage.intoto.json` a run
//! signs (the DSSE envelope, or the bare Statement), summed over the steps the run executed.
//! A figure no step measured is absent, so a gate that requires it fails rather than passing
//! on a zero nobody measured.

use crate::attest::predicate::usage::{RunUsage, URI};
use crate::gauntlet::Reading;

/// The metrics, as a gate names them.
pub const METRICS: &[&str] = &[
    "cpu_hours",
    "executed",
    "cached",
    "peak_memory_bytes",
    "wall_seconds",
    "saved_cpu_hours",
];

/// Microseconds in an hour, as the float a reading holds.
const HOUR_US: f64 = 3_600_000_000.0;

#[expect(
    clippy::cast_precision_loss,
    reason = "a reading is a float; CPU microseconds stay exact far beyond any run (2^53 µs is 285 years)"
)]
pub fn read(text: &str) -> Result<Reading, String> {
    let usage: RunUsage = crate::gauntlet::predicate(text, URI, "gantry's usage")?;
    let (mut executed, mut cached) = (0, 0);
    let (mut cpu, mut saved) = (None::<u64>, None::<u64>);
    let mut peak = None::<u64>;
    for step in &usage.steps {
        let measured = step.usage.as_ref();
        if step.status == "cached" {
            cached += 1;
            if let Some(measured) = measured {
                saved = Some(saved.unwrap_or(0).saturating_add(measured.billed_cpu_us()));
            }
            continue;
        }
        executed += 1;
        if let Some(measured) = measured {
            cpu = Some(cpu.unwrap_or(0).saturating_add(measured.billed_cpu_us()));
            if let Some(bytes) = measured.peak_memory_bytes {
                peak = Some(peak.map_or(bytes, |top| top.max(bytes)));
            }
        }
    }
    let mut reading = Reading::default();
    reading.set("executed", executed);
    reading.set("cached", cached);
    if let Some(cpu) = cpu {
        reading
            .values
            .insert("cpu_hours".to_owned(), cpu as f64 / HOUR_US);
    }
    // Hits whose entries nobody measured saved an unknown amount, not nothing.
    if let Some(saved) = saved {
        reading
            .values
            .insert("saved_cpu_hours".to_owned(), saved as f64 / HOUR_US);
    }
    if let Some(peak) = peak {
        reading
            .values
            .insert("peak_memory_bytes".to_owned(), peak as f64);
    }
    if let (Some(started), Some(finished)) = (
        crate::time::parse_rfc3339(&usage.started_on),
        crate::time::parse_rfc3339(&usage.finished_on),
    ) {
        reading
            .values
            .insert("wall_seconds".to_owned(), (finished - started) as f64);
    }
    Ok(reading)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_runs_document_is_summed_over_what_it_executed() {
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [],
            "predicateType": super::URI,
            "predicate": {"runId": "r", "pipeline": {"name": "p", "path": "p.toml", "sha256": ""},
                "machine": {"cores": 2}, "startedOn": "2026-12-01T00:00:00Z", "finishedOn": "2026-12-01T00:01:30Z",
                "steps": [
                    {"step": "a", "status": "executed", "usage": {"method": "wait4", "wallUs": 10, "cpuUserUs": 1_800_000_000u64, "cpuSystemUs": 0, "peakMemoryBytes": 5}},
                    {"step": "b", "status": "executed", "usage": {"method": "wall", "wallUs": 1_800_000_000u64}},
                    {"step": "c", "status": "cached", "usage": {"method": "wait4", "wallUs": 1, "cpuUserUs": 3_600_000_000u64}}
                ]}
        });
        let reading = super::read(&statement.to_string()).expect("reading");
        assert!(
            (reading.values["cpu_hours"] - 1.0).abs() < 1e-9,
            "cpu_hours"
        );
        assert!((reading.values["executed"] - 2.0).abs() < 1e-9, "executed");
        assert!((reading.values["cached"] - 1.0).abs() < 1e-9, "cached");
        assert!(
            (reading.values["saved_cpu_hours"] - 1.0).abs() < 1e-9,
            "saved_cpu_hours"
        );
        assert!(
            (reading.values["peak_memory_bytes"] - 5.0).abs() < 1e-9,
            "peak_memory_bytes"
        );
        assert!(
            (reading.values["wall_seconds"] - 90.0).abs() < 1e-9,
            "wall_seconds"
        );
        assert!(super::read("{}").is_err());
    }

    /// Cache hits whose entries nobody measured saved an unknown amount: the figure is
    /// absent, so a gate requiring it fails instead of reading a zero.
    #[test]
    fn unmeasured_hits_leave_what_they_saved_unknown() {
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [],
            "predicateType": super::URI,
            "predicate": {"runId": "r", "pipeline": {"name": "p", "path": "p.toml", "sha256": ""},
                "machine": {"cores": 2}, "startedOn": "2026-12-01T00:00:00Z", "finishedOn": "2026-12-01T00:00:01Z",
                "steps": [{"step": "c", "status": "cached"}]}
        });
        let reading = super::read(&statement.to_string()).expect("reading");
        assert!((reading.values["cached"] - 1.0).abs() < 1e-9, "cached");
        assert!(!reading.values.contains_key("saved_cpu_hours"));
        assert!(!reading.values.contains_key("cpu_hours"));
    }
}
