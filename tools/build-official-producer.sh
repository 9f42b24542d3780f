#!/usr/bin/env bash
# Provenance: copied from the project's shared tooling (build-official-producer.sh), unchanged below
# this block. It needs:
#   - the three awslabs repositories amazon-kinesis-video-streams-pic, -producer-c and
#     -producer-sdk-cpp fetched as bare git mirrors, at
#     $MIRRORS/awslabs+amazon-kinesis-video-streams-<pic|producer-c|producer-sdk-cpp>/repo, holding
#     the tags v1.2.0, v1.6.2 and v3.6.0 (the producer sources come from these mirrors only);
#   - root, for apt-get: it installs the Debian packages libssl-dev libcurl4-openssl-dev
#     liblog4cplus-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
#     gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
#     gstreamer1.0-tools gstreamer1.0-libav cmake g++ pkg-config git.
# e2e/kvssink_test.go (TestKvssinkCrash) runs the producer built here when KVS_PRODUCER_DIR names
# the same directory.
#
# Builds the official KVS GStreamer producer (kvssink) offline, to test openkvs with the real producer.
# Usage: MIRRORS=<dir holding the fetched git dirs> KVS_PRODUCER_DIR=<dest> build-official-producer.sh
#   MIRRORS/awslabs+amazon-kinesis-video-streams-<name>/repo are bare git clones of the public
#   repositories awslabs/amazon-kinesis-video-streams-pic, -producer-c and -producer-sdk-cpp.
# Versions: PIC v1.2.0 (newest in the stored snapshot), producer-c v1.6.2 (cloned by the C++ SDK),
# producer-sdk-cpp v3.6.0. About 10 minutes on 2 cores after the Debian packages.
set -euo pipefail
: "${MIRRORS:?set MIRRORS}" "${KVS_PRODUCER_DIR:?set KVS_PRODUCER_DIR}"
D=$KVS_PRODUCER_DIR; P=$D/prefix
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev libcurl4-openssl-dev liblog4cplus-dev \
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly gstreamer1.0-tools gstreamer1.0-libav cmake g++ pkg-config git >/dev/null
mkdir -p "$D/src" "$P"
for r in pic:v1.2.0 producer-c:v1.6.2 producer-sdk-cpp:v3.6.0; do
  n=${r%%:*}; t=${r##*:}; mkdir -p "$D/src/$n"
  git --git-dir="$MIRRORS/awslabs+amazon-kinesis-video-streams-$n/repo" archive "$t" | tar -x -C "$D/src/$n"
done
# PIC installed first, so producer-c finds it with pkg-config instead of cloning v1.3.x (not in the snapshot).
(cd "$D/src/pic" && mkdir -p build && cd build && cmake .. -DBUILD_DEPENDENCIES=OFF -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$P" -DCMAKE_INSTALL_LIBDIR=lib >/dev/null && make -j2 >/dev/null && make install >/dev/null)
# The C++ SDK always clones producer-c at configure time: point it at the local mirror.
sed -i "s#GIT_REPOSITORY    https://github.com/awslabs/amazon-kinesis-video-streams-producer-c.git#GIT_REPOSITORY    $MIRRORS/awslabs+amazon-kinesis-video-streams-producer-c/repo#" \
  "$D/src/producer-sdk-cpp/CMake/Dependencies/libkvscproducer-CMakeLists.txt"
# -I/-L work around two CMake bugs when PIC comes from pkg-config; the plugin is a MODULE library.
cd "$D/src/producer-sdk-cpp" && mkdir -p build && cd build
PKG_CONFIG_PATH=$P/lib/pkgconfig cmake .. -DBUILD_DEPENDENCIES=OFF -DBUILD_GSTREAMER_PLUGIN=ON \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$P" -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_C_FLAGS="-I$P/include" -DCMAKE_CXX_FLAGS="-I$P/include" -DCMAKE_SHARED_LINKER_FLAGS="-L$P/lib" \
  -DCMAKE_EXE_LINKER_FLAGS="-L$P/lib" -DCMAKE_MODULE_LINKER_FLAGS="-L$P/lib" >/dev/null
make -j2 >/dev/null
cp -a dependency/libkvscproducer/kvscproducer-src/lib*.so* libKinesisVideoProducer.so "$P/lib/"
LD_LIBRARY_PATH=$P/lib GST_PLUGIN_PATH=$D/src/producer-sdk-cpp/build gst-inspect-1.0 kvssink >/dev/null && echo "kvssink built in $D"
