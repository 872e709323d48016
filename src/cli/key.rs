//! `gantry key public [--key FILE]`.

use std::path::PathBuf;

use crate::cli::Environment;
use crate::error::{Error, Result};
use crate::keys::{self, EcdsaSigner, Signer};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the public key (PKIX PEM) of the signing key gantry uses.
    Public {
        /// An unencrypted PKCS#8 PEM P-256 private key; default: the development key.
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

pub fn run(command: Command, environment: &Environment) -> Result<u8> {
    match command {
        Command::Public { key } => {
            let signer = signer(key.as_deref(), environment)?;
            print!("{}", signer.public_key_pem());
            Ok(0)
        }
    }
}

/// The key to sign with: `--key`, else the development key (made on first use).
pub fn signer(key: Option<&std::path::Path>, environment: &Environment) -> Result<EcdsaSigner> {
    let key_error = |error: keys::KeyError| {
        let mut message = error.message;
        if let Some(hint) = error.hint {
            message.push_str("\n  = hint: ");
            message.push_str(&hint);
        }
        Error::Key {
            path: error.path,
            message,
        }
    };
    if let Some(path) = key {
        return keys::load_private_key(path).map_err(key_error);
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
