//! `gantry keys generate` and `gantry keys public`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic;
use crate::cli::Environment;
use crate::error::{Error, Result};
use crate::exec::context::Keys;
use crate::keys::{self, AnyKey, EcdsaSigner, EcdsaVerifier, Signer, Verifier};
use crate::pipeline::model::KeyRef;
use crate::pipeline::{Diagnostic, Diagnostics, Pipeline, StepKind};

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Write a cosign-compatible key pair: PREFIX.key (encrypted with `COSIGN_PASSWORD`, or a
    /// password asked on the terminal; mode 0600) and PREFIX.pub (PKIX PEM, P-256).
    Generate {
        /// File name prefix.
        #[arg(long, default_value = "cosign")]
        prefix: String,
        /// Folder to write the pair into.
        #[arg(long, default_value = ".")]
        output_dir: PathBuf,
        /// Replace an existing pair.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key (PKIX PEM) of a signing key.
    Public {
        /// A cosign key (`ENCRYPTED SIGSTORE PRIVATE KEY`) or a PKCS#8 PEM P-256 key;
        /// default: the development key.
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

pub(super) fn run(command: Command, environment: &Environment) -> Result<u8> {
    match command {
        Command::Generate {
            prefix,
            output_dir,
            force,
        } => generate(&prefix, &output_dir, force, environment),
        Command::Public { key } => {
            let signer = signer(key.as_deref(), environment)?;
            print!("{}", signer.public_key_pem());
            Ok(0)
        }
    }
}

fn generate(prefix: &str, folder: &Path, force: bool, environment: &Environment) -> Result<u8> {
    if prefix.is_empty() || prefix.contains('/') {
        return Err(Error::Usage(format!(
            "--prefix `{prefix}` must be a file name (use --output-dir for the folder)"
        )));
    }
    let private_path = folder.join(format!("{prefix}.key"));
    let public_path = folder.join(format!("{prefix}.pub"));
    for path in [&private_path, &public_path] {
        if !force && path.exists() {
            return Err(Error::Usage(format!(
                "`{}` exists; pass --force to replace the pair",
                path.display()
            )));
        }
    }
    let password = environment
        .passwords
        .new_password()
        .map_err(|message| Error::Key {
            path: private_path.clone(),
            message,
        })?;
    let (private, public) = keys::generate(password.as_bytes()).map_err(Error::Internal)?;
    std::fs::create_dir_all(folder).map_err(Error::write(folder))?;
    atomic::write_with_mode(&private_path, private.as_bytes(), 0o600)
        .map_err(Error::write(&private_path))?;
    atomic::write(&public_path, public.as_bytes()).map_err(Error::write(&public_path))?;
    eprintln!(
        "Private key written to {}\nPublic key written to {}",
        private_path.display(),
        public_path.display()
    );
    Ok(0)
}

/// Reads a key file, asking for its password only if it is encrypted.
pub(super) fn load(path: &Path, environment: &Environment) -> Result<EcdsaSigner> {
    let unasked = std::cell::RefCell::new(None);
    let mut password = || {
        let got = environment.passwords.get(&path.display().to_string());
        if let Err(message) = &got {
            unasked.replace(Some(message.clone()));
        }
        got
    };
    keys::load_private_key(path, &mut password).map_err(|error| {
        // No password to be had is how gantry was called (exit 2), not a bad key file.
        match unasked.take() {
            Some(message) => Error::Usage(format!("signing key `{}`: {message}", path.display())),
            None => key_error(error),
        }
    })
}

fn key_error(error: keys::KeyError) -> Error {
    let mut message = error.message;
    if let Some(hint) = error.hint {
        message.push_str("\n  = hint: ");
        message.push_str(&hint);
    }
    Error::Key {
        path: error.path,
        message,
    }
}

/// The key to sign with: `--key`, else the development key (made on first use).
pub(super) fn signer(key: Option<&Path>, environment: &Environment) -> Result<EcdsaSigner> {
    if let Some(path) = key {
        return load(path, environment);
    }
    let path = keys::default_key_path(environment.xdg_data_home.as_deref(), environment.home.as_deref()).ok_or_else(|| {
        Error::Usage("no signing key: pass `--key FILE` (HOME is not set, so there is no place for a development key)".to_owned())
    })?;
    let (signer, created) = keys::load_or_create_development_key(&path).map_err(key_error)?;
    if created {
        eprintln!(
            "note: created a development signing key at {} (mode 0600); pass `--key` to sign with your own",
            path.display()
        );
    }
    Ok(signer)
}

/// Loads the key of every sign step, each file once (one password prompt per key).
/// The signing key files a run of `pipeline` would use without `--key`: its sign steps' key
/// paths and the development key. No tool may hold one.
#[must_use]
pub(super) fn key_files(pipeline: &Pipeline, environment: &Environment) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (pipeline.steps.iter())
        .filter_map(|step| match &step.kind {
            StepKind::Sign(sign) => match &sign.key {
                KeyRef::Path(path) => Some(pipeline.root.join(path)),
                KeyRef::Env(_) => None,
            },
            _ => None,
        })
        .collect();
    files.extend(crate::keys::default_key_path(
        environment.xdg_data_home.as_deref(),
        environment.home.as_deref(),
    ));
    files
}

pub(super) fn step_keys(pipeline: &Pipeline, environment: &Environment) -> Result<Keys> {
    let mut loaded: HashMap<PathBuf, Arc<dyn Signer>> = HashMap::new();
    let mut keys = Keys::default();
    for step in &pipeline.steps {
        let StepKind::Sign(sign) = &step.kind else {
            continue;
        };
        let path = match &sign.key {
            KeyRef::Path(path) => pipeline.root.join(path),
            KeyRef::Env(variable) => {
                let value = std::env::var_os(variable).filter(|value| !value.is_empty());
                let Some(value) = value else {
                    let diagnostic = Diagnostic::at(
                        format!("`{variable}` is not set; it should hold the path of the signing key"),
                        sign.key_span.clone(),
                    )
                    .hint(format!("export {variable}=path/to/cosign.key (make a pair with `gantry keys generate`)"));
                    return Err(Error::Pipeline(Box::new(Diagnostics {
                        file: pipeline.source.clone(),
                        items: vec![diagnostic],
                        more: Vec::new(),
                    })));
                };
                let path = PathBuf::from(value);
                std::path::absolute(&path).unwrap_or(path)
            }
        };
        let signer = if let Some(signer) = loaded.get(&path) {
            Arc::clone(signer)
        } else {
            let signer: Arc<dyn Signer> = Arc::new(load(&path, environment)?);
            loaded.insert(path.clone(), Arc::clone(&signer));
            keys.files.push(path);
            signer
        };
        keys.by_step.insert(step.name.clone(), signer);
    }
    Ok(keys)
}

/// The public keys given (PEM files), or else the one of the signing key `key` (default: the
/// development key): what `log verify` and `usage` check signatures with.
pub(super) fn verifier(
    public_keys: &[PathBuf],
    key: Option<&Path>,
    environment: &Environment,
) -> Result<AnyKey> {
    let mut keys: Vec<Box<dyn Verifier>> = Vec::new();
    for path in public_keys {
        let pem = crate::bounded::read_to_string(path, crate::bounded::Kind::Policy)
            .map_err(Error::read(path))?;
        keys.push(Box::new(EcdsaVerifier::from_pem(&pem).map_err(
            |message| Error::Key {
                path: path.clone(),
                message,
            },
        )?));
    }
    if keys.is_empty() {
        let signer = signer(key, environment)?;
        keys.push(Box::new(
            EcdsaVerifier::from_pem(signer.public_key_pem()).map_err(Error::Internal)?,
        ));
    }
    Ok(AnyKey(keys))
}
