#!/usr/bin/env python3
"""The benchmark's input for `gantry vulns scan` and cargo-audit: ADVISORIES RustSec advisory
files made from the real ones in tests/fixtures/vulns/rustsec (each copied under a new crate
name and id, its version requirements unchanged, aliases dropped so that no two merge), the
same advisories as OSV records, and a Cargo.lock of COMPONENTS crates among them.
Usage: vulns_data.py ADVISORIES COMPONENTS OUT"""
import json
import pathlib
import re
import sys

advisories, components, out = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
root = pathlib.Path(__file__).resolve().parent.parent
templates = sorted((root / "tests/fixtures/vulns/rustsec/crates").glob("*/*.md"))
osv = root / "tests/fixtures/vulns/osv"
packages = []
for number in range(advisories):
    template = templates[number % len(templates)]
    crate = template.parent.name
    package = f"{crate}-x{number // len(templates)}"
    ident = f"RUSTSEC-{2100 + number // 10000}-{number % 10000:04d}"
    text = template.read_text()
    text = re.sub(r'(?m)^id = ".*"$', f'id = "{ident}"', text, count=1)
    text = re.sub(r'(?m)^package = ".*"$', f'package = "{package}"', text, count=1)
    text = re.sub(r"(?ms)^aliases = \[.*?\]\n", "", text, count=1)
    text = re.sub(r"(?ms)^related = \[.*?\]\n", "", text, count=1)
    folder = out / "rustsec/crates" / package
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ident}.md").write_text(text)
    record = json.loads((osv / f"{template.stem}.json").read_text())
    record["id"] = ident
    record["aliases"] = []
    record["related"] = []
    for affected in record.get("affected", []):
        affected["package"]["name"] = package
        affected["package"]["purl"] = f"pkg:cargo/{package}"
    (out / "osv").mkdir(parents=True, exist_ok=True)
    (out / "osv" / f"{ident}.json").write_text(json.dumps(record))
    if package not in packages:
        packages.append(package)
lock = ['version = 3', '', '[[package]]', 'name = "app"', 'version = "0.1.0"', '']
for index, package in enumerate(packages[:components]):
    # Old and new releases, so that some are affected and some are not.
    version = "0.1.0" if index % 2 else "99.0.0"
    lock += ['[[package]]', f'name = "{package}"', f'version = "{version}"',
             'source = "registry+https://github.com/rust-lang/crates.io-index"', '']
(out / "Cargo.lock").write_text("\n".join(lock))
print(f"{advisories} advisories, {min(components, len(packages))} components")
