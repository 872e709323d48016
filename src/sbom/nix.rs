//! A Nix closure as an inventory: every store path with its NAR hash, the name and version
//! Nix itself would read from the path, and its references as dependencies. Pure: the caller
//! asks Nix for the closure (`nix path-info --json --recursive`).

use crate::nix::PathInfo;
use crate::sbom::{Inventory, Package, Subject};

/// What the packages' SHA-256 is of: a store path's content has no archive of its own.
pub const NAR_NOTE: &str = "sha256 is the NAR hash of the store path";

/// The inventory of `root`'s closure, `closure` being what `nix path-info --recursive` said.
pub fn inventory(root: &str, closure: &[PathInfo], subject: Subject) -> Result<Inventory, String> {
    if !closure.iter().any(|info| info.path == root) {
        return Err(format!("Nix did not list `{root}` in its own closure"));
    }
    let mut packages: Vec<Package> = closure
        .iter()
        .map(|info| {
            let (name, version) = name_and_version(&info.path);
            let mut depends_on: Vec<String> = info
                .references
                .iter()
                .filter(|reference| **reference != info.path)
                .cloned()
                .collect();
            depends_on.sort();
            depends_on.dedup();
            Package {
                id: info.path.clone(),
                name,
                version,
                purl: None,
                sha256: Some(info.nar_hash),
                download: None,
                license: None,
                depends_on,
                comment: Some(NAR_NOTE),
            }
        })
        .collect();
    packages.sort_by(|left, right| left.id.cmp(&right.id));
    packages.dedup_by(|later, earlier| later.id == earlier.id);
    Ok(Inventory {
        subject,
        also: Vec::new(),
        packages,
        files: Vec::new(),
        roots: vec![root.to_owned()],
    })
}

/// Nix's own rule (`DrvName`): the name is everything before the first `-` that is followed
/// by something other than a letter; the rest is the version. `/nix/store/<hash>-` is dropped.
#[must_use]
pub fn name_and_version(store_path: &str) -> (String, Option<String>) {
    let base = store_path.rsplit('/').next().unwrap_or(store_path);
    let name = base.split_once('-').map_or(base, |(_, name)| name);
    let bytes = name.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'-'
            && bytes
                .get(index + 1)
                .is_some_and(|next| !next.is_ascii_alphabetic())
        {
            return (name[..index].to_owned(), Some(name[index + 1..].to_owned()));
        }
    }
    (name.to_owned(), None)
}

/// The store path `path` is in or points to (through out-links), if any.
#[must_use]
pub fn store_path_of(path: &std::path::Path) -> Option<String> {
    let resolved = std::fs::canonicalize(path).ok()?;
    let text = resolved.to_str()?;
    let rest = text.strip_prefix("/nix/store/")?;
    let top = rest.split('/').next()?;
    (!top.is_empty()).then(|| format!("/nix/store/{top}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_split_as_nix_splits_them() {
        let split = |path: &str| name_and_version(path);
        assert_eq!(
            split("/nix/store/0c0g5vkx6ga6lw2hlvjshqj2xbhxlhsg-hello-2.12.1"),
            ("hello".to_owned(), Some("2.12.1".to_owned()))
        );
        assert_eq!(
            split("/nix/store/0c0g5vkx6ga6lw2hlvjshqj2xbhxlhsg-xz-5.4.4-bin"),
            ("xz".to_owned(), Some("5.4.4-bin".to_owned()))
        );
        assert_eq!(
            split("/nix/store/0c0g5vkx6ga6lw2hlvjshqj2xbhxlhsg-gnu-config-2023-07-31"),
            ("gnu-config".to_owned(), Some("2023-07-31".to_owned()))
        );
        assert_eq!(
            split("/nix/store/0c0g5vkx6ga6lw2hlvjshqj2xbhxlhsg-dep"),
            ("dep".to_owned(), None)
        );
    }
}
