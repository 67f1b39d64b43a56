#!/usr/bin/env bash
# `make image`: the base image (Debian bookworm by mmdebstrap, `podman import`ed, made once),
# the wheels (built on this host from its own package source), then the app image.
#   deploy/image.sh                 -> localhost/videogen:latest
#   EXTRAS=gpu deploy/image.sh      -> localhost/videogen:gpu (the `gpu` extra, torch first)
# Needs root for the packages it installs when missing and for rootful podman.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-localhost/videogen-base:bookworm}
EXTRAS=${EXTRAS:-}
VARIANT=${EXTRAS:-base}
IMAGE=${IMAGE:-localhost/videogen:$([ -n "$EXTRAS" ] && echo "${EXTRAS//,/-}" || echo latest)}
PYTHON=${PYTHON:-.venv/bin/python}
WHEELS=deploy/build/wheels-${VARIANT//,/-}
# cgroup v1 (hybrid) hosts: crun refuses them, runc works. Default ulimits may exceed the
# host's hard limits, hence explicit ones.
PODMAN=(podman --runtime "${PODMAN_RUNTIME:-runc}")
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)

missing=()
for tool in podman:podman mmdebstrap:mmdebstrap runc:runc newuidmap:uidmap \
            slirp4netns:slirp4netns fuse-overlayfs:fuse-overlayfs; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "make image needs: ${missing[*]} (apt-get install them, or run as root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "${PODMAN[@]}" image exists "$BASE"; then
  echo ">> base image $BASE (mmdebstrap, about a minute)"
  # python3-venv for the builder stage's venv; netbase for /etc/services and /etc/protocols.
  mmdebstrap --quiet --variant=minbase \
    --include=ca-certificates,netbase,python3,python3-venv \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm - | "${PODMAN[@]}" import --quiet - "$BASE" >/dev/null
fi

echo ">> wheels for '${VARIANT}' in $WHEELS"
mkdir -p "$WHEELS"
# The folder holds wheels only: what the build copies must not change from run to run.
reqs="$WHEELS.requirements.txt"
"$PYTHON" deploy/requirements.py "$EXTRAS" > "$reqs"
# Wheels for the image's Python (bookworm's 3.11.2), downloaded from this host's package
# source (its extra indexes and wheel folders, its TLS set-up), so the build needs no network.
# pip's warnings about this machine's missing extra indexes are noise: its log is shown
# only when it fails.
target=$("${PODMAN[@]}" run --rm "${ULIMITS[@]}" --network none "$BASE" \
  python3 -c 'import platform; print(platform.python_version())')
wheel() {
  if ! "$PYTHON" -m pip download -q --disable-pip-version-check -c constraints.txt \
      --only-binary=:all: --python-version "$target" -d "$WHEELS" "$@" \
      >"$WHEELS.pip.log" 2>&1; then
    grep -v 'is ignored: it is neither' "$WHEELS.pip.log" >&2
    exit 1
  fi
}
# torch alone first (see the Makefile): the machine's CPU wheel here, not a CUDA build.
if torch=$(grep '^torch' "$reqs"); then
  wheel --no-deps "$torch"
fi
wheel --find-links "$WHEELS" -r "$reqs"
# What the image's Python needs beyond what pip chose for this host's (deploy/wheels.py).
for _ in 1 2 3 4 5; do
  mapfile -t more < <("$PYTHON" deploy/wheels.py --python "$target" "$WHEELS" "$reqs")
  [ ${#more[@]} -eq 0 ] && break
  wheel --find-links "$WHEELS" "${more[@]}"
done

echo ">> image $IMAGE"
"${PODMAN[@]}" build "${ULIMITS[@]}" --layers --format docker \
  -f deploy/Containerfile --ignorefile deploy/Containerfile.dockerignore \
  --build-arg BASE="$BASE" --build-arg EXTRAS="$EXTRAS" --build-arg WHEELS="$WHEELS" \
  -t "$IMAGE" .
"${PODMAN[@]}" image inspect --format '{{.Id}} {{.Size}}' "$IMAGE" \
  | awk -v img="$IMAGE" '{printf ">> %s %s (%.0f MB)\n", img, substr($1,1,12), $2/1e6}'
