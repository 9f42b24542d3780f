#!/bin/sh
# Regenerates the MKV fixtures in this folder from synthetic sources (see README.md).
# Needs: ffmpeg (with libx264, libx265 and the native aac encoder) and gst-launch-1.0 with the
# x264, videotestsrc and matroskamux elements (Debian: ffmpeg gstreamer1.0-tools
# gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly).
set -eu
cd "$(dirname "$0")"

# Shared H.264 settings: 640x360 at 30 fps, a key frame exactly every 60 frames (2 s GOPs,
# no scene-cut key frames, no B-frames, as live cameras send), one thread and bitexact
# flags so the output is reproducible. ffmpeg's Matroska muxer opens a new Cluster at each
# video key frame once the current one holds more than 4 KiB; the 5 s cluster time limit is
# never reached inside a 2 s GOP, so every Cluster is exactly one GOP.
X264="-c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -pix_fmt yuv420p -threads 1"
MUX="-fflags +bitexact -flags +bitexact -cluster_time_limit 5000 -f matroska"

# (a) H.264 only, 6 s: 3 known-size Clusters of 60 frames.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i testsrc=size=640x360:rate=30 -t 6 \
	$X264 $MUX h264.mkv

# (b) H.264 + mono AAC (48 kHz sine, 64 kbit/s), 6 s.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i testsrc=size=640x360:rate=30 \
	-f lavfi -i sine=frequency=440:sample_rate=48000 -t 6 \
	-map 0:v -map 1:a $X264 -c:a aac -b:a 64k -ac 1 $MUX h264_aac.mkv

# (d) B-frames and (e) H.265, for the remux tests of package playback: 320x180 at 30 fps, 6 s,
# closed 2 s GOPs with 2 B-frames (decode order differs from presentation order).
SMALL="-f lavfi -i testsrc=size=320x180:rate=30 -t 6"
ffmpeg -hide_banner -loglevel error -y $SMALL \
	-c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -flags +cgop \
	-pix_fmt yuv420p -threads 1 $MUX h264_bframes.mkv
ffmpeg -hide_banner -loglevel error -y $SMALL \
	-c:v libx265 -preset veryfast -pix_fmt yuv420p \
	-x265-params keyint=60:min-keyint=60:scenecut=0:open-gop=0:bframes=2:pools=1:frame-threads=1:log-level=error \
	$MUX h265.mkv

# (c) Live-producer style: unknown-size Segment and unknown-size Clusters. matroskamux with
# streamable=true writes both sizes as 01 FF FF FF FF FF FF FF; min-cluster-duration=0 opens
# a Cluster at every key frame only.
gst-launch-1.0 -q -e \
	videotestsrc num-buffers=180 ! video/x-raw,width=640,height=360,framerate=30/1 ! \
	x264enc key-int-max=60 bframes=0 threads=1 bitrate=500 option-string=scenecut=0:keyint_min=60 ! \
	h264parse ! matroskamux streamable=true min-cluster-duration=0 ! \
	filesink location=unknown_size.mkv
