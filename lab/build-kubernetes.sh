#!/usr/bin/env bash
# LAB ONLY. Builds real Kubernetes binaries for the lab nodes from the Go module proxy, with the machine's own
# `go` (no prebuilt release, no image registry, no other download site): kubeadm, kubelet, kubectl,
# kube-apiserver, kube-controller-manager and kube-scheduler from k8s.io/kubernetes, etcd from
# go.etcd.io/etcd/server/v3, etcdctl and etcdutl from go.etcd.io/etcd/{etcdctl,etcdutl}/v3, crictl from
# sigs.k8s.io/cri-tools, helm from helm.sh/helm/v3, and our own static pause (lab/pause). The collection never
# uses this: a real Spark installs Kubernetes from its package repository.
#
#   lab/build-kubernetes.sh            build what is missing or out of date, then print a table of the binaries
#   lab/build-kubernetes.sh --bin-dir  print the directory that holds (or will hold) the binaries, and exit
#   lab/build-kubernetes.sh --newest   print the newest release the module proxy serves for each pinned series
# A cold build takes about 10 minutes and 1.7 GiB of memory on 2 cores; run it with `nice -n 19` on a shared machine.
#
# Everything lives outside the clone, under DGXLAB_CACHE (default /var/cache/dgxlab):
#   go/mod, go/build              Go's module and build caches for these builds only (GOMODCACHE, GOCACHE), so the
#                                 whole cost of the lab's Kubernetes is one directory to keep, measure or delete
#   k8s/<kube version>/bin        the binaries
#   k8s/<kube version>/stamps     what each binary was built from: its version and the hash of this script,
#                                 lab/pause and `go version`; a binary whose stamp matches is not built again
#   k8s/<kube version>/src        the generated wrapper modules (go.mod, go.sum): k8s.io/kubernetes cannot be
#                                 `go install`ed because its go.mod replaces its staging modules with local paths,
#                                 so a wrapper requires it and pins each staging module to the matching release
# KUBE_VERSION, ETCD_VERSION, ETCDCTL_VERSION, CRI_TOOLS_VERSION, HELM_VERSION and COREDNS_VERSION override the
# pins below;
# EXTRA_TARGETS="kube-proxy coredns" also builds those add-ons' binaries (not built unless asked).
set -euo pipefail

# Pinned, so that a build is reproducible and a warm run needs no network; --newest shows what could be bumped.
# Kubernetes: the newest 1.31 patch the proxy serves (1.31 is the lab inventory's kubernetes_version series).
KUBE_VERSION=${KUBE_VERSION:-v1.31.14}
# etcd and CoreDNS: the releases kubeadm v1.31.14 itself names (`kubeadm config images list`: etcd:3.5.24-0,
# coredns:v1.11.3), so that the lab's local images hold what a real Spark pulls; the newest 3.5 served is v3.5.35.
ETCD_VERSION=${ETCD_VERSION:-v3.5.24}
# etcdctl and etcdutl, which the real etcd image carries beside etcd (backup-etcd.yml and restore-etcd.yml run them
# inside the etcd container): the proxy answers 403 "This module version is not available" for
# go.etcd.io/etcd/{etcdctl,etcdutl}/v3@v3.5.24 (it serves v3.5.11, then v3.5.33 and newer of the 3.5 series), so they
# are the nearest newer 3.5 release. Same minor series: the snapshot and data-directory formats are 3.5's, and both
# have the `snapshot restore --bump-revision --mark-compacted` the restore uses.
ETCDCTL_VERSION=${ETCDCTL_VERSION:-v3.5.33}
COREDNS_VERSION=${COREDNS_VERSION:-v1.11.3}
# The proxy serves no cri-tools release of the 1.31, 1.32 or 1.33 series; 1.34.0 is the oldest it has.
CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.34.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# Staging modules whose matching release the proxy does not serve (it answers 403 "This module version is not
# available" for k8s.io/{endpointslice,kube-controller-manager,kube-proxy,kube-scheduler}@v0.31.14): pinned to the
# newest v0.31 patch it serves. Their files other than go.mod are identical from v0.31.8 to those patches (checked
# with diff -r), so they are almost certainly what v0.31.14 would hold; their go.mod requirements do not matter,
# because the wrapper pins every staging module.
if [ "$KUBE_VERSION" = v1.31.14 ]; then
    KUBE_STAGING_PINS=${KUBE_STAGING_PINS-k8s.io/endpointslice@v0.31.13 k8s.io/kube-controller-manager@v0.31.13 \
k8s.io/kube-proxy@v0.31.11 k8s.io/kube-scheduler@v0.31.13}
fi
KUBE_STAGING_PINS=${KUBE_STAGING_PINS:-}

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SCRIPT")/.." && pwd)
CACHE=${DGXLAB_CACHE:-/var/cache/dgxlab}
OUT=$CACHE/k8s/$KUBE_VERSION
BIN=$OUT/bin

export GOPATH=$CACHE/go GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
# Never fetch another toolchain (etcd 3.5's go.mod names one); keep the module cache deletable with rm -rf.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-modcacherw -buildvcs=false"

# name  project  Go package (built inside the project's wrapper module; pause from lab/pause)
TARGETS=(
    "kubeadm                 kubernetes k8s.io/kubernetes/cmd/kubeadm"
    "kubelet                 kubernetes k8s.io/kubernetes/cmd/kubelet"
    "kubectl                 kubernetes k8s.io/kubernetes/cmd/kubectl"
    "kube-apiserver          kubernetes k8s.io/kubernetes/cmd/kube-apiserver"
    "kube-controller-manager kubernetes k8s.io/kubernetes/cmd/kube-controller-manager"
    "kube-scheduler          kubernetes k8s.io/kubernetes/cmd/kube-scheduler"
    "etcd                    etcd       go.etcd.io/etcd/server/v3"
    "etcdctl                 etcdctl    go.etcd.io/etcd/etcdctl/v3"
    "etcdutl                 etcdutl    go.etcd.io/etcd/etcdutl/v3"
    "crictl                  cri-tools  sigs.k8s.io/cri-tools/cmd/crictl"
    "helm                    helm       helm.sh/helm/v3/cmd/helm"
    "pause                   pause      ."
)
OPTIONAL_TARGETS=(
    "kube-proxy              kubernetes k8s.io/kubernetes/cmd/kube-proxy"
    "coredns                 coredns    github.com/coredns/coredns"
)
for extra in ${EXTRA_TARGETS:-}; do
    found=""
    for t in "${OPTIONAL_TARGETS[@]}"; do
        read -r name _ <<<"$t"
        if [ "$name" = "$extra" ]; then TARGETS+=("$t"); found=1; fi
    done
    [ -n "$found" ] || { echo "EXTRA_TARGETS: unknown $extra (known: kube-proxy coredns)" >&2; exit 2; }
done

log() { printf '[%5ds] %s\n' "$SECONDS" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

module_of() {  # project -> "module version"
    case $1 in
        kubernetes) echo "k8s.io/kubernetes $KUBE_VERSION" ;;
        etcd) echo "go.etcd.io/etcd/server/v3 $ETCD_VERSION" ;;
        etcdctl) echo "go.etcd.io/etcd/etcdctl/v3 $ETCDCTL_VERSION" ;;
        etcdutl) echo "go.etcd.io/etcd/etcdutl/v3 $ETCDCTL_VERSION" ;;
        cri-tools) echo "sigs.k8s.io/cri-tools $CRI_TOOLS_VERSION" ;;
        helm) echo "helm.sh/helm/v3 $HELM_VERSION" ;;
        coredns) echo "github.com/coredns/coredns $COREDNS_VERSION" ;;
        pause) echo "lab/pause $(sed -n 's/^const version = "\(.*\)"$/v\1/p' "$REPO/lab/pause/main.go")" ;;
    esac
}

newest() {  # what the proxy serves now; bump the pins above by hand, so that builds stay reproducible
    local query
    cd "$(mktemp -d)"
    go mod init scratch >/dev/null 2>&1
    for query in "k8s.io/kubernetes@${KUBE_VERSION%.*}" "go.etcd.io/etcd/server/v3@${ETCD_VERSION%.*}" \
                 "go.etcd.io/etcd/etcdctl/v3@${ETCDCTL_VERSION%.*}" "go.etcd.io/etcd/etcdutl/v3@${ETCDCTL_VERSION%.*}" \
                 "sigs.k8s.io/cri-tools@${KUBE_VERSION%.*}" "sigs.k8s.io/cri-tools@latest" "helm.sh/helm/v3@latest"; do
        printf '%-36s %s\n' "$query" "$(go list -m -f '{{.Version}}' "$query" 2>/dev/null || echo 'none served')"
    done
    rm -rf "$PWD"
}

case ${1:-} in
    --bin-dir) echo "$BIN"; exit 0 ;;
    --newest) newest; exit 0 ;;
    "") ;;
    *) sed -n '/^#   lab/p' "$SCRIPT" >&2; exit 2 ;;
esac

command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$BIN" "$OUT/stamps" "$OUT/src" "$GOMODCACHE" "$GOCACHE"
exec 9>"$OUT/.lock"
flock -n 9 || { log "waiting for another build of $OUT"; flock 9; }

KEY=$( { cat "$SCRIPT" "$REPO"/lab/pause/go.mod "$REPO"/lab/pause/*.go; go version; echo "$KUBE_STAGING_PINS"; } |
       sha256sum | cut -c1-16)
stamp_of() { local version; read -r _ version <<<"$(module_of "$2")"; echo "$1 $version $KEY"; }
fresh() { [ -x "$BIN/$1" ] && [ -f "$OUT/stamps/$1" ] && [ "$(head -n1 "$OUT/stamps/$1")" = "$(stamp_of "$1" "$2")" ]; }

heartbeat=""
trap '[ -z "$heartbeat" ] || kill "$heartbeat" 2>/dev/null || true' EXIT
start_heartbeat() {  # what: print a line every 30 s while a long step runs
    local what=$1 since=$SECONDS
    # Its own sleep dies with it, and it does not inherit the lock (fd 9), which a leftover sleep would hold.
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        while :; do
            sleep 30 & nap=$!
            wait "$nap"
            log "$what: still running ($((SECONDS - since))s)"
        done
    ) 9>&- &
    heartbeat=$!
}
stop_heartbeat() { kill "$heartbeat" 2>/dev/null || true; wait "$heartbeat" 2>/dev/null || true; heartbeat=""; }

# Writes the project's wrapper module and fetches every module its commands need (filling go.sum).
declare -A PREPARED=() LDFLAGS=() TAGS=()
prepare() {  # project
    local project=$1 module version dir json gomod info date gover staging pkgs count
    [ -n "${PREPARED[$project]:-}" ] && return 0
    read -r module version <<<"$(module_of "$project")"
    dir=$OUT/src/$project
    mkdir -p "$dir"
    log "$project: fetching $module $version"
    if ! json=$(cd "$OUT/src" && go mod download -json "$module@$version"); then
        printf '%s\n' "$json" >&2
        die "$project: go mod download $module@$version failed"
    fi
    gomod=$(sed -n 's/.*"GoMod": "\([^"]*\)".*/\1/p' <<<"$json")
    info=$(sed -n 's/.*"Info": "\([^"]*\)".*/\1/p' <<<"$json")
    date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
    gover=$(awk '$1 == "go" { print $2; exit }' "$gomod")
    staging=""
    [ "$project" = kubernetes ] && staging=v0.${KUBE_VERSION#v1.}
    {
        echo "// LAB ONLY. Generated by lab/build-kubernetes.sh to build the commands of $module $version."
        echo "module dgxlab-build/$project"
        echo
        echo "go $gover"
        echo
        echo "require $module $version"
        echo
        # Each module the upstream go.mod replaces with a local directory (k8s.io/kubernetes' staging modules,
        # etcd's sibling modules) is pinned to its published release: the upstream's required version, or for a
        # v0.0.0 placeholder (Kubernetes' staging modules) the v0.<minor>.<patch> release of the same tag.
        awk '
            function local_replace(   i) {
                for (i = 1; i < NF; i++) if ($i == "=>") break
                if ($(i + 1) ~ /^\.\.?\// && $(i + 1) !~ /FORBIDDEN/) replaced[$1] = 1
            }
            /^replace \(/ { block = "replace"; next }
            /^require \(/ { block = "require"; next }
            /^\)/ { block = ""; next }
            /^replace / { sub(/^replace /, ""); local_replace(); next }
            /^require / { sub(/^require /, ""); required[$1] = $2; next }
            block == "replace" { local_replace() }
            block == "require" { required[$1] = $2 }
            END { for (m in replaced) if (m in required) print m, required[m] }
        ' "$gomod" | sort | while read -r path pinned; do
            note=""
            if [ "$pinned" = v0.0.0 ]; then
                [ -n "$staging" ] || die "$project: $path is required as v0.0.0 and has no release to pin"
                pinned=$staging
                for pin in $KUBE_STAGING_PINS; do
                    [ "${pin%@*}" = "$path" ] || continue
                    note=" // $pinned is not served by the module proxy"
                    pinned=${pin#*@}
                done
            fi
            echo "replace $path => $path $pinned$note"
        done
    } >"$dir/go.mod"
    touch "$dir/go.sum"

    case $project in
        kubernetes)
            local minor=${KUBE_VERSION#v1.} pkg
            minor=${minor%%.*}
            TAGS[$project]=selinux,notest   # upstream's hack/lib/golang.sh always builds with these tags
            LDFLAGS[$project]="-s -w"
            for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
                LDFLAGS[$project]+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
                # No commit is known (the module zip has no git data): gitCommit is left empty, not "$Format:%H$".
                LDFLAGS[$project]+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$date -X $pkg.gitCommit="
            done ;;
        etcd|etcdctl|etcdutl)
            LDFLAGS[$project]="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=not-recorded" ;;
        coredns)
            LDFLAGS[$project]="-s -w -X github.com/coredns/coredns/coremain.GitCommit=not-recorded" ;;
        cri-tools)
            LDFLAGS[$project]="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" ;;
        helm)
            # As helm's Makefile: the Kubernetes version helm assumes is that of the client-go it is built with.
            local k8s_minor
            k8s_minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod")
            LDFLAGS[$project]="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
            LDFLAGS[$project]+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
            local pkg
            for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
                LDFLAGS[$project]+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
            done ;;
    esac

    pkgs=$(for t in "${TARGETS[@]}"; do read -r _ p pkg <<<"$t"; if [ "$p" = "$project" ]; then echo "$pkg"; fi; done)
    log "$project: resolving and downloading the modules it needs (wrapper $dir)"
    start_heartbeat "$project: modules"
    # shellcheck disable=SC2086  # pkgs is a list of package paths
    count=$(cd "$dir" && CGO_ENABLED=0 go list -mod=mod -deps -tags "${TAGS[$project]:-}" \
                -f '{{with .Module}}{{.Path}}{{end}}' $pkgs | sort -u | wc -l) \
        || { stop_heartbeat; die "$project: resolving modules failed (go list above)"; }
    stop_heartbeat
    log "$project: $count modules ready"
    PREPARED[$project]=1
}

build() {  # name project package
    local name=$1 project=$2 pkg=$3 dir began
    began=$SECONDS
    if [ "$project" = pause ]; then
        dir=$REPO/lab/pause
        LDFLAGS[pause]="-s -w"
    else
        prepare "$project"
        dir=$OUT/src/$project
    fi
    log "$name: building $pkg (CGO_ENABLED=0)"
    start_heartbeat "$name: go build"
    if ! (cd "$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -tags "${TAGS[$project]:-}" \
              -ldflags "${LDFLAGS[$project]}" -o "$BIN/.$name.new" "$pkg"); then
        stop_heartbeat
        die "$name: go build failed (error above)"
    fi
    stop_heartbeat
    mv -f "$BIN/.$name.new" "$BIN/$name"
    printf '%s\n%s\n' "$(stamp_of "$name" "$project")" "$((SECONDS - began))" >"$OUT/stamps/$name"
    log "$name: built in $((SECONDS - began))s"
}

reported_version() {  # name: the version as the binary itself reports it
    local b=$BIN/$1
    case $1 in
        kubeadm) "$b" version -o short ;;
        kubectl) "$b" version --client | head -n1 ;;
        etcd) "$b" --version | head -n1 ;;
        etcdctl|etcdutl) "$b" version | head -n1 ;;
        helm) "$b" version --short ;;
        pause) "$b" -v ;;
        coredns) "$b" -version ;;
        *) "$b" --version | head -n1 ;;
    esac 2>&1 | head -n1
}

log "building into $BIN (cache $CACHE, $(go version | cut -d' ' -f3-4), key $KEY)"
declare -A BUILT=()
for t in "${TARGETS[@]}"; do
    read -r name project pkg <<<"$t"
    if fresh "$name" "$project"; then
        continue
    fi
    build "$name" "$project" "$pkg"
    BUILT[$name]=1
done

{
    echo "KUBE_VERSION=$KUBE_VERSION"
    echo "ETCD_VERSION=$ETCD_VERSION"
    echo "ETCDCTL_VERSION=$ETCDCTL_VERSION"
    echo "CRI_TOOLS_VERSION=$CRI_TOOLS_VERSION"
    echo "HELM_VERSION=$HELM_VERSION"
    echo "COREDNS_VERSION=$COREDNS_VERSION"
    echo "BIN=$BIN"
} >"$OUT/versions.env"

# seconds: the binary's own build, with the module download of its project for the first of each project.
printf '\n%-24s %-40s %9s %8s  %s\n' binary "version (as the binary reports it)" size seconds "this run"
for t in "${TARGETS[@]}"; do
    read -r name _ <<<"$t"
    size=$(stat -c %s "$BIN/$name")
    seconds=$(sed -n 2p "$OUT/stamps/$name")
    state=cached
    [ -z "${BUILT[$name]:-}" ] || state=built
    printf '%-24s %-40s %8.1fM %8s  %s\n' "$name" "$(reported_version "$name")" \
        "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')" "$seconds" "$state"
done
# The images kubeadm will ask for: the lab must build and import exactly these names.
"$BIN/kubeadm" config images list --kubernetes-version "$KUBE_VERSION" >"$OUT/images.txt"
printf '\nimages kubeadm %s expects (also in %s):\n' "$KUBE_VERSION" "$OUT/images.txt"
sed 's/^/  /' "$OUT/images.txt"
grep -q "/etcd:${ETCD_VERSION#v}-0\$" "$OUT/images.txt" ||
    log "WARNING: kubeadm expects another etcd than the $ETCD_VERSION built here"
grep -q "/coredns/coredns:$COREDNS_VERSION\$" "$OUT/images.txt" ||
    log "WARNING: kubeadm expects another CoreDNS than $COREDNS_VERSION"
log "done: ${#BUILT[@]} built, $(( ${#TARGETS[@]} - ${#BUILT[@]} )) cached; binaries in $BIN"
