//! Release versions: semver, the tags that name them, and which release came last.

use semver::Version;

/// Tags of releases are the version with this prefix: `v1.2.0`.
pub const TAG_PREFIX: &str = "v";

/// The tag naming `version`.
#[must_use]
pub fn tag_name(version: &Version) -> String {
    format!("{TAG_PREFIX}{version}")
}

/// `1.2.0` or `v1.2.0`, as semver 2.0 (pre-release and build metadata allowed).
pub fn parse(text: &str) -> Result<Version, String> {
    let bare = text.strip_prefix(TAG_PREFIX).unwrap_or(text);
    Version::parse(bare).map_err(|error| {
        format!("`{text}` is not a semantic version ({error}); write it as MAJOR.MINOR.PATCH, such as 1.4.0 or 2.0.0-rc.1")
    })
}

/// The release a tag names, if it is one: `v` and a semantic version.
#[must_use]
pub fn of_tag(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix(TAG_PREFIX)?).ok()
}

/// The highest release among `tags` (by semver precedence), with its tag.
#[must_use]
pub fn last_release<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<(Version, String)> {
    tags.into_iter()
        .filter_map(|tag| of_tag(tag).map(|version| (version, tag.to_owned())))
        .max_by(|(left, _), (right, _)| left.cmp_precedence(right).then_with(|| left.cmp(right)))
}

/// Why `version` may not follow `last`: it must be greater by semver precedence (build
/// metadata does not count).
pub fn follows(version: &Version, last: Option<&(Version, String)>) -> Result<(), String> {
    match last {
        Some((previous, tag)) if version.cmp_precedence(previous).is_le() => Err(format!(
            "{version} is not greater than the last release, {previous} (tag `{tag}`); releases only move forward"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_or_without_the_prefix_and_bad_ones_say_why() {
        assert_eq!(parse("1.2.3").unwrap(), Version::new(1, 2, 3));
        assert_eq!(parse("v1.2.3").unwrap(), Version::new(1, 2, 3));
        assert_eq!(tag_name(&parse("2.0.0-rc.1").unwrap()), "v2.0.0-rc.1");
        for bad in ["1.2", "01.2.3", "1.2.3.4", "latest", "", "v"] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains("not a semantic version"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_last_release_is_the_highest_by_precedence_and_new_ones_must_be_higher() {
        let tags = [
            "v0.9.0",
            "v1.10.0",
            "v1.2.0",
            "nightly",
            "v1.10.0-rc.1",
            "1.99.0",
        ];
        let last = last_release(tags).unwrap();
        assert_eq!(last.1, "v1.10.0");
        assert!(follows(&parse("1.10.1").unwrap(), Some(&last)).is_ok());
        assert!(follows(&parse("1.11.0-alpha").unwrap(), Some(&last)).is_ok());
        for behind in ["1.10.0", "1.9.9", "1.10.0-rc.2", "1.10.0+build.5"] {
            let error = follows(&parse(behind).unwrap(), Some(&last)).unwrap_err();
            assert!(
                error.contains("not greater than the last release"),
                "{error}"
            );
        }
        assert!(follows(&parse("0.0.1").unwrap(), None).is_ok());
        assert_eq!(last_release(["nightly"]), None);
    }
}
