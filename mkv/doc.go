// Package mkv reads and writes the Matroska (MKV) streams that Kinesis Video Streams
// carries: it splits a PutMedia body into a stream header and fragments (Splitter), walks
// EBML elements incrementally (Reader), writes the Tags KVS puts around every GetMedia chunk
// (AppendTags and friends) and parses GetMedia payloads back into chunks (ChunkReader).
//
// The package is hand-written on purpose. The ingest scanner is the hottest code of the
// server and has requirements no general EBML library meets together: it must hand back
// each Cluster's bytes unchanged (GetMedia replays them byte for byte), follow unknown-size
// Segments and Clusters (RFC 8794 §6.2) over arbitrarily short reads from a live HTTP
// body, report a fragment's end the moment its end-of-fragment tag arrives, bound every
// buffer however large a size an element claims, and not allocate per frame. Measured
// candidates such as github.com/at-wat/ebml-go decode into Go structs through reflection
// and cannot return the raw bytes of what they decode; this package decodes only the few
// values ingest checks (track numbers, timecodes, key-frame flags, tag names) and passes
// all bytes through untouched.
//
// Element IDs and layouts follow RFC 8794 (EBML) and RFC 9559 (Matroska); the KVS-specific
// rules cite the sections of docs/kvs-protocol.md ("spec 4.2" and so on).
package mkv
