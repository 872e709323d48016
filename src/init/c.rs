//! A C or C++ project built by autotools' `configure`, `CMake`, or a Makefile with an `install`
//! target: built in a copy of its sources, installed into `out/install/`, tested, packed into
//! a reproducible tarball with an SBOM of the installed files.

use super::{Plan, Tree, array, ignore, name_of_folder, policy, quoted, sbom_steps};

/// The flags that write the work folder as /build and $TMPDIR as /tmp (gcc 8 and clang 10 or
/// later); `$PWD` is the work folder where they are set.
pub(super) const PREFIX_MAP: &str = "-ffile-prefix-map=$PWD=/build -ffile-prefix-map=$TMPDIR=/tmp";

/// A shell line that adds [`PREFIX_MAP`] to each of `variables` (keeping what they hold) when
/// the compiler knows the flag: an older one would fail every compile.
fn export_prefix_map(variables: &[&str]) -> String {
    let exports: Vec<String> = (variables.iter())
        .map(|variable| format!("{variable}=\"${{{variable}:+${variable} }}{PREFIX_MAP}\""))
        .collect();
    format!(
        "if ${{CC:-cc}} -ffile-prefix-map=/a=/b -E -x c /dev/null > /dev/null 2>&1; then export {}; fi",
        exports.join(" ")
    )
}

enum System {
    Configure,
    Cmake,
    Make,
}

/// Whether a Makefile (or its template) defines `target:`.
fn defines(text: &str, target: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(target)
            .is_some_and(|rest| rest.starts_with(':') && !rest.starts_with(":="))
    })
}

pub(super) fn plan(tree: &Tree<'_>) -> Option<Plan> {
    let makefile = ["Makefile.in", "Makefile"]
        .iter()
        .find_map(|file| tree.text(file))
        .unwrap_or_default();
    let system = if tree.has("configure") {
        System::Configure
    } else if tree.has("CMakeLists.txt") {
        System::Cmake
    } else if defines(&makefile, "install") {
        System::Make
    } else {
        return None;
    };
    let name = name_of_folder(&tree.folder_name);
    let inputs = tree.top_level(&[
        "pipeline.toml",
        "policies/",
        "out/",
        "attestations/",
        "pipelines/",
    ]);
    let sources: Vec<String> = (inputs.iter())
        .map(|entry| match entry.strip_suffix('/') {
            Some(folder) => format!("{folder}/**"),
            None => entry.clone(),
        })
        .collect();
    // The compiler writes source paths into what it builds (`__FILE__` in asserts, debug
    // information): the work folder and $TMPDIR, which `gantry repro` varies, are written as
    // /build and /tmp wherever they are. CPPFLAGS reaches every compile through configure and
    // make's built-in rules without replacing a project's own CFLAGS; CMake keeps its build
    // type's flags apart from CFLAGS.
    let copy = format!(
        "top=$PWD\n{}\ncp -R . \"$TMPDIR/src\" && cd \"$TMPDIR/src\"",
        export_prefix_map(&["CPPFLAGS"])
    );
    let cmake_flags = format!("{}\n", export_prefix_map(&["CFLAGS", "CXXFLAGS"]));
    let test_target = ["check", "test"]
        .into_iter()
        .find(|target| defines(&makefile, target));
    let (kind, build, test) = match system {
        System::Configure => (
            "C (configure and make)",
            format!(
                "set -e\n{copy}\n./configure --prefix=/usr\nmake -j\"$(nproc)\"\nmake install DESTDIR=\"$top/out/install\"\n"
            ),
            test_target.map(|target| {
                format!(
                    "set -e\n{copy}\n./configure --prefix=/usr\nmake -j\"$(nproc)\"\nmake {target}"
                )
            }),
        ),
        System::Cmake => (
            "C/C++ (CMake)",
            format!(
                "set -e\n{cmake_flags}cmake -S . -B \"$TMPDIR/build\" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr\ncmake --build \"$TMPDIR/build\" -j \"$(nproc)\"\nDESTDIR=\"$PWD/out/install\" cmake --install \"$TMPDIR/build\""
            ),
            Some(format!(
                "set -e\n{cmake_flags}cmake -S . -B \"$TMPDIR/build\" -DCMAKE_BUILD_TYPE=Release\ncmake --build \"$TMPDIR/build\" -j \"$(nproc)\"\nctest --test-dir \"$TMPDIR/build\" --output-on-failure"
            )),
        ),
        System::Make => (
            "C (make)",
            format!(
                "set -e\n{copy}\nmake -j\"$(nproc)\"\nmake install DESTDIR=\"$top/out/install\" PREFIX=/usr\n"
            ),
            test_target.map(|target| format!("set -e\n{copy}\nmake -j\"$(nproc)\"\nmake {target}")),
        ),
    };
    let artifact = format!("out/dist/{name}.tar.gz");
    let test_step = test.as_ref().map_or_else(
        || "# No `check` or `test` target found: add a test step here.\n".to_owned(),
        |test| {
            format!(
                "[steps.test]\nrun = \"\"\"{test}\"\"\"\ninputs = {inputs}\n",
                inputs = array(&inputs)
            )
        },
    );
    let pipeline = format!(
        r#"# {name}: written by `gantry init` (docs/pipeline.md). Check it with `gantry check pipeline.toml`.
# The host's compiler, make and headers are recorded and keyed (the `/usr` material): a new
# compiler builds again.
[pipeline]
name = {name_quoted}
artifacts = [{artifact_quoted}]          # what a release ships; everything else is internal

[defaults]
env = {{ LANG = "C.UTF-8" }}
timeout = "60m"

# Built in a copy of the sources (the inputs are read-only) and installed into out/install/.
# Narrow `inputs` to what the build reads: an edit elsewhere then builds nothing.
[steps.build]
run = """{build}"""
inputs = {inputs}
outputs = ["out/install/"]

{test_step}
# A tarball whose bytes depend only on the installed files.
[steps.package]
run = """mkdir -p out/dist && tar --sort=name --mtime="@${{SOURCE_DATE_EPOCH:-0}}" --owner=0 --group=0 --numeric-owner --mode='u+rwX,go+rX,go-w' -C out/install -cf - . | gzip -9n > {artifact}"""
inputs = ["out/install/"]
outputs = [{artifact_quoted}]

{sboms}"#,
        name_quoted = quoted(&name),
        sboms = sbom_steps(
            &name,
            "out/install/",
            &[format!("subject = {}", quoted(&artifact))]
        ),
        artifact_quoted = quoted(&artifact),
        inputs = array(&inputs),
    );
    let mut steps = vec!["build", "package"];
    if test.is_some() {
        steps.push("test");
    }
    Some(Plan {
        kind: kind.to_owned(),
        pipeline,
        policy: policy(
            &name,
            &steps,
            &sources,
            &["/usr", "/usr/bin/*", "/bin/*"],
            &[],
        ),
        ignore: ignore(&[]),
        artifacts: vec![artifact],
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configure_project_is_built_tested_packed_and_described() {
        let read = |path: &str| {
            (path == "Makefile.in").then(|| "all: x\ninstall: x\ntest: all\nX := 1\n".to_owned())
        };
        let tree = Tree {
            files: [
                "configure",
                "Makefile.in",
                "zlib.h",
                "adler32.c",
                "contrib/minizip/unzip.c",
                ".github/workflows/c.yml",
            ]
            .iter()
            .map(|file| (*file).to_owned())
            .collect(),
            read: &read,
            folder_name: "zlib-1.2.13.dfsg".into(),
        };
        let plan = plan(&tree).expect("a plan");
        assert_eq!(plan.artifacts, ["out/dist/zlib.tar.gz"]);
        assert!(plan.pipeline.contains("make test"), "{}", plan.pipeline);
        assert!(
            plan.pipeline.contains(
                r#"inputs = ["Makefile.in", "adler32.c", "configure", "contrib/", "zlib.h"]"#
            ),
            "{}",
            plan.pipeline
        );
        let pipeline = super::super::tests::checks(&plan);
        assert_eq!(pipeline.steps.len(), 5);
        assert!(
            plan.pipeline.contains(
                "top=$PWD\nif ${CC:-cc} -ffile-prefix-map=/a=/b -E -x c /dev/null > /dev/null 2>&1; then export CPPFLAGS=\"${CPPFLAGS:+$CPPFLAGS }-ffile-prefix-map=$PWD=/build -ffile-prefix-map=$TMPDIR=/tmp\"; fi\n"
            ),
            "{}",
            plan.pipeline
        );
    }

    #[test]
    fn a_makefile_without_install_is_not_taken() {
        let read = |_: &str| Some("all:\n\tcc x.c\n".to_owned());
        let tree = Tree {
            files: ["Makefile".to_owned()].into(),
            read: &read,
            folder_name: "x".into(),
        };
        assert!(plan(&tree).is_none());
    }
}
