#!/usr/bin/env bash
# Installs everything trainspotter's build, tests and demo need, from Debian 12 packages only.
# Idempotent: quiet when everything is already installed. Fails loudly naming the package.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # decoding (FFmpeg libav*) and the ffmpeg CLI used by tests/benchmarks to make distorted clips
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev ffmpeg
  # fingerprinting, and the reference fpcalc the tests compare against
  libchromaprint-dev libchromaprint-tools
  # vector index (static libfaiss needs OpenMP + BLAS/LAPACK at link time)
  libfaiss-dev libopenblas-dev liblapack-dev
  # service
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc prometheus-cpp-dev
  # API-key hashing (libcrypto); the openssl CLI makes the TLS test certificate
  libssl-dev openssl
  # vocabulary, storage, CLI, JSON
  libabsl-dev libsqlite3-dev libcli11-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # non-member test audio (speech) and measurements
  espeak-ng sox xz-utils python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "setup.sh: installing ${#missing[@]} Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || { echo "setup.sh: apt-get update failed" >&2; exit 1; }
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/trainspotter-setup.log 2>&1; then
  tail -n 20 /tmp/trainspotter-setup.log >&2
  for p in "${missing[@]}"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "setup.sh: package not available from apt: $p" >&2
    fi
  done
  echo "setup.sh: apt-get install failed (full log: /tmp/trainspotter-setup.log)" >&2
  exit 1
fi
echo "setup.sh: done"
