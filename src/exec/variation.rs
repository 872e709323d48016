//! What `gantry repro` changes about a step's surroundings to find outputs that depend on
//! them: the sandbox's build path, HOME, TMPDIR, hostname, user, umask and clocks, the locale
//! and time zone when the step does not declare them, and the order of directory entries.
//! A normal run uses [`Variation::none`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::exec::sandbox::Profile;

/// One thing `gantry repro` can vary (`--vary`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aspect {
    BuildPath,
    Home,
    Tmpdir,
    Hostname,
    User,
    Umask,
    Locale,
    Timezone,
    Clock,
    FileOrder,
}

impl Aspect {
    pub const ALL: [Self; 10] = [
        Self::BuildPath,
        Self::Home,
        Self::Tmpdir,
        Self::Hostname,
        Self::User,
        Self::Umask,
        Self::Locale,
        Self::Timezone,
        Self::Clock,
        Self::FileOrder,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::BuildPath => "build-path",
            Self::Home => "home",
            Self::Tmpdir => "tmpdir",
            Self::Hostname => "hostname",
            Self::User => "user",
            Self::Umask => "umask",
            Self::Locale => "locale",
            Self::Timezone => "timezone",
            Self::Clock => "clock",
            Self::FileOrder => "file-order",
        }
    }
}

impl fmt::Display for Aspect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Aspect {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|aspect| aspect.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|aspect| aspect.name()).collect();
                format!(
                    "unknown variation `{text}`; one of: all, none, {}",
                    names.join(", ")
                )
            })
    }
}

/// Parses `--vary`: `all`, `none`, or a comma-separated list where `-NAME` removes one
/// (`all,-file-order`).
pub fn parse_aspects(text: &str) -> Result<BTreeSet<Aspect>, String> {
    let mut aspects = BTreeSet::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        match part {
            "all" => aspects.extend(Aspect::ALL),
            "none" => aspects.clear(),
            _ => match part.strip_prefix('-') {
                Some(name) => {
                    aspects.remove(&name.parse::<Aspect>()?);
                }
                None => {
                    aspects.insert(part.parse::<Aspect>()?);
                }
            },
        }
    }
    Ok(aspects)
}

/// The varied surroundings: a sandbox profile plus the environment and file-order changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variation {
    pub aspects: BTreeSet<Aspect>,
    pub sandbox: Profile,
    /// `LANG` and `LC_ALL` for steps that declare neither.
    pub locale: Option<String>,
    /// `TZ` for steps that do not declare it.
    pub timezone: Option<String>,
    /// Each step gets a fresh scratch folder whose input entries are made in reverse order.
    pub reverse_file_order: bool,
}

/// A locale and a time zone far from the defaults (`C.UTF-8`, `UTC`), as reprotest uses.
pub const VARIED_LOCALE: &str = "fr_CH.UTF-8";
pub const VARIED_TIMEZONE: &str = "GMT-14";
/// 398 days, reprotest's time shift.
pub const CLOCK_OFFSET: u32 = 398 * 24 * 3600;

impl Variation {
    /// The surroundings of a normal run.
    #[must_use]
    pub fn none() -> Self {
        Self::of(&BTreeSet::new())
    }

    #[must_use]
    pub fn of(aspects: &BTreeSet<Aspect>) -> Self {
        let mut sandbox = Profile::standard();
        let has = |aspect| aspects.contains(&aspect);
        if has(Aspect::BuildPath) {
            "/rebuild/build-path-varied".clone_into(&mut sandbox.build_dir);
        }
        if has(Aspect::Home) {
            "/home/rebuilder".clone_into(&mut sandbox.home_dir);
        }
        if has(Aspect::Tmpdir) {
            "/tmp/varied-tmpdir".clone_into(&mut sandbox.tmp_dir);
        }
        if has(Aspect::Hostname) {
            "gantry-repro".clone_into(&mut sandbox.hostname);
        }
        if has(Aspect::User) {
            sandbox.uid = 2000;
            sandbox.gid = 2000;
        }
        if has(Aspect::Umask) {
            sandbox.umask = 0o002;
        }
        if has(Aspect::Clock) {
            sandbox.clock_offset = CLOCK_OFFSET;
        }
        Self {
            aspects: aspects.clone(),
            sandbox,
            locale: has(Aspect::Locale).then(|| VARIED_LOCALE.to_owned()),
            timezone: has(Aspect::Timezone).then(|| VARIED_TIMEZONE.to_owned()),
            reverse_file_order: has(Aspect::FileOrder),
        }
    }

    /// Each varied aspect with what it became, for reports and attestations.
    #[must_use]
    pub fn describe(&self) -> Vec<(Aspect, String)> {
        let standard = Profile::standard();
        self.aspects
            .iter()
            .map(|&aspect| {
                let text = match aspect {
                    Aspect::BuildPath => {
                        format!("{} → {}", standard.build_dir, self.sandbox.build_dir)
                    }
                    Aspect::Home => format!("{} → {}", standard.home_dir, self.sandbox.home_dir),
                    Aspect::Tmpdir => format!("{} → {}", standard.tmp_dir, self.sandbox.tmp_dir),
                    Aspect::Hostname => {
                        format!("{} → {}", standard.hostname, self.sandbox.hostname)
                    }
                    Aspect::User => format!(
                        "uid/gid {}/{} → {}/{}",
                        standard.uid, standard.gid, self.sandbox.uid, self.sandbox.gid
                    ),
                    Aspect::Umask => {
                        format!("{:03o} → {:03o}", standard.umask, self.sandbox.umask)
                    }
                    Aspect::Locale => format!("C.UTF-8 → {VARIED_LOCALE} (when undeclared)"),
                    Aspect::Timezone => format!("UTC → {VARIED_TIMEZONE} (when undeclared)"),
                    Aspect::Clock => format!(
                        "monotonic and boot clocks +{} days; the wall clock is simply later",
                        self.sandbox.clock_offset / 86_400
                    ),
                    Aspect::FileOrder => {
                        "input folder entries made in reverse order on a fresh folder".to_owned()
                    }
                };
                (aspect, text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_lists_are_parsed() {
        assert_eq!(parse_aspects("all").expect("all").len(), Aspect::ALL.len());
        assert!(parse_aspects("none").expect("none").is_empty());
        let some = parse_aspects("all,-file-order,-clock").expect("list");
        assert!(!some.contains(&Aspect::FileOrder) && !some.contains(&Aspect::Clock));
        assert_eq!(some.len(), Aspect::ALL.len() - 2);
        assert_eq!(
            parse_aspects("umask, locale").expect("list"),
            BTreeSet::from([Aspect::Umask, Aspect::Locale])
        );
        let error = parse_aspects("umask,colour").expect_err("unknown");
        assert!(
            error.contains("`colour`") && error.contains("file-order"),
            "{error}"
        );
    }

    #[test]
    fn no_variation_is_the_standard_sandbox() {
        let none = Variation::none();
        assert_eq!(none.sandbox, Profile::standard());
        assert_eq!(
            none.sandbox.describe(),
            crate::exec::sandbox::SETTINGS_VERSION
        );
        assert!(none.locale.is_none() && none.timezone.is_none() && !none.reverse_file_order);
        let all = Variation::of(&Aspect::ALL.into_iter().collect());
        assert_ne!(all.sandbox.build_dir, none.sandbox.build_dir);
        assert_eq!(all.describe().len(), Aspect::ALL.len());
    }
}
