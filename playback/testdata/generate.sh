#!/bin/sh
# Regenerates the remux fixtures in this folder from synthetic sources (see README.md).
# Needs ffmpeg with libx264 and libx265 (Debian 12: ffmpeg 7:5.1.x).
set -eu
cd "$(dirname "$0")"

# 320x180 at 30 fps, 6 s, closed 2 s GOPs with B-frames (the case where decode and
# presentation order differ); the Matroska muxer opens a Cluster at each key frame, so every
# Cluster is one GOP, as a KVS producer's fragments are.
MUX="-fflags +bitexact -flags +bitexact -cluster_time_limit 5000 -f matroska"
SRC="-f lavfi -i testsrc=size=320x180:rate=30 -t 6"

ffmpeg -hide_banner -loglevel error -y $SRC \
	-c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -flags +cgop \
	-pix_fmt yuv420p -threads 1 $MUX h264_bframes.mkv

ffmpeg -hide_banner -loglevel error -y $SRC \
	-c:v libx265 -preset veryfast -pix_fmt yuv420p \
	-x265-params keyint=60:min-keyint=60:scenecut=0:open-gop=0:bframes=2:pools=1:frame-threads=1:log-level=error \
	$MUX h265.mkv
