//! Validation of `kind = "sbom"` steps: `from` and `subject` become the step's inputs,
//! `output` and its attestation its outputs.

use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::convert::{Converted, NotHere, not_here};
use crate::pipeline::model::{InputPattern, OutputPath, SBOM_ATTESTATION_SUFFIX, SbomStep};
use crate::pipeline::path;
use crate::pipeline::wire::{StepWire, SubjectWire};
use crate::sbom::{About, Format};

const SBOM_NOT_HERE: NotHere = NotHere {
    kind: "sbom",
    inputs: "a sbom step reads `from` (and `subject`); name them there",
    outputs: "a sbom step writes `output` and `OUTPUT.intoto.json`, its signed attestation",
    network: "an SBOM is made from what is on disk",
};

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `sbom` step, at their line.
pub(super) const KEYS: &[&str] = &[
    "from",
    "format",
    "vendored",
    "manifests",
    "about",
    "import",
    "subject",
    "output",
];

pub(super) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Converted<SbomStep>> {
    let before = errors.len();
    not_here(wire, &SBOM_NOT_HERE, errors);
    let format = format(wire.format.as_ref(), errors);
    let mut required = |key: &str, value: Option<&Spanned<String>>, folder: bool, hint: &str| {
        if let Some(value) = value {
            return one_path(key, value, folder, errors);
        }
        errors.push(
            Diagnostic::at(
                format!("sbom step `{step_name}` needs `{key}`"),
                name_span.clone(),
            )
            .hint(hint),
        );
        None
    };
    let from = required(
        "from",
        wire.from.as_ref(),
        true,
        "what to describe: `from = \"Cargo.lock\"`, a folder such as `from = \"dist/\"`, or a nix step's out-link such as `from = \"result\"`",
    );
    let output = required(
        "output",
        wire.output.as_ref(),
        false,
        "where to write the document: `output = \"out/sbom.spdx.json\"`",
    );
    let Extra {
        subjects,
        vendored,
        manifests,
        about,
    } = extra(wire, errors);
    if errors.len() > before {
        return None;
    }
    let (from, from_folder, from_span) = from?;
    let import = check_import(wire, from_folder, errors)?;
    let (output, _, output_span) = output?;
    if !subjects_are_right(&subjects, &from, from_folder, errors) {
        return None;
    }
    let attestation = format!("{output}{SBOM_ATTESTATION_SUFFIX}");
    let read = [("from", Some((&from, &from_span)))]
        .into_iter()
        .chain(
            subjects
                .iter()
                .map(|(path, span)| ("subject", Some((path, span)))),
        )
        .chain([(
            "vendored",
            vendored.as_ref().map(|(path, span)| (path, span)),
        )]);
    for (name, (path, span)) in read.filter_map(|(name, read)| Some((name, read?))) {
        if overlaps_written(name, path, span, [&output, &attestation], errors) {
            return None;
        }
    }
    let exact = |pattern: &String, directory: bool, span: &Range<usize>| InputPattern {
        pattern: pattern.clone(),
        directory,
        is_glob: false,
        span: span.clone(),
    };
    let mut inputs = vec![exact(&from, from_folder, &from_span)];
    let files = subjects.iter().chain(&manifests);
    inputs.extend(
        (files.filter(|(path, _)| *path != from)).map(|(path, span)| exact(path, false, span)),
    );
    inputs.extend(vendored.iter().map(|(path, span)| exact(path, true, span)));
    let outputs = [output.clone(), attestation]
        .into_iter()
        .map(|path| OutputPath {
            path,
            directory: false,
            span: output_span.clone(),
        })
        .collect();
    Some(Converted {
        step: SbomStep {
            from,
            format: format?,
            subjects: subjects.into_iter().map(|(path, _)| path).collect(),
            output,
            vendored: vendored.map(|(path, _)| path),
            manifests: manifests.into_iter().map(|(path, _)| path).collect(),
            about,
            import,
        },
        inputs,
        outputs,
    })
}

/// No subject named twice, and none that is `from`'s folder.
fn subjects_are_right(
    subjects: &[(String, Range<usize>)],
    from: &str,
    from_folder: bool,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    if let Some((path, span)) = (subjects.iter().enumerate())
        .find(|(index, (path, _))| {
            subjects[..*index]
                .iter()
                .any(|(earlier, _)| earlier == path)
        })
        .map(|(_, subject)| subject)
    {
        errors.push(Diagnostic::at(
            format!("the subject `{path}` is named twice"),
            span.clone(),
        ));
        return false;
    }
    if let Some((_, span)) = subjects
        .iter()
        .find(|(path, _)| from_folder && *path == from)
    {
        errors.push(
            Diagnostic::at("the subject is `from`'s folder, not a file", span.clone())
                .hint("a folder is described file by file: leave `subject` out"),
        );
        return false;
    }
    true
}

/// `import = true`: `from` is one document another tool wrote, about `subject`; what gantry
/// would otherwise write into a document does not apply.
fn check_import(wire: &StepWire, from_folder: bool, errors: &mut Vec<Diagnostic>) -> Option<bool> {
    let Some(import) = wire.import.as_ref().filter(|import| *import.get_ref()) else {
        return Some(false);
    };
    let before = errors.len();
    if from_folder {
        errors.push(Diagnostic::at(
            "an imported SBOM is one file: `from` names a folder",
            import.span(),
        ));
    }
    if wire.subject.is_none() {
        errors.push(
            Diagnostic::at("an imported SBOM needs the `subject` it is about", import.span())
                .hint("`subject = \"out/app\"`: the attestation binds the document to that artifact's digest"),
        );
    }
    for (key, span) in [
        ("format", wire.format.as_ref().map(Spanned::span)),
        ("vendored", wire.vendored.as_ref().map(Spanned::span)),
        ("manifests", wire.manifests.as_ref().map(Spanned::span)),
        ("about", wire.about.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            errors.push(
                Diagnostic::at(format!("`{key}` does not apply to an imported SBOM"), span)
                    .hint("the document is attested as it is; its format is read from it"),
            );
        }
    }
    (errors.len() == before).then_some(true)
}

/// `about = { ... }`: each field checked at its line (an SPDX licence expression, SPDX's
/// supplier form, a package URL).
fn convert_about(
    wire: &Spanned<crate::pipeline::wire::AboutWire>,
    errors: &mut Vec<Diagnostic>,
) -> Option<crate::sbom::About> {
    let about = wire.get_ref();
    let before = errors.len();
    let mut text = |value: &Option<Spanned<String>>, check: &dyn Fn(&str) -> Option<String>| {
        let value = value.as_ref()?;
        let text = value.get_ref().trim();
        if text.is_empty() || text.contains(['\n', '\0']) {
            errors.push(Diagnostic::at("must be one line of text", value.span()));
            return None;
        }
        match check(text) {
            Some(problem) => {
                errors.push(Diagnostic::at(problem, value.span()));
                None
            }
            None => Some(text.to_owned()),
        }
    };
    let fine = |_: &str| None;
    let converted = About {
        name: text(&about.name, &fine),
        version: text(&about.version, &fine),
        supplier: text(&about.supplier, &About::supplier_problem),
        license: text(&about.license, &About::license_problem),
        purl: text(&about.purl, &About::purl_problem),
    };
    (errors.len() == before).then_some(converted)
}

/// The paths a sbom step may name besides `from` and `output`, each with where it is written.
struct Extra {
    subjects: Vec<(String, Range<usize>)>,
    vendored: Option<(String, Range<usize>)>,
    manifests: Vec<(String, Range<usize>)>,
    about: Option<crate::sbom::About>,
}

fn extra(wire: &StepWire, errors: &mut Vec<Diagnostic>) -> Extra {
    let about = (wire.about.as_ref()).and_then(|about| convert_about(about, errors));
    let mut path = |key: &str, value: &Spanned<String>, folder: bool| {
        one_path(key, value, folder, errors).map(|(path, _, span)| (path, span))
    };
    Extra {
        about,
        subjects: (wire.subject.iter())
            .flat_map(SubjectWire::each)
            .filter_map(|subject| path("subject", &subject, false))
            .collect(),
        vendored: (wire.vendored.as_ref()).and_then(|vendored| path("vendored", vendored, true)),
        manifests: (wire.manifests.iter())
            .flat_map(Spanned::get_ref)
            .filter_map(|manifest| path("manifests", manifest, false))
            .collect(),
    }
}

/// Whether `path` (the step's `name` key) overlaps a file the step writes; says so if it does.
fn overlaps_written(
    name: &str,
    path: &str,
    span: &Range<usize>,
    written: [&String; 2],
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let overlaps = (written.iter())
        .any(|written| path::is_within(written, path) || path::is_within(path, written));
    if overlaps {
        errors.push(Diagnostic::at(
            format!(
                "`{name}` overlaps what the step writes (`{}`, `{}`)",
                written[0], written[1]
            ),
            span.clone(),
        ));
    }
    overlaps
}

/// `format`, SPDX when not given.
fn format(format: Option<&Spanned<String>>, errors: &mut Vec<Diagnostic>) -> Option<Format> {
    let Some(format) = format else {
        return Some(Format::Spdx);
    };
    let parsed = Format::parse(format.get_ref());
    if parsed.is_none() {
        errors.push(
            Diagnostic::at(
                format!("unknown SBOM format `{}`", format.get_ref()),
                format.span(),
            )
            .hint("`spdx` (SPDX 2.3 JSON) or `cyclonedx` (CycloneDX 1.6 JSON)"),
        );
    }
    parsed
}

/// A workspace path naming one thing: no glob; a folder (trailing `/`) only where allowed.
fn one_path(
    key: &str,
    value: &Spanned<String>,
    folder_allowed: bool,
    errors: &mut Vec<Diagnostic>,
) -> Option<(String, bool, Range<usize>)> {
    match path::normalize(value.get_ref()) {
        Ok(normal) if path::is_glob(&normal.path) => {
            errors.push(
                Diagnostic::at(format!("`{key}` names one path, not a glob"), value.span())
                    .hint("to describe many files, name their folder: `from = \"dist/\"`"),
            );
            None
        }
        Ok(normal) if normal.directory && !folder_allowed => {
            errors.push(
                Diagnostic::at(format!("`{key}` must name a file"), value.span()).hint(
                    if key == "subject" {
                        "a folder is described file by file: leave `subject` out and use `from = \"dist/\"`"
                    } else {
                        "name the document's file, like `out/sbom.spdx.json`"
                    },
                ),
            );
            None
        }
        Ok(normal) => Some((normal.path, normal.directory, value.span())),
        Err(message) => {
            errors.push(Diagnostic::at(
                format!("invalid `{key}`: {message}"),
                value.span(),
            ));
            None
        }
    }
}
