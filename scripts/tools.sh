#!/usr/bin/env bash
# Installs (when missing) and exports everything the tests and clippy need. Sourced by
# scripts/test and .ci/run from the repository root.
#
# Needs: the Rust toolchain; Debian's chromium for the HTML report test and
# PostgreSQL 15 for the replication tests (both installed here with apt-get
# when missing and we are root; otherwise set QDR_CHROMIUM / QDR_PG_BIN);
# docker-registry and skopeo (apt); Knot DNS (apt); etcd, protoc and the protobuf
# well-known .proto files (apt: protobuf-compiler only *recommends* libprotobuf-dev,
# and recommends are not installed here, so both are named); moto[server] (pip,
# into .tools/moto);
# Node.js/npm for Prism (installed into .tools/prism); Terraform or OpenTofu (checked,
# not installed: see its section); the official specs in
# ../shared/specs (QDR_QOVERY_SPEC and QDR_CLOUDFLARE_SPEC override them).
#
# Packages are installed with --no-install-recommends, so every package a build or a
# test needs is named explicitly; the last section checks each file and binary the
# build and the tests rely on and stops naming the package that provides it.

# apt_install WHAT PACKAGE...: installs Debian packages, or fails naming what is missing.
apt_install() {
    local what="$1"
    shift
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing $what ($*)"
        if [ -z "${QDR_APT_UPDATED:-}" ]; then
            apt-get update -qq
            QDR_APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    else
        echo "error: $what is missing; install the Debian packages $* (or set the QDR_* variable for it)" >&2
        exit 1
    fi
}

echo "== tools"
if [ -z "${QDR_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    apt_install "chromium (headless browser for the report test; or set QDR_CHROMIUM)" chromium
fi
export QDR_CHROMIUM="${QDR_CHROMIUM:-$(command -v chromium)}"
echo "chromium: $QDR_CHROMIUM"

# PostgreSQL 15 servers for the replication tests (started by the tests themselves on 127.0.0.1).
export QDR_PG_BIN="${QDR_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$QDR_PG_BIN/initdb" ]; then
    apt_install "PostgreSQL 15 (or set QDR_PG_BIN)" postgresql-15 postgresql-client-15
fi
if [ "$(id -u)" = "0" ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --create-home postgres
fi
echo "postgresql: $("$QDR_PG_BIN/postgres" --version)"

# Two docker-registry servers (started by the tests on 127.0.0.1) and skopeo (the benchmark's reference).
if ! command -v docker-registry >/dev/null 2>&1 || ! command -v skopeo >/dev/null 2>&1; then
    apt_install "docker-registry and skopeo" docker-registry skopeo
fi

# Knot DNS (started by the tests on 127.0.0.1) for the RFC 2136 switcher and the propagation verifier.
export QDR_KNOTD="${QDR_KNOTD:-/usr/sbin/knotd}"
if [ ! -x "$QDR_KNOTD" ]; then
    apt_install "Knot DNS (or set QDR_KNOTD)" knot knot-dnsutils
fi
echo "knot: $("$QDR_KNOTD" --version | head -1)"

# etcd (members started by the tests on 127.0.0.1) for the distributed lock and journal,
# and protoc, which etcd-client needs at build time (clippy --all-features too).
# protoc resolves `import "google/protobuf/…"` from libprotobuf-dev's include folder.
export QDR_ETCD="${QDR_ETCD:-/usr/bin/etcd}"
if [ ! -x "$QDR_ETCD" ] || ! command -v etcdctl >/dev/null 2>&1 || ! command -v protoc >/dev/null 2>&1 \
    || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
    apt_install "etcd, etcdctl, protoc and the protobuf includes (or set QDR_ETCD)" \
        etcd-server etcd-client protobuf-compiler libprotobuf-dev
fi
echo "etcd: $("$QDR_ETCD" --version | head -1); $(protoc --version)"

# moto server (Route53 emulation, started by the tests on 127.0.0.1), into a git-ignored venv.
export QDR_MOTO_SERVER="${QDR_MOTO_SERVER:-$PWD/.tools/moto/bin/moto_server}"
if [ ! -x "$QDR_MOTO_SERVER" ]; then
    echo "installing moto[server] into .tools/moto"
    python3 -m venv .tools/moto
    .tools/moto/bin/pip install -q 'moto[server]'
fi
echo "moto: $("$(dirname "$QDR_MOTO_SERVER")/python3" -c 'import moto; print(moto.__version__)')"

# Prism, the spec-validating mock for the Qovery contract tests, into a git-ignored folder.
export QDR_PRISM="${QDR_PRISM:-$PWD/.tools/prism/node_modules/.bin/prism}"
if [ ! -x "$QDR_PRISM" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        apt_install "Node.js and npm (to install Prism; or set QDR_PRISM)" nodejs npm
    fi
    echo "installing @stoplight/prism-cli into .tools/prism"
    mkdir -p .tools/prism
    (cd .tools/prism && npm install --no-audit --no-fund --loglevel=error @stoplight/prism-cli >/dev/null)
fi
echo "prism: $("$QDR_PRISM" --version)"
export QDR_QOVERY_SPEC="${QDR_QOVERY_SPEC:-$PWD/../shared/specs/qovery/openapi.yaml}"
[ -f "$QDR_QOVERY_SPEC" ] || { echo "error: the Qovery spec is not at $QDR_QOVERY_SPEC (set QDR_QOVERY_SPEC)" >&2; exit 1; }
export QDR_CLOUDFLARE_SPEC="${QDR_CLOUDFLARE_SPEC:-$PWD/../shared/specs/cloudflare/openapi.json}"
[ -f "$QDR_CLOUDFLARE_SPEC" ] || { echo "error: the Cloudflare schema is not at $QDR_CLOUDFLARE_SPEC (set QDR_CLOUDFLARE_SPEC)" >&2; exit 1; }

# Terraform (or OpenTofu) for the tests of plan values read from Terraform outputs. Neither
# is a Debian package nor reachable from this machine's registries: this machine image has
# terraform in /usr/local/bin. Elsewhere install Terraform (a release zip from HashiCorp)
# or OpenTofu (`tofu`), or set QDR_TERRAFORM to the CLI's path.
if [ -z "${QDR_TERRAFORM:-}" ]; then
    QDR_TERRAFORM="$(command -v terraform || command -v tofu || true)"
fi
if [ -z "$QDR_TERRAFORM" ] || ! "$QDR_TERRAFORM" version >/dev/null 2>&1; then
    echo "error: Terraform (or OpenTofu) is missing: install terraform or tofu on the PATH, or set QDR_TERRAFORM" >&2
    exit 1
fi
export QDR_TERRAFORM
echo "terraform: $("$QDR_TERRAFORM" version 2>/dev/null | head -1) ($QDR_TERRAFORM)"


# Every file and binary the build and the tests rely on, checked after installing, so a
# package that did not bring what it should stops here with its name, not in a build
# script or a test twenty minutes later.
require_file() { # PATH PACKAGE WHAT
    if [ ! -e "$1" ]; then
        echo "error: $3 is missing ($1); install the Debian package $2" >&2
        exit 1
    fi
}
require_cmd() { # COMMAND PACKAGE WHAT
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "error: $3 is missing (no \`$1\` on PATH); install the Debian package $2" >&2
        exit 1
    fi
}
require_file "$QDR_CHROMIUM" chromium "the headless browser for the HTML report test"
for tool in initdb pg_ctl postgres pg_basebackup pg_rewind pgbench psql pg_dump pg_restore; do
    require_file "$QDR_PG_BIN/$tool" "postgresql-15 / postgresql-client-15" "PostgreSQL's $tool"
done
require_cmd docker-registry docker-registry "the OCI registry server for the registry tests"
require_cmd skopeo skopeo "skopeo, the registry benchmark's reference"
require_file "$QDR_KNOTD" knot "the Knot DNS server for the RFC 2136 tests"
require_file "$QDR_ETCD" etcd-server "the etcd server for the lock and journal tests"
require_cmd etcdctl etcd-client "etcdctl, used by the etcd tests"
require_cmd protoc protobuf-compiler "protoc, which builds etcd-client"
require_file /usr/include/google/protobuf/descriptor.proto libprotobuf-dev \
    "the protobuf well-known types that etcd-client's .proto files import"
require_cmd curl curl "curl, used by the Prism contract test"
require_cmd kdig knot-dnsutils "kdig, which the end-to-end tests use to ask Knot directly"
require_cmd runuser util-linux "runuser, which starts PostgreSQL as the postgres user"
echo "ok: every tool the build and the tests need is here"
