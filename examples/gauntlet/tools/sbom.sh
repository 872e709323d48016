#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/sbom.sh TAR OUT: calc's CycloneDX 1.6 SBOM. The release candidate is the tarball
# (by its SHA-256); what it runs on is Debian 12's dash, its only third-party component.
set -eu
tar=$1
out=$2
sha=$(sha256sum "$tar" | cut -d' ' -f1)
cat > "$out.tmp" <<JSON
{
  "bomFormat": "CycloneDX",
  "specVersion": "1.6",
  "version": 1,
  "metadata": {
    "component": {
      "type": "application",
      "bom-ref": "calc",
      "name": "calc",
      "version": "1.0.0",
      "hashes": [{ "alg": "SHA-256", "content": "$sha" }]
    }
  },
  "components": [
    {
      "type": "application",
      "bom-ref": "dash",
      "name": "dash",
      "version": "0.5.12-2",
      "purl": "pkg:deb/debian/dash@0.5.12-2?distro=debian-12"
    }
  ],
  "dependencies": [{ "ref": "calc", "dependsOn": ["dash"] }]
}
JSON
mv "$out.tmp" "$out"
