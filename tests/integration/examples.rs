//! Every file in `pipelines/` validates, and the README's example runs.

use std::path::Path;

use crate::support::GANTRY;

#[test]
fn every_bundled_pipeline_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(root.join("pipelines")).expect("pipelines/") {
        let path = entry.expect("entry").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            let output = std::process::Command::new(GANTRY)
                .arg("check")
                .arg(&path)
                .current_dir(root)
                .output()
                .expect("gantry");
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            count += 1;
        }
    }
    assert!(count >= 1);
}
