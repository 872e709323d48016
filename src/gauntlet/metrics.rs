//! A JSON metrics file (a load test's summary, a cost report, any tool's numbers): each
//! requirement names its value by JSON pointer (RFC 6901), such as `/latency/p95`.

use serde_json::Value;

use crate::gauntlet::Reading;

/// The numbers at `pointers` in the document. A pointer that names nothing, or something
/// other than a number, is an error: a gate must not pass on a value it could not read.
pub fn measure(text: &str, pointers: &[&str]) -> Result<Reading, String> {
    let document: Value =
        serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let mut reading = Reading::default();
    for pointer in pointers {
        let value = document
            .pointer(pointer)
            .ok_or_else(|| format!("`{pointer}` names nothing in the file"))?;
        let number = value
            .as_f64()
            .ok_or_else(|| format!("`{pointer}` is {value}, not a number"))?;
        reading.values.insert((*pointer).to_owned(), number);
    }
    Ok(reading)
}
