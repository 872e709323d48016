//! Explaining one differing output: find both sides' bytes (the workspace's cache or file,
//! the rebuild's cache, or Nix's `.check` copy) and let diffoscope show the difference.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rand_core::RngCore;

use crate::digest::Digest;
use crate::repro::compare::OutputComparison;
use crate::repro::diffoscope;

#[derive(Clone, Debug, Default)]
pub struct Explanation {
    /// The diffoscope report, relative to the repro folder.
    pub report: Option<String>,
    pub report_digest: Option<Digest>,
    /// Its first lines.
    pub excerpt: String,
    /// Why there is no report.
    pub missing: Option<String>,
    /// The report was cut at the size limit.
    pub cut: bool,
}

/// Where the two sides' bytes can be found.
pub struct Copies<'a> {
    pub root: &'a Path,
    pub workspace_cas: PathBuf,
    pub rebuild_cas: PathBuf,
}

impl Copies<'_> {
    fn blob(cas: &Path, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        cas.join(&hex[..2]).join(hex)
    }

    /// The attested bytes of a file output: in the workspace's cache, or the workspace file
    /// itself while it still has the attested digest.
    fn attested(&self, name: &str, digest: &Digest) -> Option<PathBuf> {
        let blob = Self::blob(&self.workspace_cas, digest);
        if blob.is_file() {
            return Some(blob);
        }
        let file = self.root.join(name);
        (Digest::of_file(&file).ok()? == *digest).then_some(file)
    }

    fn rebuilt(&self, digest: &Digest) -> Option<PathBuf> {
        Some(Self::blob(&self.rebuild_cas, digest)).filter(|blob| blob.is_file())
    }
}

/// The diffoscope to run, if there is one, and the size its reports are cut at.
#[derive(Clone, Copy)]
pub struct Reporting<'a> {
    pub program: Option<&'a Path>,
    pub limit: Option<u64>,
}

pub fn explain(
    diffoscope: Reporting<'_>,
    copies: &Copies<'_>,
    step: &str,
    output: &OutputComparison,
    folder: &Path,
    private: &Path,
    cancel: &AtomicBool,
) -> Explanation {
    let missing = |why: String| Explanation {
        missing: Some(why),
        ..Explanation::default()
    };
    if output.differed_without_copy {
        return missing(
            "Nix reported that this output differs but kept no copy of the rebuild (a Nix \
             daemon ignores --keep-failed for untrusted users; Nix also stops at the first \
             differing output)"
                .to_owned(),
        );
    }
    let (Some(attested), Some(rebuilt)) = (output.attested, output.rebuilt) else {
        return missing(match output.attested {
            Some(_) => "the rebuild did not make this output".to_owned(),
            None => "the checked run did not attest this output".to_owned(),
        });
    };
    let pair = if let Some(check) = &output.rebuilt_at {
        // A Nix output: the store keeps the attested bytes under the attested name.
        if !Path::new(&output.name).exists() {
            return missing(format!(
                "`{}` is not in this machine's Nix store",
                output.name
            ));
        }
        (PathBuf::from(&output.name), PathBuf::from(check))
    } else if output.name.starts_with("/nix/store/") {
        return missing(
            "the attested bytes of this store path are not on this machine: its store holds \
             another build of the same path"
                .to_owned(),
        );
    } else {
        let Some(left) = copies.attested(&output.name, &attested) else {
            return missing(
                "the attested bytes are on no disk here (not in the cache, and the workspace \
                 file has changed): only the digests were compared"
                    .to_owned(),
            );
        };
        let Some(right) = copies.rebuilt(&rebuilt) else {
            return missing(
                "internal: the rebuilt bytes are not in the rebuild's cache".to_owned(),
            );
        };
        (left, right)
    };
    let Some(program) = diffoscope.program else {
        return missing(format!(
            "diffoscope was not found; {}",
            diffoscope::INSTALL_HINT
        ));
    };
    let relative = Path::new("diffoscope")
        .join(step)
        .join(format!("{}.txt", output.name.trim_start_matches('/')));
    let work = private
        .join("diffoscope")
        .join(format!("{:08x}", rand_core::OsRng.next_u32()));
    if let Err(error) = fs::create_dir_all(&work) {
        return missing(format!("cannot make `{}`: {error}", work.display()));
    }
    let label = output.name.trim_start_matches('/');
    let result = diffoscope::explain(
        program,
        &diffoscope::Pair {
            attested: &pair.0,
            rebuilt: &pair.1,
            label,
        },
        &work,
        &folder.join(&relative),
        diffoscope.limit,
        cancel,
    );
    match result {
        Ok(written) => Explanation {
            report_digest: Digest::of_file(&folder.join(&relative)).ok(),
            report: Some(relative.to_string_lossy().into_owned()),
            excerpt: written.excerpt,
            missing: None,
            cut: written.cut,
        },
        Err(error) => missing(error),
    }
}
