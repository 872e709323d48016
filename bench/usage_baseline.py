#!/usr/bin/env python3
"""The same-machine reference for `gantry usage report`: the least a report must do, in
Python with the `cryptography` wheel (OpenSSL): read every usage document under ATTESTATIONS,
verify its DSSE signature with PUB, and add up CPU microseconds and executed steps per tenant
(no pricing, no rounding, no output formats).
Usage: usage_baseline.py PUB ATTESTATIONS"""
import base64
import json
import pathlib
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

key = serialization.load_pem_public_key(pathlib.Path(sys.argv[1]).read_bytes())
totals = {}
for path in sorted(pathlib.Path(sys.argv[2]).glob("*/usage.intoto.json")):
    envelope = json.loads(path.read_text())
    body = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    predicate = json.loads(body)["predicate"]
    cpu, executed = totals.get(predicate.get("tenant"), (0, 0))
    for step in predicate["steps"]:
        if step["status"] == "executed":
            usage = step.get("usage") or {}
            cpu += usage.get("cpuUserUs", 0) + usage.get("cpuSystemUs", 0)
            executed += 1
    totals[predicate.get("tenant")] = (cpu, executed)
print(json.dumps(totals))
