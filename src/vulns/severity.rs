//! How severe a vulnerability is: the CVSS base score of its vectors (v3.0, v3.1 and v4.0,
//! computed by the `cvss` crate; the highest when there are several), else the database's own
//! label (GHSA's `LOW`, `MODERATE`, `HIGH`, `CRITICAL`). Bands as CVSS defines them.

use std::str::FromStr as _;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const NAMES: [&'static str; 5] = ["none", "low", "medium", "high", "critical"];

    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "low" => Self::Low,
            "medium" | "moderate" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    /// CVSS's bands: 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical.
    #[must_use]
    pub fn of_score(score: f64) -> Self {
        if score >= 9.0 {
            Self::Critical
        } else if score >= 7.0 {
            Self::High
        } else if score >= 4.0 {
            Self::Medium
        } else if score > 0.0 {
            Self::Low
        } else {
            Self::None
        }
    }
}

/// A finding's severity and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rating {
    pub level: Level,
    /// The CVSS base score, when a vector gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The vector scored, or `label` for the database's own label.
    pub source: String,
}

/// The highest-scoring vector's rating, else the label's; `None` when there is neither (or
/// nothing readable).
#[must_use]
pub fn rate(vectors: &[String], label: Option<&str>) -> Option<Rating> {
    let scored = vectors
        .iter()
        .filter_map(|vector| {
            let score = cvss::Cvss::from_str(vector).ok()?.score();
            Some(Rating {
                level: Level::of_score(score),
                score: Some(score),
                source: vector.clone(),
            })
        })
        .max_by(|a, b| {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    scored.or_else(|| {
        Some(Rating {
            level: Level::parse(label?)?,
            score: None,
            source: "label".to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_vectors_score_as_first_defines_them() {
        // Scores from FIRST's calculators (v3.1 and v4.0).
        for (vector, score, level) in [
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                9.8,
                Level::Critical,
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                10.0,
                Level::Critical,
            ),
            (
                "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
                6.2,
                Level::Medium,
            ),
            (
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
                8.1,
                Level::High,
            ),
            (
                "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
                5.9,
                Level::Medium,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
                Level::Critical,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
                6.9,
                Level::Medium,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
                5.1,
                Level::Medium,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
                Level::High,
            ),
        ] {
            let rating = rate(&[vector.to_owned()], None).expect(vector);
            assert_eq!(
                (rating.score, rating.level),
                (Some(score), level),
                "{vector}"
            );
        }
    }

    #[test]
    fn the_highest_vector_wins_then_the_label() {
        let vectors = [
            "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H".to_owned(),
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_owned(),
        ];
        assert_eq!(
            rate(&vectors, Some("LOW")).expect("rating").score,
            Some(9.8)
        );
        let label = rate(&["not a vector".to_owned()], Some("MODERATE")).expect("label");
        assert_eq!((label.level, label.score), (Level::Medium, None));
        assert!(rate(&[], None).is_none());
        assert!(rate(&[], Some("whatever")).is_none());
        assert!(Level::Critical > Level::High && Level::Low > Level::None);
    }
}
