// Package streaming serves HLS and DASH streaming sessions of archived
// fragments, as GetHLSStreamingSessionURL and GetDASHStreamingSessionURL do
// (kvs-protocol.md §7.5, §7.6; kvs-playback.md): session tokens, the
// fragments each playback mode lists, master and media playlists, MPD
// manifests, and init and media segments remuxed by package playback. It
// knows nothing about HTTP.
//
// Playlists and manifests are written here by hand because their text must
// match AWS's layout line for line (kvs-playback.md §1), which no playlist
// library reproduces.
//
// Choices where AWS's behaviour is unconfirmed:
//   - Session tokens are URL-safe base64 of the session's settings and an
//     HMAC-SHA256 (128 bits) under a key the server keeps, so any node with
//     the key serves a session; they are opaque to clients.
//   - Each stream keeps 10 active sessions; an 11th revokes the oldest, whose
//     URLs then answer 403. Active sessions are counted per process: after a
//     restart a valid, unexpired token is served and counted again.
//   - MEDIA-SEQUENCE is the session index of the first listed fragment and
//     EXT-X-DISCONTINUITY-SEQUENCE the number of discontinuities that slid out
//     of a live window. A session's indexes live in memory: a LIVE session
//     served after a restart numbers its fragments anew.
//   - The init segment's SequenceNumber counts the distinct stream headers
//     (codec setups) of the session, from 0; a change of codec setup starts a
//     new init segment behind a discontinuity, also with DiscontinuityMode
//     NEVER, which would otherwise decode as garbage.
//   - MPEG-TS sessions list getTSFragment.ts?FragmentNumber=N&SessionToken=T
//     with every track in each segment and no separate audio playlist.
//   - Segments place each fragment at its timestamp (of the session's
//     selector) since the Unix epoch: tfdt in 90 kHz or the audio sample
//     rate, and DASH timelines in milliseconds.
//   - LIVE fMP4 HLS sessions add low-latency HLS (lowlatency.go): parts of the
//     fragment being ingested, read from the live hub, a preload hint and
//     blocking reloads; the media sequence number a part announces is the
//     index its fragment gets once the catalog lists it.
//   - DASH: one Period per codec setup, SegmentTemplate with $Number$ (the
//     session index, which getMP4MediaFragment.mp4 accepts besides a fragment
//     number), a SegmentTimeline, static for ON_DEMAND and for a LIVE_REPLAY
//     that reached its end, dynamic otherwise; kvs:fn holds the fragment
//     number and kvs:ts the timestamp in milliseconds since the epoch, in the
//     namespace kvsNamespace.
package streaming
