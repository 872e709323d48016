//! A registry's catalogue: `catalog.json` at its root lists every template it holds (a static
//! site cannot list its folders, so `template search` over HTTP reads this), and
//! `template index --html` renders every template's versions, parameters and publisher as
//! one self-contained page for the site (no script, nothing fetched). Pure but `read`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::manifest::Name;
use super::registry::{self, Index, Location};
use crate::report::escape::html;

/// The registry's list of template names.
pub const FILE: &str = "catalog.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub templates: Vec<String>,
}

impl Catalog {
    /// `name` added (sorted, once).
    pub fn add(&mut self, name: &Name) {
        let name = name.to_string();
        if let Err(at) = self.templates.binary_search(&name) {
            self.templates.insert(at, name);
        }
    }

    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// The registry's catalogue (empty when it has none yet).
pub fn read(location: &Location) -> Result<Catalog, String> {
    match location.get(FILE)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|error| format!("the registry's {FILE} is not one: {error}")),
        None => Ok(Catalog::default()),
    }
}

/// Every template's index, in the catalogue's order.
pub fn indexes(location: &Location) -> Result<Vec<Index>, String> {
    let catalog = read(location)?;
    let mut indexes = Vec::new();
    for name in &catalog.templates {
        let name = Name::parse(name)?;
        if let Some(index) = registry::read_index(location, &name)? {
            indexes.push(index);
        }
    }
    Ok(indexes)
}

/// The catalogue page.
#[must_use]
pub fn html_page(title: &str, indexes: &[Index]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; color: #1d2733; }}\n\
         h2 {{ margin-top: 2em; border-bottom: 2px solid #3b7dd8; }}\n\
         table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}\n\
         th {{ background: #e8eef7; text-align: left; }}\n\
         th, td {{ padding: 0.3em 0.8em; border: 1px solid #c8d3e0; }}\n\
         .yanked {{ color: #a33; text-decoration: line-through; }}\n\
         code {{ font-size: 0.95em; }}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>{} templates.</p>\n",
        html(title),
        html(title),
        indexes.len()
    );
    for index in indexes {
        let newest = index.versions.iter().rev().find(|entry| !entry.yanked);
        let _ = write!(
            page,
            "<h2 id=\"{}\">{}</h2>\n<p>{}</p>\n",
            html(&index.name),
            html(&index.name),
            html(newest.map_or("", |entry| entry.description.as_str()))
        );
        if let Some(entry) = newest {
            let _ = writeln!(
                page,
                "<p>Use: <code>uses = \"{}@^{}\"</code></p>",
                html(&index.name),
                html(entry.version.split('.').next().unwrap_or("1"))
            );
            page.push_str("<table>\n<tr><th>parameter</th><th>type</th><th>required</th></tr>\n");
            for (name, shape) in &entry.interface.parameters {
                let _ = writeln!(
                    page,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    html(name),
                    shape.kind.name(),
                    if shape.required { "yes" } else { "no" }
                );
            }
            page.push_str("</table>\n");
        }
        page.push_str(
            "<table>\n<tr><th>version</th><th>gantry</th><th>publisher key</th><th>pack SHA-256</th></tr>\n",
        );
        for entry in index.versions.iter().rev() {
            let class = if entry.yanked {
                " class=\"yanked\""
            } else {
                ""
            };
            let _ = writeln!(
                page,
                "<tr{class}><td>{}{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                html(&entry.version),
                if entry.yanked { " (yanked)" } else { "" },
                html(&entry.gantry),
                html(&entry.key),
                html(&entry.sha256)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::registry::Entry;

    #[test]
    fn the_page_escapes_what_a_publisher_wrote_and_marks_yanked_versions() {
        let entry = |version: &str, yanked| Entry {
            version: version.to_owned(),
            sha256: "ab".repeat(32),
            yanked,
            key: "k".to_owned(),
            gantry: ">=0.1".to_owned(),
            description: "<script>alert(1)</script>".to_owned(),
            interface: crate::template::manifest::Interface::default(),
        };
        let index = Index {
            name: "acme/greet".to_owned(),
            versions: vec![entry("1.0.0", false), entry("1.1.0", true)],
        };
        let page = html_page("Templates", &[index]);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(page.contains("1.1.0 (yanked)"), "{page}");
        assert!(page.contains("uses = \"acme/greet@^1\""), "{page}");
        let mut catalog = Catalog::default();
        for name in ["zeta/b", "acme/a", "zeta/b"] {
            catalog.add(&Name::parse(name).expect("name"));
        }
        assert_eq!(catalog.templates, ["acme/a", "zeta/b"]);
    }
}
