#!/usr/bin/env bash
# LAB ONLY. Builds the real add-on programs the lab can run, from the Go module proxy, and puts their charts where
# the lab inventory's chart sources point (a local chart path: how an air-gapped site installs them too):
#   MetalLB   go.universe.tf/metallb at METALLB_VERSION: the real controller and speaker, built with CGO off as
#             upstream builds them, into images named as the chart's values name them; the chart
#             is MetalLB's own, read from that same module (charts/metallb), never copied into the repository.
# Output, under DGXLAB_CACHE (default /var/cache/dgxlab):
#   addons/metallb-<version>/bin/{controller,speaker}
#   addons/charts/metallb                     the chart directory, as the module ships it
#   addons/images/{addons.tar,images.txt}     the images, for lab/lab.sh to import into each node's containerd
#   lab/build-addons.sh        build what is out of date; print the addons directory on stdout (progress on stderr)
# Not built here: Calico (tigera/operator, the operator its chart installs, is not served by the Go module proxy),
# Longhorn and the GPU Operator (their data planes need block devices and GPUs); the lab models those with the lab
# charts under tests/lab/charts.
set -euo pipefail
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
LAB_DIR=$(dirname "$SCRIPT")
export CONTAINERS_CONF=${LAB_CONTAINERS_CONF:-$LAB_DIR/containers.conf}
export CONTAINERS_STORAGE_CONF=${LAB_STORAGE_CONF:-$LAB_DIR/storage.conf}
METALLB_VERSION=${METALLB_VERSION:-v0.15.2}
CACHE=${DGXLAB_CACHE:-/var/cache/dgxlab}
OUT=$CACHE/addons
export GOPATH=$CACHE/go GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-modcacherw -buildvcs=false" CGO_ENABLED=0

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
sum_of() { { cat "$SCRIPT"; echo "$METALLB_VERSION"; "$@"; } | sha256sum | cut -c1-16; }

build_metallb() {
    local dest=$OUT/metallb-$METALLB_VERSION src work
    [ -x "$dest/bin/controller" ] && [ -x "$dest/bin/speaker" ] && [ -d "$OUT/charts/metallb" ] \
        && [ "$(cat "$dest/.sum" 2>/dev/null)" = "$(sum_of true)" ] && return 0
    log "building MetalLB $METALLB_VERSION (controller, speaker) from the Go module proxy"
    mkdir -p "$GOMODCACHE" "$GOCACHE"
    src=$(cd /tmp && go mod download -json "go.universe.tf/metallb@$METALLB_VERSION" \
        | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$src" ] || die "the Go module proxy did not serve go.universe.tf/metallb@$METALLB_VERSION"
    work=$(mktemp -d /var/tmp/dgxlab-metallb.XXXXXX)
    cp -r "$src/." "$work/"
    chmod -R u+w "$work"
    mkdir -p "$dest/bin"
    local version=$METALLB_VERSION
    for program in controller speaker; do
        (cd "$work" && nice -n 19 go build -trimpath \
            -ldflags "-s -w -X go.universe.tf/metallb/internal/version.gitCommit=module-$version" \
            -o "$dest/bin/$program" "./$program") || die "go build ./$program failed"
    done
    rm -rf "$OUT/charts/metallb"
    mkdir -p "$OUT/charts"
    cp -r "$work/charts/metallb" "$OUT/charts/metallb"
    rm -rf "$work"
    sum_of true >"$dest/.sum"
}

build_images() {
    local dir=$OUT/images sum work refs=()
    sum=$(sum_of cat "$OUT/metallb-$METALLB_VERSION/.sum")
    [ -f "$dir/.sum" ] && [ "$(cat "$dir/.sum")" = "$sum" ] && return 0
    log "building the MetalLB images into $dir"
    work=$(mktemp -d /var/tmp/dgxlab-addon-images.XXXXXX)
    rm -rf "$dir"
    mkdir -p "$dir"
    local repo
    for program in controller speaker; do
        # The image name the chart's values give (repository), with the chart's default tag (the appVersion).
        repo=$(awk '$1 == "repository:" && $2 ~ "/metallb/'"$program"'$" {print $2; exit}' "$OUT/charts/metallb/values.yaml")
        [ -n "$repo" ] || die "no image repository for $program in the MetalLB chart's values"
        mkdir -p "$work/$program"
        cp "$OUT/metallb-$METALLB_VERSION/bin/$program" "$work/$program/"
        printf 'FROM scratch\nLABEL dgxlab.purpose="MetalLB %s built from its Go module for the lab"\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' \
            "$METALLB_VERSION" "$program" "$program" "$program" >"$work/$program/Containerfile"
        podman build -q --network none --label dgxlab=1 -t "$repo:$METALLB_VERSION" "$work/$program" >/dev/null
        refs+=("$repo:$METALLB_VERSION")
    done
    podman save -q -m -o "$dir/addons.tar" "${refs[@]}"
    printf '%s\n' "${refs[@]}" >"$dir/images.txt"
    podman rmi -f "${refs[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
    echo "$sum" >"$dir/.sum"
}

command -v go >/dev/null || die "go is not installed"
build_metallb
build_images
echo "$OUT"
