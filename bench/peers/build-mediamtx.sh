#!/bin/sh
# Builds MediaMTX, the media server `openkvs bench --peer mediamtx=PATH`
# measures beside openkvs, from a checkout of its repository: nothing of it
# is a dependency of openkvs.
#
#   bench/peers/build-mediamtx.sh SRC OUT
#
# SRC is a fetched checkout of github.com/bluenviron/mediamtx at the tag to
# measure (the bench's figures were taken at v1.20.1); its Go modules come
# from the Go module proxy. OUT is the binary to write.
#
# MediaMTX's own `go generate` downloads hls.js and the Raspberry Pi camera
# helper from GitHub releases, which a machine that reaches only package
# registries cannot: this script writes the version file itself, takes
# hls.min.js from the npm package of the version MediaMTX pins, and leaves
# the camera helper out (it is embedded on ARM only).
set -eu
src=${1:?usage: build-mediamtx.sh SRC OUT}
out=${2:?usage: build-mediamtx.sh SRC OUT}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$src"

version=$(git describe --tags --exact-match 2>/dev/null || git describe --tags)
printf %s "$version" > internal/core/VERSION

js=internal/servers/hls/hls.min.js
if [ ! -s "$js" ]; then
	hls=$(cat internal/servers/hls/hlsjsdownloader/VERSION) # e.g. v1.7.0
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "hls.js@${hls#v}" > /dev/null && tar xzf hls.js-*.tgz)
	cp "$tmp/package/dist/hls.min.js" "$js"
fi

go build -o "$out" .
"$out" --version
