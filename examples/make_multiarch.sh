#!/bin/sh
# Rebuild examples/multiarch, the README's two-platform example: an OCI image layout
# (tag "demo") whose index has a linux/amd64 and a linux/arm64 image sharing one
# layer.  Needs buildah; timestamps are pinned so the bytes are the same every time.
set -e
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs rm -a >/dev/null 2>&1; rm -rf "$work"' EXIT
b() { buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs "$@"; }
printf 'shared by every platform\n' > "$work/shared.txt"
base=$(b from scratch)
b copy "$base" "$work/shared.txt" /shared.txt
b commit -q --timestamp 1700000000 "$base" localhost/example:base >/dev/null
b manifest create localhost/example:demo >/dev/null
for arch in amd64 arm64; do
    printf 'built for linux/%s\n' "$arch" > "$work/$arch.txt"
    c=$(b from localhost/example:base)
    b copy "$c" "$work/$arch.txt" /platform.txt
    b config --os linux --arch "$arch" "$c"
    b commit -q --timestamp 1700000000 "$c" "localhost/example:$arch" >/dev/null
    b manifest add localhost/example:demo "containers-storage:localhost/example:$arch" >/dev/null
done
rm -rf multiarch
b manifest push -q --all --format oci localhost/example:demo oci:multiarch:demo
