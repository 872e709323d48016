//! VEX: what a supplier says of a vulnerability in a product. OpenVEX 0.2 documents
//! (`statements[]`) and `CycloneDX` VEX (`vulnerabilities[].analysis`, `affects[].ref` as a
//! purl). A statement applies to a finding when it names one of the finding's ids (aliases
//! count) and a product or subcomponent whose purl is the component's: same ecosystem and
//! name, and the same version unless the purl names none. A statement about another version
//! does not apply. Of several that apply, the newest (by timestamp, then by order) stands.

use serde::Serialize;
use serde_json::Value;

use crate::vulns::components::{Component, parse_purl};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl Status {
    /// Whether the finding no longer counts as a vulnerability of the product.
    #[must_use]
    pub fn suppresses(self) -> bool {
        matches!(self, Self::NotAffected | Self::Fixed)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::NotAffected => "not_affected",
            Self::Affected => "affected",
            Self::Fixed => "fixed",
            Self::UnderInvestigation => "under_investigation",
        }
    }
}

/// One statement, from either format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The vulnerability's id and its aliases.
    pub ids: Vec<String>,
    /// The purls it is about.
    pub products: Vec<String>,
    pub status: Status,
    pub justification: Option<String>,
    /// RFC 3339, when given (the statement's, else the document's).
    pub timestamp: Option<String>,
    /// The document it came from.
    pub document: String,
}

/// Reads a VEX document: OpenVEX (`@context` of openvex.dev) or `CycloneDX` with
/// `vulnerabilities`.
pub fn read(bytes: &[u8], document: &str) -> Result<Vec<Statement>, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    if text(&value, "@context").is_some_and(|context| context.contains("openvex")) {
        let document_time = text(&value, "timestamp");
        let mut statements = Vec::new();
        for statement in array(&value, "statements") {
            let vulnerability = statement.get("vulnerability").unwrap_or(&Value::Null);
            let mut ids: Vec<String> = [text(vulnerability, "name"), text(vulnerability, "@id")]
                .into_iter()
                .flatten()
                .collect();
            ids.extend(
                array(vulnerability, "aliases")
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
            let mut products = Vec::new();
            for product in array(statement, "products") {
                products.extend(purls(product));
                for component in array(product, "subcomponents") {
                    products.extend(purls(component));
                }
            }
            let status = match statement.get("status").and_then(Value::as_str) {
                Some("not_affected") => Status::NotAffected,
                Some("affected") => Status::Affected,
                Some("fixed") => Status::Fixed,
                Some("under_investigation") => Status::UnderInvestigation,
                other => return Err(format!("a statement's status is {other:?}")),
            };
            if ids.is_empty() {
                return Err("a statement names no vulnerability".to_owned());
            }
            statements.push(Statement {
                ids,
                products,
                status,
                justification: text(statement, "justification")
                    .or_else(|| text(statement, "impact_statement")),
                timestamp: text(statement, "timestamp").or_else(|| document_time.clone()),
                document: document.to_owned(),
            });
        }
        return Ok(statements);
    }
    if text(&value, "bomFormat").as_deref() == Some("CycloneDX") {
        let document_time = value
            .get("metadata")
            .and_then(|metadata| text(metadata, "timestamp"));
        let mut statements = Vec::new();
        for vulnerability in array(&value, "vulnerabilities") {
            let Some(analysis) = vulnerability.get("analysis") else {
                continue;
            };
            let status = match analysis.get("state").and_then(Value::as_str) {
                Some("not_affected" | "false_positive") => Status::NotAffected,
                Some("resolved" | "resolved_with_pedigree") => Status::Fixed,
                Some("exploitable") => Status::Affected,
                Some("in_triage") | None => Status::UnderInvestigation,
                Some(other) => return Err(format!("an analysis state is `{other}`")),
            };
            let mut ids: Vec<String> = text(vulnerability, "id").into_iter().collect();
            ids.extend(
                array(vulnerability, "references").filter_map(|reference| text(reference, "id")),
            );
            let products = array(vulnerability, "affects")
                .filter_map(|affected| text(affected, "ref"))
                .filter(|reference| reference.starts_with("pkg:"))
                .collect();
            statements.push(Statement {
                ids,
                products,
                status,
                justification: text(analysis, "justification").or_else(|| text(analysis, "detail")),
                timestamp: text(analysis, "lastUpdated")
                    .or_else(|| text(vulnerability, "updated"))
                    .or_else(|| document_time.clone()),
                document: document.to_owned(),
            });
        }
        return Ok(statements);
    }
    Err("neither OpenVEX (`@context` openvex) nor CycloneDX VEX (`bomFormat`)".to_owned())
}

fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A product's purls: its `@id` when it is one, and `identifiers.purl`.
fn purls(product: &Value) -> Vec<String> {
    [
        product.get("@id").and_then(Value::as_str),
        product
            .get("identifiers")
            .and_then(|identifiers| identifiers.get("purl"))
            .and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .filter(|purl| purl.starts_with("pkg:"))
    .map(str::to_owned)
    .collect()
}

/// Whether `purl` names this component (a purl without a version names every version).
fn names(purl: &str, component: &Component) -> bool {
    let versionless = !purl.split(['?', '#']).next().unwrap_or(purl).contains('@');
    let parsed = if versionless {
        parse_purl(&format!(
            "{}@*",
            purl.split(['?', '#']).next().unwrap_or(purl)
        ))
    } else {
        parse_purl(purl)
    };
    parsed.is_some_and(|named| {
        named.ecosystem == component.ecosystem
            && named.ecosystem.normalize_name(&named.name)
                == component.ecosystem.normalize_name(&component.name)
            && (versionless || named.version == component.version)
    })
}

/// The statement that stands for this finding (its ids, its component), if any applies.
#[must_use]
pub fn applying<'a>(
    statements: &'a [Statement],
    ids: &[String],
    component: &Component,
) -> Option<&'a Statement> {
    statements
        .iter()
        .enumerate()
        .filter(|(_, statement)| {
            statement.ids.iter().any(|id| ids.contains(id))
                && statement.products.iter().any(|purl| names(purl, component))
        })
        .max_by(|(a_order, a), (b_order, b)| {
            a.timestamp
                .cmp(&b.timestamp)
                .then_with(|| a_order.cmp(b_order))
        })
        .map(|(_, statement)| statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENVEX: &str = r#"{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
        "statements": [
          {"vulnerability": {"name": "CVE-2021-25900"}, "products": [{"@id": "pkg:cargo/app@1.0.0", "subcomponents": [{"@id": "pkg:cargo/smallvec@1.6.0"}]}],
           "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
          {"vulnerability": {"name": "RUSTSEC-2021-0078"}, "products": [{"@id": "pkg:cargo/hyper@0.13.9"}], "status": "not_affected", "justification": "component_not_present"},
          {"vulnerability": {"name": "RUSTSEC-2021-0079"}, "products": [{"@id": "pkg:cargo/hyper"}], "status": "under_investigation"}
        ]}"#;

    fn component(purl: &str) -> Component {
        parse_purl(purl).expect("purl")
    }

    #[test]
    fn an_openvex_statement_applies_to_its_ids_and_versions_only() {
        let statements = read(OPENVEX.as_bytes(), "vex.json").expect("openvex");
        assert_eq!(statements.len(), 3);
        let smallvec = component("pkg:cargo/smallvec@1.6.0");
        let ids = ["RUSTSEC-2021-0003".to_owned(), "CVE-2021-25900".to_owned()];
        let standing = applying(&statements, &ids, &smallvec).expect("by its alias");
        assert_eq!(standing.status, Status::NotAffected);
        assert!(standing.status.suppresses());
        // Another version of smallvec: not this statement's.
        assert!(applying(&statements, &ids, &component("pkg:cargo/smallvec@1.6.1")).is_none());
        // The statement about hyper 0.13.9 says nothing of 0.13.10.
        let hyper = component("pkg:cargo/hyper@0.13.10");
        assert!(applying(&statements, &["RUSTSEC-2021-0078".to_owned()], &hyper).is_none());
        // A version-less purl names every version.
        let investigating =
            applying(&statements, &["RUSTSEC-2021-0079".to_owned()], &hyper).expect("any");
        assert!(!investigating.status.suppresses());
    }

    #[test]
    fn cyclonedx_vex_reads_its_analysis() {
        let bom = br#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "vulnerabilities": [
            {"id": "CVE-2022-24713", "analysis": {"state": "resolved", "lastUpdated": "2024-02-01T00:00:00Z"}, "affects": [{"ref": "pkg:cargo/regex@1.5.4"}]},
            {"id": "CVE-1", "affects": [{"ref": "component-1"}]}]}"#;
        let statements = read(bom, "bom.json").expect("cyclonedx");
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].status, Status::Fixed);
        let regex = component("pkg:cargo/regex@1.5.4");
        assert!(applying(&statements, &["CVE-2022-24713".to_owned()], &regex).is_some());
        assert!(read(b"{}", "x").is_err());
        assert!(
            read(
                br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "x"}, "status": "maybe"}]}"#,
                "x"
            )
            .is_err()
        );
    }

    #[test]
    fn the_newest_statement_stands() {
        let text = r#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
            {"vulnerability": {"name": "V"}, "products": [{"@id": "pkg:npm/a@1.0.0"}], "status": "not_affected", "timestamp": "2024-03-01T00:00:00Z", "justification": "component_not_present"},
            {"vulnerability": {"name": "V"}, "products": [{"@id": "pkg:npm/a@1.0.0"}], "status": "affected", "timestamp": "2024-01-01T00:00:00Z"}]}"#;
        let statements = read(text.as_bytes(), "x").expect("openvex");
        let standing = applying(
            &statements,
            &["V".to_owned()],
            &component("pkg:npm/a@1.0.0"),
        )
        .expect("one");
        assert_eq!(standing.status, Status::NotAffected);
    }
}
