//! `[executor]` (the REAPI server remote steps run on) and a step's `executor`.

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::model::{Placement, Remote};
use crate::pipeline::wire::ExecutorWire;

/// `[executor]`: `remote = "grpc://HOST:PORT"`, optional `instance`.
pub fn convert_remote(
    wire: Option<&Spanned<ExecutorWire>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Remote> {
    let wire = wire?;
    let Some(url) = &wire.get_ref().remote else {
        errors.push(
            Diagnostic::at("`[executor]` names no `remote`", wire.span())
                .hint("write `remote = \"grpc://HOST:PORT\"`"),
        );
        return None;
    };
    if let Err(message) = check_url(url.get_ref()) {
        errors.push(Diagnostic::at(message, url.span()));
        return None;
    }
    Some(Remote {
        url: url.get_ref().clone(),
        instance: (wire.get_ref().instance.as_ref())
            .map(|instance| instance.get_ref().clone())
            .unwrap_or_default(),
    })
}

/// A remote's address: `grpc://HOST:PORT` (or `http://`); TLS is not supported yet.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("grpc://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains('/') && rest.contains(':') => Ok(()),
        _ => Err(format!(
            "`{url}` is not a remote's address: write grpc://HOST:PORT (grpcs:// is not supported yet)"
        )),
    }
}

/// A step's `executor`: `local` or `remote`.
pub fn convert_placement(
    wire: Option<&Spanned<String>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Placement> {
    let wire = wire?;
    match wire.get_ref().as_str() {
        "local" => Some(Placement::Local),
        "remote" => Some(Placement::Remote),
        other => {
            errors.push(
                Diagnostic::at(format!("unknown executor `{other}`"), wire.span())
                    .hint("write `executor = \"local\"` or `executor = \"remote\"`"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addresses_are_grpc_host_and_port() {
        assert!(check_url("grpc://127.0.0.1:50051").is_ok());
        assert!(check_url("http://buildgrid:50051").is_ok());
        for bad in [
            "grpcs://host:1",
            "grpc://",
            "grpc://host",
            "host:1",
            "grpc://h:1/x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
