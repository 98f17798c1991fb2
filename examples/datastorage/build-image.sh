#!/usr/bin/env bash
# Builds the example DataStorage image with the workspace's own tools; `make example-images`.
#
# Steps: release-build the service (and tag-gen, image-build unless target/bin has them), stage
# binary + Dockerfile in a clean context under target/, choose the base image, name the image
# with tag-gen, build it with image-build. Progress goes to stderr; the built reference is the
# last line of stdout, so `DS_IMAGE=$(make -s example-images | tail -n1)` works.
#
# Variables:
#   DS_IMAGE            the reference to build (default: `tag-gen infra datastorage --consumer $E2E_CONSUMER`)
#   E2E_CONSUMER        consumer for the tag and image-build's cleanup label (default: adhoc)
#   EXAMPLE_BASE_IMAGE  base image (default: $E2E_BASE_IMAGE, else the testbed env file's
#                       E2E_BASE_IMAGE, else localhost/e2e-base:bookworm if the engine has it,
#                       else debian:bookworm-slim)
#   CARGO, CARGO_TARGET_DIR, BIN_DIR  as in the Makefile
#   EXAMPLE_CONTEXT_DIR where to stage the context (default: target/example-images/datastorage)
# With --stage-only it stops after staging the build context and prints its directory (the E2E
# pipeline builds all of a service's images in one image-build call).
set -euo pipefail
stage_only=false
case "${1:-}" in
    --stage-only) stage_only=true ;;
    "") ;;
    *) echo "example-images: unknown argument $1 (only --stage-only)" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"
target="${CARGO_TARGET_DIR:-target}"
bin_dir="${BIN_DIR:-target/bin}"
consumer="${E2E_CONSUMER:-adhoc}"
say() { echo "example-images: $*" >&2; }

# 1. The binaries. tag-gen and image-build come from target/bin when `make tools` put them there.
packages=(-p datastorage-example)
tool() {
    if [[ -x "$bin_dir/$1" ]]; then echo "$bin_dir/$1"; else echo "$target/release/$1"; fi
}
if ! $stage_only; then
    for t in tag-gen image-build; do
        [[ -x "$bin_dir/$t" ]] || packages+=(-p "$t")
    done
fi
say "cargo build --release ${packages[*]}"
"$cargo" build --release "${packages[@]}" >&2

# 2. A build context holding only what the image needs (the workspace is gigabytes of target/).
context="${EXAMPLE_CONTEXT_DIR:-$target/example-images/datastorage}"
rm -rf "$context"
mkdir -p "$context"
cp "$target/release/datastorage-example" examples/datastorage/Dockerfile "$context/"
if $stage_only; then
    echo "$context"
    exit 0
fi

# 3. The base image.
engine_has() {
    if command -v docker >/dev/null 2>&1; then
        docker image inspect "$1" >/dev/null 2>&1
    elif command -v podman >/dev/null 2>&1; then
        podman image exists "$1"
    else
        return 1
    fi
}
base="${EXAMPLE_BASE_IMAGE:-${E2E_BASE_IMAGE:-}}"
if [[ -z "$base" && -r "$target/testbed/env" ]]; then
    base="$(sed -n 's/^E2E_BASE_IMAGE=//p' "$target/testbed/env" | tail -n1)"
fi
if [[ -z "$base" ]] && engine_has localhost/e2e-base:bookworm; then
    base=localhost/e2e-base:bookworm
fi
base="${base:-debian:bookworm-slim}"

# 4. The reference, then the build. image-build prints the stored name (Podman may prefix
#    localhost/), which is what we report.
ref="${DS_IMAGE:-$("$(tool tag-gen)" infra datastorage --consumer "$consumer")}"
say "building $ref from $base"
built="$("$(tool image-build)" -t "$ref" -c "$context" --build-arg "BASE_IMAGE=$base" \
    --consumer "$consumer" | tail -n1)"
[[ -n "$built" ]] || { say "image-build printed no reference"; exit 1; }
echo "$built"
