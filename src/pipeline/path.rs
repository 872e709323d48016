//! Workspace-relative paths as pipelines write them, normalised so that `./out/a` and
//! `out/a` name the same thing.

/// A checked relative path: `/`-separated, no `.` or `..` parts, never empty.
#[derive(Debug, PartialEq, Eq)]
pub struct RelativePath {
    pub path: String,
    /// Written with a trailing `/`: names a folder.
    pub directory: bool,
}

/// Folders gantry owns inside the workspace; steps may neither read nor write them.
pub const RESERVED: &[&str] = &[".gantry", ".git"];

pub fn normalize(text: &str) -> Result<RelativePath, String> {
    if text.is_empty() {
        return Err("path is empty".to_owned());
    }
    if text.starts_with('/') {
        return Err(format!(
            "`{text}` is absolute; paths are relative to the workspace root"
        ));
    }
    if text.contains('\\') || text.contains('\0') {
        return Err(format!(
            "`{text}` contains a backslash or NUL; use `/` between folders"
        ));
    }
    let directory = text.ends_with('/');
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "`{text}` leaves the workspace (`..` is not allowed)"
                ));
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(format!(
            "`{text}` names the workspace root itself; name a file or folder in it"
        ));
    }
    if RESERVED.contains(&parts[0]) {
        return Err(format!(
            "`{text}` is inside `{}`, which gantry reserves",
            parts[0]
        ));
    }
    Ok(RelativePath {
        path: parts.join("/"),
        directory,
    })
}

/// True when `text` uses glob syntax (`*`, `?`, `[...]`, `{a,b}`).
#[must_use]
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

/// True when `inner` is `outer` or lies inside folder `outer`.
#[must_use]
pub fn is_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || (inner.len() > outer.len()
            && inner.starts_with(outer)
            && inner.as_bytes()[outer.len()] == b'/')
}

/// An input glob: `*`, `?` and `[...]` stay within one path component, `**` crosses folders,
/// as in a shell or `.gitignore`.
pub fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
}

/// Whether glob `pattern` could match a file inside `folder` (a path whose files are not
/// known before its step runs): each of the folder's components is matched by the pattern's
/// component at its place, and the pattern goes deeper (or a `**` takes the rest).
#[must_use]
pub fn could_match_inside(pattern: &str, folder: &str) -> bool {
    let parts: Vec<&str> = pattern.split('/').collect();
    for (index, component) in folder.split('/').enumerate() {
        let Some(part) = parts.get(index) else {
            return false;
        };
        if *part == "**" {
            return true;
        }
        let matches = glob(part).map_or(true, |part| part.compile_matcher().is_match(component));
        if !matches {
            return false;
        }
    }
    parts.len() > folder.split('/').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_in_its_folder() {
        let matcher = glob("*.c").unwrap().compile_matcher();
        assert!(matcher.is_match("a.c"));
        assert!(!matcher.is_match("out/a.c"));
        assert!(
            glob("src/**/*.rs")
                .unwrap()
                .compile_matcher()
                .is_match("src/a/b/c.rs")
        );
        assert!(!could_match_inside("*.c", "out"));
        assert!(could_match_inside("out/*.o", "out"));
        assert!(could_match_inside("*/lib/*.a", "build/lib"));
        assert!(!could_match_inside("*/lib/*.a", "build/bin"));
        assert!(could_match_inside("**/*.h", "install/include"));
        assert!(!could_match_inside("out/*", "out/deep"));
        assert!(could_match_inside("out/**", "out/deep"));
    }

    #[test]
    fn normalises_dots_and_slashes() {
        let path = normalize("./out//a.txt").unwrap();
        assert_eq!(
            path,
            RelativePath {
                path: "out/a.txt".into(),
                directory: false
            }
        );
        assert!(normalize("out/dir/").unwrap().directory);
    }

    #[test]
    fn rejects_escapes_and_reserved() {
        assert!(normalize("../etc/passwd").is_err());
        assert!(normalize("/etc/passwd").is_err());
        assert!(normalize("./").is_err());
        assert!(normalize(".gantry/cas/x").is_err());
        assert!(normalize("").is_err());
    }

    #[test]
    fn within_respects_component_boundaries() {
        assert!(is_within("out/a/b", "out/a"));
        assert!(is_within("out/a", "out/a"));
        assert!(!is_within("out/ab", "out/a"));
    }
}
