// Package images answers GetImages (kvs-protocol.md §7.4, kvs-playback.md
// §6): it picks the video frame shown at each sampling time from the stored
// fragments, decodes it with ffmpeg run as a subprocess and returns JPEG or
// PNG stills. It knows nothing about HTTP.
//
// Choices:
//   - Each sample shows the frame at or before its time, decoded from the
//     nearest preceding key frame of its fragment, so long GOPs give an image
//     for every sample (AWS answers NO_MEDIA for many of them,
//     kvs-playback.md §6). A sample after the end of its fragment (a gap
//     between producer sessions) or before the first frame is NO_MEDIA; a
//     frame ffmpeg cannot decode is MEDIA_ERROR.
//   - A fragment's video continues that of the fragment just before it when
//     that one ends within a second of its start with the same codec data:
//     a sample before the fragment's first picture (clusters that open with
//     audio) shows the last picture before, and frames with no key frame
//     before them in their fragment (ffmpeg writing to a pipe cuts clusters
//     at 32 KiB) are decoded from the key frame in the fragment before.
//   - Decoding batches: one ffmpeg process decodes every frame a run of
//     consecutive fragments needs, read over a pipe as one MPEG-TS stream of
//     self-contained pieces (playback.Fragment.TS), since each process costs
//     about 0.5 s to start (kvs-playback.md §7). A bounded pool caps the
//     processes of all requests together; a request's deadline or
//     cancellation kills its processes.
//   - Decoded images are cached (least recently used, bounded bytes) by
//     fragment, frame, format, quality and size, so a timeline of thumbnails
//     never decodes the same frame twice.
//   - MaxResults is the page size, capped at 25 as AWS documents; NextToken
//     carries the time of the next sample, so the client repeats the same
//     parameters with it, as the SDK paginators do.
//   - SamplingInterval, optional in the model, defaults to 3000 ms (the
//     minimum of earlier model versions).
//   - Width only or height only keeps the aspect ratio; both stretch.
//     JPEGQuality 1..100 maps linearly onto ffmpeg's -q:v 31..2.
package images
