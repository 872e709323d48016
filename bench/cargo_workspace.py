"""Writes a Cargo workspace of N path crates (a root that depends on all of them, plus a few
random dependencies between them) and its Cargo.lock: N + 1 packages that both gantry and
cargo-cyclonedx can read offline.

    python3 bench/cargo_workspace.py N DIR
"""
import os
import random
import subprocess
import sys

count, root = int(sys.argv[1]), sys.argv[2]
random.seed(7)
os.makedirs(f"{root}/src", exist_ok=True)
with open(f"{root}/Cargo.toml", "w") as manifest:
    manifest.write('[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\nlicense = "MIT"\n\n[dependencies]\n')
    for index in range(count):
        manifest.write(f'crate{index:04} = {{ path = "crates/crate{index:04}" }}\n')
    manifest.write("\n[workspace]\n")
with open(f"{root}/src/main.rs", "w") as main:
    main.write("fn main() {}\n")
for index in range(count):
    folder = f"{root}/crates/crate{index:04}"
    os.makedirs(f"{folder}/src", exist_ok=True)
    later = sorted({other for other in random.sample(range(count), 4) if other > index})
    with open(f"{folder}/Cargo.toml", "w") as manifest:
        manifest.write(
            f'[package]\nname = "crate{index:04}"\nversion = "1.{index}.0"\nedition = "2021"\n'
            'license = "MIT OR Apache-2.0"\n\n[dependencies]\n'
        )
        for other in later:
            manifest.write(f'crate{other:04} = {{ path = "../crate{other:04}" }}\n')
    open(f"{folder}/src/lib.rs", "w").close()
subprocess.run(["cargo", "generate-lockfile", "--offline", "--quiet"], cwd=root, check=True)
