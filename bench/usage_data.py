#!/usr/bin/env python3
"""The benchmark's input for `gantry usage report`: RUNS signed usage documents of STEPS steps
each (RUNS x STEPS step records), spread over November 2026 and three tenants, signed with a
fresh P-256 key (DSSE, ECDSA over SHA-256, as gantry signs). Writes OUT/attestations/RUN/
usage.intoto.json, OUT/farm.pub and OUT/rate-card.toml (the tests' fixture).
Usage: usage_data.py RUNS STEPS OUT"""
import base64
import hashlib
import json
import pathlib
import shutil
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

runs, steps, out = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
root = pathlib.Path(__file__).resolve().parent.parent
out.mkdir(parents=True, exist_ok=True)
shutil.copy(root / "tests/fixtures/usage/rate-card.toml", out / "rate-card.toml")
key = ec.generate_private_key(ec.SECP256R1())
(out / "farm.pub").write_bytes(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
payload_type = "application/vnd.in-toto+json"
tenants = ["acme", "globex", "initech"]
HOUR = 3_600_000_000
for number in range(runs):
    day, second = 1 + number % 30, number % 86_400
    started = f"2026-11-{day:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    run_id = f"202611{day:02d}T{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}Z-{number:08x}"
    records = []
    for index in range(steps):
        usage = {"method": "wait4", "wallUs": HOUR // 100 + index, "cpuUserUs": HOUR // 200 + number,
                 "cpuSystemUs": index * 1000, "peakMemoryBytes": 100_000_000 + index,
                 "blockReadBytes": 0, "blockWrittenBytes": 4096}
        records.append({"step": f"s{index}", "status": "cached" if index % 10 == 0 else "executed", "usage": usage})
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "provenance.intoto.json", "digest": {"sha256": hashlib.sha256(run_id.encode()).hexdigest()}}],
        "predicateType": "https://gantry.dev/attestation/usage/v0.1",
        "predicate": {"runId": run_id, "tenant": tenants[number % 3],
                      "pipeline": {"name": f"p{number % 7}", "path": "pipeline.toml", "sha256": "0" * 64},
                      "machine": {"cores": 2}, "startedOn": started, "finishedOn": started, "steps": records},
    }
    body = json.dumps(statement, separators=(",", ":")).encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(body), body)
    signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    envelope = {"payloadType": payload_type, "payload": base64.b64encode(body).decode(),
                "signatures": [{"sig": base64.b64encode(signature).decode()}]}
    folder = out / "attestations" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "usage.intoto.json").write_text(json.dumps(envelope))
print(f"{runs} runs, {runs * steps} step records")
