//! Property 4: a step's slot is private (0700, its own while it runs) and mounted nosuid and
//! nodev, so a setuid file a step makes gives nobody anything.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use super::{SANDBOX_HOST_ID, is_root, nobody, wait_for_file_in};
use crate::support::Test;

#[test]
fn a_setuid_file_in_a_running_slot_is_useless_to_other_users() {
    let test = Test::new().pipeline(
        "[steps.plant]\nrun = '''cp /usr/bin/id suid-id; chmod 4755 suid-id; grep ' /build ' /proc/self/mountinfo > out/mount.txt; touch planted; sleep 4'''\noutputs = [\"out/mount.txt\"]\n",
    );
    let mut child = test
        .command()
        .args(["run", "pipeline.toml", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let planted = wait_for_file_in(&test.path(".gantry/tmp"), "planted");
    let slot = planted.parent().expect("slot").to_path_buf();
    let metadata = std::fs::metadata(&slot).expect("slot");
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o700,
        "the slot is private"
    );
    let tmp = std::fs::metadata(test.path(".gantry/tmp")).expect("tmp");
    assert_eq!(
        tmp.permissions().mode() & 0o777,
        0o700,
        "the slots' folder is private"
    );
    if is_root() {
        assert_eq!(
            metadata.uid(),
            SANDBOX_HOST_ID,
            "the slot is the step's while it runs"
        );
        let tried = nobody(slot.join("suid-id").to_str().expect("path"))
            .output()
            .expect("setpriv");
        assert!(
            !tried.status.success(),
            "another user ran the step's setuid file: {}",
            String::from_utf8_lossy(&tried.stdout)
        );
    }
    let status = child.wait().expect("wait");
    assert!(status.success());
    let mount = test.read("out/mount.txt");
    let options = mount.split_whitespace().nth(5).expect("mount options");
    assert!(
        options.contains("nosuid") && options.contains("nodev"),
        "/build is mounted {options}"
    );
}

#[test]
fn a_setuid_bit_never_leaves_the_sandbox_with_an_output() {
    let test = Test::new().pipeline(
        "[steps.plant]\nrun = \"cp /usr/bin/id out/id; chmod 6755 out/id\"\noutputs = [\"out/id\"]\n",
    );
    test.gantry_run(&[]).success();
    let metadata = std::fs::metadata(test.path("out/id")).expect("output");
    assert_eq!(
        metadata.permissions().mode() & 0o7000,
        0,
        "no setuid or setgid bit"
    );
    assert_ne!(metadata.permissions().mode() & 0o111, 0, "still executable");
    if is_root() {
        assert_eq!(metadata.uid(), 0, "the output is gantry's");
    }
    for entry in walkdir::WalkDir::new(test.path(".gantry/cas"))
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_file() {
            let metadata = entry.metadata().expect("blob");
            assert_eq!(metadata.mode() & 0o7222, 0, "{}", entry.path().display());
            // SAFETY: trivial getter.
            assert_eq!(
                metadata.uid(),
                // SAFETY: geteuid has no preconditions.
                unsafe { libc::geteuid() },
                "blobs are gantry's"
            );
        }
    }
}

/// A step leaves all it can behind: stray files small and large, a fifo, a link, a file in
/// `/tmp`, and a process still running that writes into the slot later. The next step, run in
/// the same reused slot, finds none of it (the small ones wait in the run's trash, out of any
/// slot), nothing outlives the run, and the run's scratch folder, trash and all, is gone.
#[test]
fn what_a_step_leaves_in_its_slot_or_tmp_reaches_no_later_step() {
    let test = Test::new().pipeline(
        "[steps.litter]\nrun = '''echo x > stray; head -c 100000 /dev/zero > large; mkfifo fifo; ln -s /etc/passwd link; echo t > /tmp/left; (sleep 2; echo late > late) & echo done > out/a'''\noutputs = [\"out/a\"]\n\n[steps.look]\nrun = '''ls -A > out/slot.txt; ls -A /tmp > out/tmp.txt; sleep 3; ls -A > out/later.txt'''\ninputs = [\"out/a\"]\noutputs = [\"out/slot.txt\", \"out/tmp.txt\", \"out/later.txt\"]\n",
    );
    test.gantry_run(&["--jobs", "1"]).success();
    assert_eq!(
        test.read("out/slot.txt"),
        "out\n",
        "the slot holds only what the step needs"
    );
    assert_eq!(test.read("out/tmp.txt"), "", "/tmp is the step's own");
    assert_eq!(
        test.read("out/later.txt"),
        "out\n",
        "the first step's process died with it"
    );
    let scratch: Vec<_> = std::fs::read_dir(test.path(".gantry/tmp"))
        .expect("scratch")
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name != "sandbox-root")
        .collect();
    assert!(scratch.is_empty(), "left behind: {scratch:?}");
}
