#!/usr/bin/env bash
# gantry's whole test suite, for a fresh Debian machine (run as root) or a developer's.
# Installs what the tests need when it is missing, then runs rustfmt, clippy and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the tests call: openssl verifies signatures; setpriv runs gantry unprivileged; script
# gives it a terminal; the sandboxed test steps use coreutils, tar and bash from the host's
# /usr; nix (Debian's nix-bin, which brings /etc/nix/nix.conf along with its recommended
# nix-setup-systemd) builds the Nix steps' test flakes, offline; diffoscope explains the
# differences `gantry repro` finds (without its recommends, which are hundreds of packages);
# node and npm run sigstore-js, which verifies the Sigstore bundles gantry writes; python3's
# venv holds the SBOM validators (below); haproxy and nginx serve the rollout tests' traffic on
# loopback, under load from wrk, and prometheus scrapes HAProxy's exporter for them.
# sshd on loopback is the Nix remote builder test's builder. go builds the Go project that
# `gantry init` is tried on (tests/integration/real_projects.rs). chromium renders the usage
# report's HTML page headless, for a screenshot the test reads back. curl reads a template
# registry served over HTTPS.
declare -A package_of=([openssl]=openssl [curl]=curl [bash]=bash [tar]=tar [sha256sum]=coreutils [git]=git [unshare]=util-linux [setpriv]=util-linux [script]=bsdutils [nix]=nix-bin [node]=nodejs [npm]=npm [ssh]=openssh-client)
declare -A bare_package_of=([diffoscope]=diffoscope [haproxy]=haproxy [nginx]=nginx-light [wrk]=wrk [prometheus]=prometheus [sshd]=openssh-server [go]=golang-go [chromium]=chromium)
missing=() missing_bare=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
for tool in "${!bare_package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing_bare+=("${bare_package_of[$tool]}")
done
if ((${#missing[@]} + ${#missing_bare[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing ${missing[*]} ${missing_bare[*]}"
    apt-get update -qq
    if ((${#missing[@]})); then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    if ((${#missing_bare[@]})); then
      # Packages with a service (prometheus) must not start it: the tests run their own.
      no_services=
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_services=1
      fi
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_bare[@]}"
      [ -z "$no_services" ] || rm -f /usr/sbin/policy-rc.d
    fi
  else
    echo "error: the tests need: ${missing[*]} ${missing_bare[*]}" >&2
    echo "hint: sudo apt-get install ${missing[*]} ${missing_bare[*]}" >&2
    exit 1
  fi
fi

# The sandbox needs user namespaces; say so plainly instead of failing every test.
if ! unshare --user --map-root-user --mount --pid --fork true 2>/dev/null; then
  echo "error: this machine does not allow user namespaces, which gantry's sandbox needs" >&2
  echo "hint: sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or run as root" >&2
  exit 1
fi

# sigstore-js (@sigstore/verify), pinned by its lock file, from the npm registry.
if [ ! -d tests/oracles/sigstore/node_modules/@sigstore/verify ]; then
  npm ci --prefix tests/oracles/sigstore --no-audit --no-fund --loglevel=error
fi

# The Python oracles (SBOM validators, in-toto-verify), pinned, from PyPI, in a
# venv of their own; rebuilt when requirements.txt changes.
venv=tests/oracles/sbom/.venv
if ! cmp -s tests/oracles/sbom/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
    else
      echo "error: the SBOM tests need python3 with venv" >&2
      echo "hint: sudo apt-get install python3 python3-venv" >&2
      exit 1
    fi
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/oracles/sbom/requirements.txt
  cp tests/oracles/sbom/requirements.txt "$venv/requirements.txt"
fi

# BuildGrid 0.9.1 (the remote execution tests' REAPI server): a venv on Python >= 3.13 from
# PyPI and Debian's PostgreSQL, when missing.
bash scripts/buildgrid.sh install || {
  echo "hint: BuildGrid needs Python >= 3.13 (pyenv install 3.13.0, or set BUILDGRID_PYTHON) and PostgreSQL (apt-get install postgresql)" >&2
  exit 1
}

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
