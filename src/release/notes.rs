//! Release notes from the commits since the last release, grouped by conventional-commit type
//! (<https://www.conventionalcommits.org/en/v1.0.0/>). Pure: commits in, Markdown out.

use std::fmt::Write as _;

/// A commit as the notes read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    /// The first line of the message.
    pub summary: String,
    /// The rest, for `BREAKING CHANGE:` footers.
    pub body: String,
}

/// The sections, in the order they are printed; commits of other or no type go to `Other`.
const SECTIONS: &[(&str, &str)] = &[
    ("feat", "Features"),
    ("fix", "Bug fixes"),
    ("perf", "Performance"),
    ("refactor", "Refactoring"),
    ("docs", "Documentation"),
    ("test", "Tests"),
    ("build", "Build"),
    ("ci", "Continuous integration"),
    ("chore", "Chores"),
    ("revert", "Reverts"),
    ("style", "Style"),
];

/// One commit's header, read as `type(scope)!: description`.
#[derive(Debug, PartialEq, Eq)]
struct Header<'a> {
    kind: Option<&'a str>,
    scope: Option<&'a str>,
    breaking: bool,
    description: &'a str,
}

fn header(summary: &str) -> Header<'_> {
    let plain = Header {
        kind: None,
        scope: None,
        breaking: false,
        description: summary.trim(),
    };
    let Some((prefix, description)) = summary.split_once(": ") else {
        return plain;
    };
    let (prefix, breaking) = match prefix.strip_suffix('!') {
        Some(prefix) => (prefix, true),
        None => (prefix, false),
    };
    let (kind, scope) = match prefix.split_once('(') {
        Some((kind, scope)) => match scope.strip_suffix(')') {
            Some(scope) if !scope.is_empty() => (kind, Some(scope)),
            _ => return plain,
        },
        None => (prefix, None),
    };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return plain;
    }
    Header {
        kind: Some(kind),
        scope,
        breaking,
        description: description.trim(),
    }
}

/// Markdown notes for `version`: breaking changes first, then each type's section, then the
/// rest. Commits come newest first, as given.
#[must_use]
pub fn render(version: &str, previous: Option<&str>, commits: &[Commit]) -> String {
    let mut text = format!("# {version}\n\n");
    let count = match commits.len() {
        1 => "1 commit".to_owned(),
        many => format!("{many} commits"),
    };
    match previous {
        Some(tag) => {
            let _ = writeln!(text, "{count} since {tag}.");
        }
        None => {
            let _ = writeln!(text, "The first release: {count}.");
        }
    }
    let parsed: Vec<(Header<'_>, &Commit)> = commits
        .iter()
        .map(|commit| (header(&commit.summary), commit))
        .collect();
    let line = |(header, commit): &(Header<'_>, &Commit)| {
        let short = &commit.id[..commit.id.len().min(8)];
        match header.scope {
            Some(scope) => format!("- **{scope}:** {} ({short})\n", header.description),
            None => format!("- {} ({short})\n", header.description),
        }
    };
    let breaking: Vec<_> = (parsed.iter())
        .filter(|(header, commit)| {
            header.breaking
                || commit.body.lines().any(|line| {
                    line.starts_with("BREAKING CHANGE:") || line.starts_with("BREAKING-CHANGE:")
                })
        })
        .collect();
    if !breaking.is_empty() {
        text.push_str("\n## Breaking changes\n\n");
        for entry in breaking {
            text.push_str(&line(entry));
        }
    }
    for (kind, title) in SECTIONS {
        let entries: Vec<_> = (parsed.iter())
            .filter(|(header, _)| {
                header
                    .kind
                    .is_some_and(|found| found.eq_ignore_ascii_case(kind))
            })
            .collect();
        if !entries.is_empty() {
            let _ = write!(text, "\n## {title}\n\n");
            for entry in entries {
                text.push_str(&line(entry));
            }
        }
    }
    let other: Vec<_> = (parsed.iter())
        .filter(|(header, _)| {
            header.kind.is_none_or(|found| {
                !SECTIONS
                    .iter()
                    .any(|(kind, _)| found.eq_ignore_ascii_case(kind))
            })
        })
        .collect();
    if !other.is_empty() {
        text.push_str("\n## Other changes\n\n");
        for entry in other {
            text.push_str(&line(entry));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(id: &str, summary: &str, body: &str) -> Commit {
        Commit {
            id: id.repeat(40 / id.len()),
            summary: summary.into(),
            body: body.into(),
        }
    }

    #[test]
    fn headers_follow_the_conventional_commits_grammar() {
        assert_eq!(
            header("feat(cli)!: add release"),
            Header {
                kind: Some("feat"),
                scope: Some("cli"),
                breaking: true,
                description: "add release"
            }
        );
        assert_eq!(header("fix: a bug").kind, Some("fix"));
        for plain in [
            "Merge branch 'x'",
            "feat(: broken",
            "feat(): empty scope",
            "a b: c",
            "fix:no space",
        ] {
            assert_eq!(header(plain).kind, None, "{plain}");
        }
    }

    #[test]
    fn notes_group_by_type_with_breaking_changes_first_and_the_rest_last() {
        let commits = [
            commit("a", "feat(release): cut tagged releases", ""),
            commit("b", "fix: keep the tag on failure", ""),
            commit("c", "refactor!: one git module", ""),
            commit(
                "d",
                "docs: release guide",
                "BREAKING CHANGE: renamed a flag",
            ),
            commit("e", "Update README", ""),
            commit("f", "FEAT: shouting", ""),
        ];
        let notes = render("1.2.0", Some("v1.1.0"), &commits);
        assert_eq!(
            notes,
            "# 1.2.0\n\n6 commits since v1.1.0.\n\n\
             ## Breaking changes\n\n- one git module (cccccccc)\n- release guide (dddddddd)\n\n\
             ## Features\n\n- **release:** cut tagged releases (aaaaaaaa)\n- shouting (ffffffff)\n\n\
             ## Bug fixes\n\n- keep the tag on failure (bbbbbbbb)\n\n\
             ## Refactoring\n\n- one git module (cccccccc)\n\n\
             ## Documentation\n\n- release guide (dddddddd)\n\n\
             ## Other changes\n\n- Update README (eeeeeeee)\n"
        );
        assert!(render("0.1.0", None, &[]).contains("The first release: 0 commits."));
    }
}
