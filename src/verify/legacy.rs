//! A run's step links as legacy in-toto metadata (in-toto spec v0.9/v1.0 "Metablock"s: a
//! `signed` object and hex signatures over its canonical JSON) with a layout whose artifact
//! rules tie each step's materials to the products of the steps that made them: what the
//! reference `in-toto-verify` accepts. Pure: signers come from the caller.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::keys::Signer;

/// One step's link, as read from a verified DSSE link Statement.
#[derive(Clone, Debug)]
pub struct LegacyLink {
    pub name: String,
    pub command: Vec<String>,
    /// Name → sha256.
    pub materials: BTreeMap<String, String>,
    pub products: BTreeMap<String, String>,
    pub byproducts: Map<String, Value>,
    pub environment: Map<String, Value>,
}

impl LegacyLink {
    /// From a link Statement (`predicateType` link v0.3). Products are the subjects; a Nix
    /// output is also a product under its out-link's name, which is how later steps read it.
    pub fn from_statement(statement: &Value) -> Result<Self, String> {
        let predicate = &statement["predicate"];
        let name = predicate["name"]
            .as_str()
            .ok_or("the link has no step name")?
            .to_owned();
        let digests = |list: &Value, out_links: bool| -> BTreeMap<String, String> {
            let mut map = BTreeMap::new();
            for item in list.as_array().into_iter().flatten() {
                let Some(hex) = item["digest"]["sha256"].as_str() else {
                    continue;
                };
                if let Some(name) = item["name"].as_str() {
                    map.insert(name.to_owned(), hex.to_owned());
                }
                if out_links && let Some(link) = item["annotations"]["outLink"].as_str() {
                    map.insert(link.to_owned(), hex.to_owned());
                }
            }
            map
        };
        Ok(Self {
            command: predicate["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|part| part.as_str().map(str::to_owned))
                .collect(),
            materials: digests(&predicate["materials"], false),
            products: digests(&statement["subject"], true),
            byproducts: predicate["byproducts"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            environment: predicate["environment"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            name,
        })
    }
}

/// The exported files: `root.layout` and `<step>.<keyid prefix>.link` for each link.
pub fn export(
    links: &[LegacyLink],
    functionary: &dyn Signer,
    layout_key: &dyn Signer,
    expires: i64,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let keyid = functionary.key_id().to_owned();
    let mut files = Vec::with_capacity(links.len() + 1);
    for link in links {
        let signed = serde_json::json!({
            "_type": "link",
            "name": link.name,
            "command": link.command,
            "materials": artifacts(&link.materials),
            "products": artifacts(&link.products),
            "byproducts": link.byproducts,
            "environment": link.environment,
        });
        files.push((
            format!("{}.{}.link", link.name, &keyid[..8.min(keyid.len())]),
            metablock(&signed, functionary)?,
        ));
    }
    let steps: Vec<Value> = links.iter().map(|link| step(link, links, &keyid)).collect();
    let layout = serde_json::json!({
        "_type": "layout",
        "expires": crate::time::rfc3339(expires),
        "readme": "exported by gantry from a run's attestations",
        "keys": { keyid.clone(): public_key(functionary) },
        "steps": steps,
        "inspect": [],
    });
    files.push(("root.layout".to_owned(), metablock(&layout, layout_key)?));
    Ok(files)
}

fn artifacts(digests: &BTreeMap<String, String>) -> Value {
    Value::Object(
        digests
            .iter()
            .map(|(name, hex)| (name.clone(), serde_json::json!({ "sha256": hex })))
            .collect(),
    )
}

/// The securesystemslib form of a P-256 public key (its keyid is [`crate::keys::key_id`]).
fn public_key(signer: &dyn Signer) -> Value {
    serde_json::json!({
        "keyid": signer.key_id(),
        "keytype": "ecdsa",
        "scheme": "ecdsa-sha2-nistp256",
        "keyval": { "public": signer.public_key_pem() },
    })
}

/// A layout step: each material made by another step must match that step's product; other
/// materials (sources, tools) are allowed by name; products are allowed by name; nothing else.
/// The expected command is the one the link records, so in-toto-verify has no mismatch to warn of.
fn step(link: &LegacyLink, links: &[LegacyLink], keyid: &str) -> Value {
    let mut materials: Vec<Value> = Vec::new();
    for (name, hex) in &link.materials {
        let maker = links.iter().find(|other| {
            other.name != link.name && other.products.get(name).is_some_and(|made| made == hex)
        });
        let pattern = escape(name);
        materials.push(match maker {
            Some(maker) => {
                serde_json::json!(["MATCH", pattern, "WITH", "PRODUCTS", "FROM", maker.name])
            }
            None => serde_json::json!(["ALLOW", pattern]),
        });
    }
    materials.push(serde_json::json!(["DISALLOW", "*"]));
    let mut products: Vec<Value> = link
        .products
        .keys()
        .map(|name| serde_json::json!(["ALLOW", escape(name)]))
        .collect();
    products.push(serde_json::json!(["DISALLOW", "*"]));
    serde_json::json!({
        "_type": "step",
        "name": link.name,
        "threshold": 1,
        "pubkeys": [keyid],
        "expected_command": link.command,
        "expected_materials": materials,
        "expected_products": products,
    })
}

/// An artifact name as an fnmatch pattern that matches only itself.
fn escape(name: &str) -> String {
    let mut pattern = String::with_capacity(name.len());
    for character in name.chars() {
        match character {
            '*' | '?' | '[' => {
                let _ = write!(pattern, "[{character}]");
            }
            other => pattern.push(other),
        }
    }
    pattern
}

/// `{"signed": ..., "signatures": [{"keyid", "sig": hex DER}]}`, signed over canonical JSON.
fn metablock(signed: &Value, signer: &dyn Signer) -> Result<Vec<u8>, String> {
    let canonical = canonical_json(signed)?;
    let signature = signer.sign(canonical.as_bytes());
    if signature.is_empty() {
        return Err("the key could not sign".to_owned());
    }
    let block = serde_json::json!({
        "signed": signed,
        "signatures": [{ "keyid": signer.key_id(), "sig": crate::hex::encode(&signature) }],
    });
    let mut bytes = serde_json::to_vec_pretty(&block).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// securesystemslib's canonical JSON (OLPC): sorted keys, no whitespace, only `"` and `\`
/// escaped in strings, integers only.
pub fn canonical_json(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut String) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => {
            if number.is_f64() {
                return Err(format!("canonical JSON has no floats: {number}"));
            }
            let _ = write!(out, "{number}");
        }
        Value::String(text) => {
            out.push('"');
            for character in text.chars() {
                if matches!(character, '"' | '\\') {
                    out.push('\\');
                }
                out.push(character);
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out)?;
                out.push(':');
                write_canonical(&map[key], out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_and_escapes_only_quotes_and_backslashes() {
        let value = serde_json::json!({"b": [1, "x\"y\\z\n"], "a": {"d": null, "c": true}});
        assert_eq!(
            canonical_json(&value).expect("canonical"),
            "{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"x\\\"y\\\\z\n\"]}"
        );
        assert!(canonical_json(&serde_json::json!(1.5)).is_err());
    }

    #[test]
    fn patterns_match_only_their_name() {
        assert_eq!(escape("out/a[1]*.txt"), "out/a[[]1][*].txt");
    }
}
