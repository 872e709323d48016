//! Property 2: only descriptors 0, 1 and 2 reach a step, whatever gantry inherited.

use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;

use crate::support::Test;

#[test]
fn descriptors_gantry_inherits_never_reach_a_step() {
    let test = Test::new()
        .file("probe.py", "import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))\nfor fd in (5, 7, 9):\n    try:\n        os.fstat(fd)\n        print('OPEN', fd)\n    except OSError:\n        pass\n")
        .pipeline("[steps.probe]\nrun = \"python3 probe.py > out/probe.txt\"\ninputs = [\"probe.py\"]\noutputs = [\"out/probe.txt\"]\n");
    let secret = test.path("host-secret");
    std::fs::write(&secret, "host secret").expect("secret");
    let file = std::fs::File::open(&secret).expect("open");
    let folder = std::fs::File::open(test.root()).expect("open folder");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let (file, folder, writer) = (file.as_raw_fd(), folder.as_raw_fd(), writer.as_raw_fd());
    let mut command = test.command();
    command.args(["run", "pipeline.toml", "--json"]);
    // SAFETY: only dup2 between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for (from, to) in [(file, 5), (folder, 7), (writer, 9)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let output = command.output().expect("run");
    drop(reader);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 3 is the listing's own descriptor.
    assert_eq!(test.read("out/probe.txt"), "[0, 1, 2, 3]\n");
}
