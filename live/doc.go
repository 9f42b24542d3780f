// Package live is the in-memory hub between PutMedia ingest and GetMedia readers at the live
// edge (DESIGN.md principle 4). Ingest publishes each stream's fragments while they grow
// (Hub.Begin, Fragment.Write, Fragment.Complete); readers follow them byte by byte
// (Stream.After, Fragment.Next) and receive every frame as soon as ingest has it, with no disk
// round-trip. The hub also keeps a bounded window of each stream's recent fragments; for
// streams that keep no archive (retention 0) the window is the only copy, and GetMedia reads
// from it (DESIGN.md "Retention 0").
//
// # Zero-copy views
//
// Write copies the producer's bytes once, into space no reader has been shown. A fragment's
// bytes live in chunks that are never reallocated: the fragment grows by adding a chunk, and
// bytes below the published length are never written again. Next therefore hands out
// sub-slices of the chunks themselves, each within one chunk and with its capacity clipped so
// that a reader's append cannot reach the producer's space, and a view stays valid for as
// long as the reader keeps it, after eviction too (the GC keeps the chunk). Copy-on-grow would
// also keep old views valid, but it copies every byte again at each growth and briefly holds
// two copies; chunks cost nothing but a view boundary. Each chunk holds half the bytes written
// so far, rounded up to a power of two, so a fragment's memory follows the bytes received and
// a 1 MB fragment takes eight chunks.
//
// # Reused chunks
//
// Most cameras have no live viewer: their fragments are written, stored by ingest and evicted
// without any reader ever seeing them. The chunks of such a fragment go back to a pool in the
// hub when it leaves the window, and the next fragments fill them instead of fresh memory,
// which the allocator would zero, the kernel fault in page by page and the collector chase
// (at 100 real-time cameras that halved the resident memory per stream). A fragment is
// reused only if nothing can read it any more: its producer completed it (Complete seals it
// against later Writes), no reader was ever handed it (Stream.After, Get and Current mark it
// shared, and a shared fragment's chunks are left to the GC, keeping every view valid), and
// no producer-side reader holds it (Fragment.Hold, which ingest's archive writer takes while
// it reads the fragment it produced).
//
// # Broadcast wakeups
//
// A reader that has caught up parks on a channel that the next Write, Complete or Abort (Begin
// or Drop, for readers waiting for a fragment) closes and forgets. One close wakes every parked
// reader: the producer never loops over readers, never waits for one, and allocates no channel
// while nobody waits. A reader that stops reading holds nothing the producer needs; when it
// comes back its next Next returns everything published meanwhile in one view.
//
// # Eviction and memory
//
// The hub counts the capacity of every fragment's chunks, plus its header (shared by a
// producer session's fragments but counted in each), plus what ingest takes with Reserve for
// memory it holds outside fragments (parse buffers, stream headers). A complete fragment
// becomes evictable once Persisted, or at once for a fragment begun with archived false.
// Evictable fragments go oldest first when their stream holds more than
// Options.MaxStreamBytes, when the hub holds more than Options.MaxTotalBytes (oldest across
// all streams), or when they were begun more than Options.MaxAge ago, or, for archived
// fragments, more than Options.ArchivedAge ago (a few seconds: readers find older ones in the
// archive, so a camera costs about one fragment of memory, not minutes of them). In-progress fragments
// and archived fragments not yet persisted are never evicted; instead MaxTotalBytes is a
// hard limit on growth: a Write that needs a new chunk, or a Reserve, that finds no room even
// after evicting what it may waits up to Options.MemoryWait for fragments being persisted to
// become evictable, then fails with ErrNoMemory, and ingest ends that producer's session.
// A fragment that will never be persisted is Withdrawn (an in-progress one Aborted): it
// leaves the window at once, so it never holds memory back.
//
// Apart from withdrawn and aborted fragments, a stream's window loses fragments only at its
// oldest end, so it is a run of the stream's latest fragments, and a reader can tell from
// Fragment.Prev whether it missed any, and from Stream.Evicted whether those were evicted
// (complete, so archived if the stream keeps an archive) or withdrawn or aborted (never in
// the archive: nothing to report). Age is checked lazily by every call into the hub, so the
// hub runs no goroutine; an idle hub releases expired fragments on its next call. A reader
// that holds an evicted fragment keeps reading it; it just cannot be found any more.
//
// # Locking
//
// One hub-wide mutex guards the windows (which fragments are held, their states, the byte
// counts); each fragment has its own mutex for what its readers see. Both are held only for
// constant-time bookkeeping, never while copying media or waiting. The per-frame path (Write,
// Next) takes only the fragment's mutex, plus the hub's when a fragment needs a new chunk.
package live
