//! An action's input root as REAPI `Directory` messages: a Merkle tree in which each folder is
//! named by the digest of its encoded message, entries sorted by name as the API requires, so
//! the same files always give the same root digest. Pure: entries in, messages out.

use std::collections::BTreeMap;

use prost::Message as _;

use super::blob;
use super::reapi::{self, Directory, DirectoryNode, FileNode, SymlinkNode};

/// One entry of an input root, at a relative `/`-separated path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    File {
        digest: reapi::Digest,
        executable: bool,
    },
    Symlink {
        target: String,
    },
    /// A folder, possibly empty (the folders a step's outputs go into).
    Folder,
}

/// The encoded tree: its root's digest and every folder's message, by digest hash.
#[derive(Debug)]
pub struct InputRoot {
    pub root: reapi::Digest,
    /// (digest, encoded `Directory`) of every folder, the root included, each once.
    pub folders: BTreeMap<String, (reapi::Digest, Vec<u8>)>,
}

#[derive(Default)]
struct Node {
    entries: BTreeMap<String, Child>,
}

enum Child {
    File(reapi::Digest, bool),
    Symlink(String),
    Folder(Node),
}

/// Builds the tree of `entries`. A path that is absolute, empty, has `.` or `..` components,
/// or is both a folder and something else is an error that names it.
pub fn build<'a>(entries: impl IntoIterator<Item = (&'a str, Entry)>) -> Result<InputRoot, String> {
    let mut root = Node::default();
    for (path, entry) in entries {
        insert(&mut root, path, entry)?;
    }
    let mut folders = BTreeMap::new();
    let root = encode(root, &mut folders);
    Ok(InputRoot { root, folders })
}

fn insert(root: &mut Node, path: &str, entry: Entry) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    if path.is_empty()
        || parts
            .iter()
            .any(|part| part.is_empty() || *part == "." || *part == "..")
    {
        return Err(format!(
            "`{path}` is not a relative path without `.` or `..`"
        ));
    }
    let (name, parents) = parts.split_last().unwrap_or((&"", &[]));
    let mut node = root;
    for part in parents {
        let child = node
            .entries
            .entry((*part).to_owned())
            .or_insert_with(|| Child::Folder(Node::default()));
        node = match child {
            Child::Folder(folder) => folder,
            _ => {
                return Err(format!(
                    "`{path}` is inside `{part}`, which is not a folder"
                ));
            }
        };
    }
    let existing = node.entries.get(*name);
    match (existing, &entry) {
        (None, _) | (Some(Child::Folder(_)), Entry::Folder) => {}
        _ => return Err(format!("`{path}` is listed twice")),
    }
    if existing.is_some() {
        return Ok(());
    }
    let child = match entry {
        Entry::File { digest, executable } => Child::File(digest, executable),
        Entry::Symlink { target } => Child::Symlink(target),
        Entry::Folder => Child::Folder(Node::default()),
    };
    node.entries.insert((*name).to_owned(), child);
    Ok(())
}

/// Encodes `node` and its folders (children first), returning its digest.
fn encode(node: Node, folders: &mut BTreeMap<String, (reapi::Digest, Vec<u8>)>) -> reapi::Digest {
    let mut directory = Directory::default();
    // BTreeMap iterates in byte order of the names: the order the API requires.
    for (name, child) in node.entries {
        match child {
            Child::File(digest, is_executable) => directory.files.push(FileNode {
                name,
                digest: Some(digest),
                is_executable,
                node_properties: None,
            }),
            Child::Symlink(target) => directory.symlinks.push(SymlinkNode {
                name,
                target,
                node_properties: None,
            }),
            Child::Folder(folder) => {
                let digest = encode(folder, folders);
                directory.directories.push(DirectoryNode {
                    name,
                    digest: Some(digest),
                });
            }
        }
    }
    let (digest, bytes) = blob::encoded(&directory);
    folders
        .entry(digest.hash.clone())
        .or_insert_with(|| (digest.clone(), bytes));
    digest
}

/// Every entry of an output folder's `Tree` (its root and children), with paths relative to
/// the folder, parents before what they hold. A child the tree does not carry, or a name with
/// `/`, `.` or `..`, is an error: a remote's answer is checked, not trusted.
pub fn flatten(tree: &reapi::Tree) -> Result<Vec<(String, Entry)>, String> {
    let children: BTreeMap<String, &Directory> = (tree.children.iter())
        .map(|child| (blob::encoded(child).0.hash, child))
        .collect();
    let root = tree
        .root
        .as_ref()
        .ok_or_else(|| "an output folder's tree has no root".to_owned())?;
    entries(root, &children)
}

/// Every entry under `root`, whose folders are looked up in `children` by digest hash: an
/// input root a worker fetched, or a `Tree`'s folders. Checked as [`flatten`] checks.
pub fn entries(
    root: &Directory,
    children: &BTreeMap<String, &Directory>,
) -> Result<Vec<(String, Entry)>, String> {
    let mut entries = Vec::new();
    walk(root, "", children, &mut entries, 0)?;
    Ok(entries)
}

/// The `Tree` of a built folder: its root and every other folder once.
pub fn to_tree(built: &InputRoot) -> Result<reapi::Tree, String> {
    let decode = |bytes: &[u8]| {
        Directory::decode(bytes).map_err(|error| format!("a folder does not decode: {error}"))
    };
    let root = built
        .folders
        .get(&built.root.hash)
        .ok_or_else(|| "a built folder lacks its root".to_owned())?;
    let mut children = Vec::new();
    for (hash, (_, bytes)) in &built.folders {
        if *hash != built.root.hash {
            children.push(decode(bytes)?);
        }
    }
    Ok(reapi::Tree {
        root: Some(decode(&root.1)?),
        children,
    })
}

/// Deeper than this is a loop or an attack.
const MAX_DEPTH: usize = 256;

fn walk(
    directory: &Directory,
    prefix: &str,
    children: &BTreeMap<String, &Directory>,
    entries: &mut Vec<(String, Entry)>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "an output folder is nested deeper than {MAX_DEPTH}"
        ));
    }
    let name_of = |name: &str| -> Result<String, String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            Err(format!("an output folder holds an entry named `{name}`"))
        } else {
            Ok(format!("{prefix}{name}"))
        }
    };
    for file in &directory.files {
        let digest = file
            .digest
            .clone()
            .ok_or_else(|| format!("output file `{}` has no digest", file.name))?;
        entries.push((
            name_of(&file.name)?,
            Entry::File {
                digest,
                executable: file.is_executable,
            },
        ));
    }
    for link in &directory.symlinks {
        entries.push((
            name_of(&link.name)?,
            Entry::Symlink {
                target: link.target.clone(),
            },
        ));
    }
    for folder in &directory.directories {
        let path = name_of(&folder.name)?;
        let hash = folder.digest.as_ref().map(|digest| digest.hash.as_str());
        let child = hash
            .and_then(|hash| children.get(hash))
            .ok_or_else(|| format!("output folder `{path}` is not in its tree"))?;
        entries.push((path.clone(), Entry::Folder));
        walk(child, &format!("{path}/"), children, entries, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn file(content: &[u8], executable: bool) -> Entry {
        Entry::File {
            digest: blob::of_bytes(content),
            executable,
        }
    }

    #[test]
    fn the_same_files_in_any_order_give_the_same_root() {
        let entries = [
            ("src/b.txt", file(b"b", false)),
            ("src/a.txt", file(b"a", false)),
            ("run.sh", file(b"#!/bin/sh", true)),
            ("out", Entry::Folder),
            (
                "link",
                Entry::Symlink {
                    target: "src/a.txt".to_owned(),
                },
            ),
        ];
        let forward = build(entries.iter().cloned()).unwrap();
        let backward = build(entries.iter().rev().cloned()).unwrap();
        assert_eq!(forward.root, backward.root);
        // root, src, out; `out` is the empty folder's well-known digest.
        assert_eq!(forward.folders.len(), 3);
        let (_, bytes) = &forward.folders[&forward.root.hash];
        let root = Directory::decode(bytes.as_slice()).unwrap();
        let names: Vec<&str> = root.directories.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["out", "src"]);
        assert_eq!(root.files[0].name, "run.sh");
        assert!(root.files[0].is_executable);
        assert_eq!(root.symlinks[0].target, "src/a.txt");
        assert_eq!(
            root.directories[0].digest.as_ref().unwrap().hash,
            blob::of_bytes(b"").hash,
            "an empty Directory encodes to no bytes"
        );
    }

    #[test]
    fn a_tree_flattens_back_to_its_entries_and_a_missing_child_is_an_error() {
        let built = build([
            ("bin/tool", file(b"x", true)),
            ("data", file(b"d", false)),
            ("bin/deep/empty", Entry::Folder),
        ])
        .unwrap();
        let tree = to_tree(&built).unwrap();
        assert_eq!(tree.children.len(), 3, "bin, bin/deep, bin/deep/empty");
        let paths: Vec<String> = flatten(&tree)
            .unwrap()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            paths,
            ["data", "bin", "bin/tool", "bin/deep", "bin/deep/empty"]
        );
        let lacking = reapi::Tree {
            root: tree.root.clone(),
            children: Vec::new(),
        };
        assert!(
            flatten(&lacking)
                .unwrap_err()
                .contains("`bin` is not in its tree")
        );
    }

    #[test]
    fn a_changed_file_changes_the_root_and_bad_paths_are_named() {
        let one = build([("a/b", file(b"1", false))]).unwrap();
        let two = build([("a/b", file(b"2", false))]).unwrap();
        assert_ne!(one.root, two.root);
        for bad in ["", "/abs", "a/../b", "a//b", "./a"] {
            let error = build([(bad, file(b"x", false))]).unwrap_err();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
        let clash = build([("a", file(b"x", false)), ("a/b", file(b"y", false))]).unwrap_err();
        assert!(clash.contains("not a folder"), "{clash}");
        let twice = build([("a", file(b"x", false)), ("a", file(b"x", false))]).unwrap_err();
        assert!(twice.contains("listed twice"), "{twice}");
    }
}
