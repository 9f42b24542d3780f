package e2e

// The fault suite: the real server as a child process, crashed, starved of
// disk and memory, and raced, with the promises of README "Guarantees"
// checked after each fault.

import (
	"bytes"
	enc "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"

	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// faultLedger is what producers sent and were told, to check a server's
// archive against after faults.
type faultLedger struct {
	sent      map[uint64][]byte // bytes of every fragment sent whole, by cluster timecode
	persisted map[string][]byte // bytes of every fragment acknowledged PERSISTED, by number
	newest    string            // the highest fragment number acknowledged so far
}

func newLedger() *faultLedger {
	return &faultLedger{sent: map[uint64][]byte{}, persisted: map[string][]byte{}}
}

// record notes the fragments of a producer session that has ended.
func (l *faultLedger) record(t *testing.T, p *gmProducer, frags []gmFrag) {
	t.Helper()
	for _, f := range frags {
		l.sent[f.timecode] = f.data
	}
	for tc, number := range p.numbers("PERSISTED") {
		data, ok := l.sent[tc]
		if !ok {
			t.Fatalf("PERSISTED for timecode %d, which was never sent whole", tc)
		}
		l.persisted[number] = data
	}
	for _, number := range p.numbers("BUFFERING") {
		l.newest = max(l.newest, number)
	}
}

// ingest sends frags whole in one session on stream, waits until each is
// PERSISTED and records them.
func (l *faultLedger) ingest(t *testing.T, srv *serverProc, stream string, frags []gmFrag) {
	t.Helper()
	l.record(t, gmSession(t, srv, stream, "PERSISTED", frags), frags)
}

// check asserts the durability promise against a running server: every
// fragment acknowledged PERSISTED is listed exactly once and reads back
// byte for byte, and every listed fragment is one that was sent whole.
func (l *faultLedger) check(t *testing.T, srv *serverProc, stream string) {
	t.Helper()
	listed := gmListAll(t, srv, stream)
	var numbers []string
	for n := range listed {
		numbers = append(numbers, n)
	}
	for n := range l.persisted {
		if _, ok := listed[n]; !ok {
			t.Errorf("fragment %s was acknowledged PERSISTED but is not listed", n)
		}
	}
	if len(numbers) == 0 {
		return
	}
	out, err := gmArchived(srv).GetMediaForFragmentList(ctx(t), &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
		StreamName: aws.String(stream), Fragments: numbers})
	if err != nil {
		t.Fatalf("GetMediaForFragmentList: %v", err)
	}
	defer out.Payload.Close()
	chunks, err := mkv.ReadChunks(out.Payload)
	if err != nil {
		t.Fatalf("GetMediaForFragmentList payload: %v", err)
	}
	if len(chunks) != len(numbers) {
		t.Fatalf("%d chunks for %d listed fragments", len(chunks), len(numbers))
	}
	for i, c := range chunks {
		n := numbers[i]
		if err := c.Err(); err != nil {
			t.Errorf("listed fragment %s cannot be read: %v", n, err)
			continue
		}
		got := append(append([]byte{}, c.Cluster...), c.Trailing...)
		tc := uint64(aws.ToTime(listed[n].ProducerTimestamp).UnixMilli())
		if want, ok := l.persisted[n]; ok && !bytes.Equal(got, want) {
			t.Errorf("fragment %s reads back %d bytes that differ from the %d acknowledged", n, len(got), len(want))
		}
		if !bytes.Equal(got, l.sent[tc]) {
			t.Errorf("listed fragment %s (%d bytes at %d) is not a fragment that was sent whole", n, len(got), tc)
		}
	}
}

// checkClean asserts that the server's log since it started has no error
// and that no temporary blob is visible in its data directory.
func checkClean(t *testing.T, srv *serverProc) {
	t.Helper()
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("server logged an error: %s", line)
		}
	}
	err := filepath.WalkDir(filepath.Join(srv.Data, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary blob left behind: %s", path)
		}
		return err
	})
	if err != nil {
		t.Errorf("walk the blobs: %v", err)
	}
}

// crashStart starts the server on its data directory and kills it after
// delay, before or while it opens its storage.
func crashStart(t *testing.T, srv *serverProc, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data", srv.Data, "--log-format", "json")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay) // the moment of the crash, not a wait for a condition
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill openkvs %v after its start: %v", delay, err)
	}
	// Killed, not ended by itself (a start-up that failed).
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("openkvs killed %v after its start: %v, want killed by SIGKILL", delay, err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("openkvs killed %v after its start: %v, want killed by SIGKILL", delay, err)
	}
}

// TestFaultCrashLoop kills the server with SIGKILL at a different moment of
// ingest in each round (inside a fragment, with a fragment on its way to
// storage, after PERSISTED, during a retention sweep and a stream deletion,
// during start-up), restarts it on the same data, and checks after every
// restart that every PERSISTED fragment is listed once and byte-exact,
// that nothing partial is visible, that start-up was clean, and that
// fragment numbers keep growing.
func TestFaultCrashLoop(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	v := synth.Video{Bitrate: 400_000} // 100 KB fragments of 2 s
	ledger := newLedger()
	phases := []string{"mid-fragment", "fragment being stored", "after PERSISTED", "retention sweep", "stream deletion", "start-up"}
	next := 0 // index of the next fragment of the stream
	for round := range 2 * len(phases) {
		phase := phases[round%len(phases)]
		t.Logf("round %d: crash %s", round, phase)
		before := ledger.newest
		frags := gmFrags(v, next, 6)
		next += len(frags)
		p := gmStartProducer(t, srv, "cam")
		p.write(synth.Header(1))
		for _, f := range frags[:4] {
			p.write(f.data)
		}
		switch phase {
		case "mid-fragment":
			p.write(frags[4].pieces[:len(frags[4].pieces)/2]...)
			p.waitAcks("BUFFERING", 5)
		case "fragment being stored":
			p.write(frags[4].data)
			p.write(frags[5].pieces[0])
			p.waitAcks("RECEIVED", 5)
		default:
			p.write(frags[4].data)
			p.write(frags[5].pieces[0])
			p.waitAcks("PERSISTED", 5)
		}
		switch phase {
		case "retention sweep":
			faultStream(t, srv, "swept", v)
			_, err := srv.control().UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("swept"),
				CurrentVersion: describe(t, srv.control(), "swept").Version, Operation: "DECREASE_DATA_RETENTION", DataRetentionChangeInHours: aws.Int32(24)})
			if err != nil {
				t.Fatal(err)
			}
		case "stream deletion":
			faultStream(t, srv, "deleted", v)
			if _, err := srv.control().DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: describe(t, srv.control(), "deleted").StreamARN}); err != nil {
				t.Fatal(err)
			}
		}
		srv.Kill()
		p.waitEnd()
		ledger.record(t, p, frags[:5])
		if phase == "retention sweep" {
			// Rows go before blobs: whatever rows the crash left have
			// their blobs (stored fails the test otherwise).
			stored(t, srv, "swept")
		}
		if phase == "start-up" {
			for _, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
				crashStart(t, srv, delay)
			}
		}
		srv.start()
		ledger.check(t, srv, "cam")
		checkClean(t, srv)
		if ledger.newest <= before {
			t.Fatalf("round %d: no fragment numbered after %s", round, before)
		}
		if t.Failed() {
			t.Fatalf("round %d (%s) broke the archive", round, phase)
		}
		// The phase's own stream, if it has one, goes before the next round.
		for _, other := range []string{"swept", "deleted"} {
			_, err := srv.control().DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: faultARN(t, srv, other)})
			var missing *types.ResourceNotFoundException
			if err != nil && !errors.As(err, &missing) {
				t.Fatalf("round %d: delete %s: %v", round, other, err)
			}
		}
	}
	// Four of the six phases crash only after five PERSISTED.
	if len(ledger.persisted) < 2*4*5 {
		t.Errorf("%d fragments PERSISTED in %d rounds: the rounds did not ingest", len(ledger.persisted), 2*len(phases))
	}
}

// faultStream creates a stream and stores three fragments in it.
func faultStream(t *testing.T, srv *serverProc, name string, v synth.Video) {
	t.Helper()
	createStream(t, srv, name, 24)
	gmIngest(t, srv, name, "PERSISTED", gmFrags(v, 0, 3))
}

// faultARN is the ARN of a stream, or a placeholder if it does not exist.
func faultARN(t *testing.T, srv *serverProc, name string) *string {
	out, err := srv.control().DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
	if err != nil {
		return aws.String("arn:aws:kinesisvideo:us-east-1:000000000000:stream/" + name + "/0")
	}
	return out.StreamInfo.StreamARN
}

// streamDirs returns the stream directories of the blob store ("s1"...).
func streamDirs(t *testing.T, srv *serverProc) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(srv.Data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			files, err := filepath.Glob(filepath.Join(srv.Data, "blobs", e.Name(), "*", "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) > 0 {
				dirs = append(dirs, e.Name())
			}
		}
	}
	return dirs
}

// faultBulk stores n one-frame fragments in stream in one session, so that
// walking or deleting the stream's blobs takes a while.
func faultBulk(t *testing.T, srv *serverProc, stream string, n int) {
	t.Helper()
	p := gmStartProducer(t, srv, stream)
	p.write(synth.Header(1))
	for i := range n {
		p.write(synth.Cluster(uint64(gmBase+i*100), synth.Frames(1, 1, 33)...))
	}
	p.close()
	p.waitAcks("PERSISTED", n)
}

// TestFaultDeleteRecreate deletes a stream with a large archive while its
// producer streams into it, re-creates it at once under the same name and
// ingests again, and creates another stream right after a restart, while
// the start-up orphan pass walks a large archive. Each new stream must keep
// exactly its own fragments, headers included, across a restart: a deleted
// stream's ID, blob directory and header keys were once reused, so its
// clean-up deleted the new stream's header and its session's last rows
// landed in the new stream, and the orphan pass deleted the blobs of a
// stream created after it listed the streams. The deleted stream's blobs
// must go.
func TestFaultDeleteRecreate(t *testing.T) {
	srv := startServer(t)
	v := synth.Video{Bitrate: 400_000}
	createStream(t, srv, "bulk", 24)
	faultBulk(t, srv, "bulk", 1500)
	createStream(t, srv, "cam", 24)
	faultBulk(t, srv, "cam", 1500)

	// Fragments of 8 MB: the last ones are still being stored when the
	// stream is deleted.
	big := synth.Video{Bitrate: 32_000_000}
	frags := gmFrags(big, 0, 4)
	p := gmStartProducer(t, srv, "cam", "x-amzn-fragment-acknowledgment-required", "1")
	p.write(synth.Header(1))
	for _, f := range frags[:3] {
		p.write(f.data)
	}
	p.write(frags[3].pieces[0])
	p.waitAcks("RECEIVED", 3)
	if _, err := srv.control().DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: faultARN(t, srv, "cam")}); err != nil {
		t.Fatal(err)
	}
	// Re-created at once, while the deleted stream's 1500 blobs are being
	// deleted and its session may still be storing.
	createStream(t, srv, "cam", 24)
	recreated := newLedger()
	recreated.ingest(t, srv, "cam", gmFrags(v, 10, 3))
	p.waitEnd()

	srv.Restart()
	// Created while the start-up orphan pass walks 1500 blobs of "bulk".
	createStream(t, srv, "fresh", 24)
	fresh := newLedger()
	fresh.ingest(t, srv, "fresh", gmFrags(v, 20, 3))

	srv.Restart() // the hub is empty: every read comes from the archive
	for stream, ledger := range map[string]*faultLedger{"cam": recreated, "fresh": fresh} {
		ledger.check(t, srv, stream)
		if n := len(gmListAll(t, srv, stream)); n != 3 {
			t.Errorf("stream %s lists %d fragments, want its 3", stream, n)
		}
	}
	// The deleted stream's blobs are deleted in the background (after a
	// crash, at the next start).
	wait.For(t, "only the blob directories of bulk, cam and fresh", func() bool { return len(streamDirs(t, srv)) == 3 })
	checkClean(t, srv)
}

// mountTmpfs mounts a tmpfs of the given size on a new directory, for the
// duration of the test. It needs root (CI runs as root); elsewhere the test
// is skipped unless CI=true.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	mountTmpfsAt(t, dir, size)
	return dir
}

// mountTmpfsAt is mountTmpfs on dir, which it creates.
func mountTmpfsAt(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mounting a tmpfs needs root (mount: %v: %s)", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; run the test as root")
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file that takes up the free space of dir's file system but
// keep bytes.
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	if err := os.WriteFile(path, make([]byte, max(free-keep, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFaultDiskFull fills the file system under the server: the whole data
// directory (catalog and blobs), or the blob directory alone (a separate
// volume, so the catalog keeps working while every fragment's blob fails).
// Ingest answers ERROR 5001 (a storage error the producer retries), also to
// a session that starts on the full disk; memory stays bounded however
// much the producers push; nothing half-written is visible; and once space
// returns, ingest goes on.
func TestFaultDiskFull(t *testing.T) {
	for _, mounted := range []string{"data", "blobs"} {
		t.Run(mounted, func(t *testing.T) {
			data := t.TempDir()
			mnt := filepath.Join(data, mounted)
			if mounted == "data" {
				data = filepath.Join(mountTmpfs(t, "48m"), "data")
				mnt = data
			} else {
				mountTmpfsAt(t, mnt, "48m")
			}
			srv := startServerAt(t, data, "--live-total-bytes", "67108864",
				"--putmedia-calls-per-second", "1000", "--putmedia-bytes-per-second", "1e9")
			faultDiskFull(t, srv, mnt)
		})
	}
}

func faultDiskFull(t *testing.T, srv *serverProc, mnt string) {
	createStream(t, srv, "cam", 24)
	v := synth.Video{Bitrate: 16_000_000} // 4 MB fragments
	ledger := newLedger()
	ledger.ingest(t, srv, "cam", gmFrags(v, 0, 3)) // with room to spare

	filler := fill(t, mnt, 2<<20)
	next := 3
	var errorIDs []int
	var peak int64
	for range 60 {
		frags := gmFrags(v, next, 3)
		next += len(frags)
		p := gmStartProducer(t, srv, "cam")
		p.write(synth.Header(1))
		for _, f := range frags {
			p.pw.Write(f.data) // the server may end the session at any point
		}
		p.pw.Close()
		p.waitEnd()
		ledger.record(t, p, frags)
		p.mu.Lock()
		for _, a := range p.acks {
			if a.EventType == "ERROR" {
				errorIDs = append(errorIDs, a.ErrorID)
			}
		}
		p.mu.Unlock()
		rss, err := vmRSS(srv.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, rss)
	}
	if len(errorIDs) < 55 {
		t.Fatalf("%d ERROR ACKs in 60 sessions on a full disk", len(errorIDs))
	}
	for _, id := range errorIDs {
		if id != 5001 {
			t.Fatalf("ERROR %d on a full disk, want 5001 (ARCHIVAL_ERROR) only: %v", id, errorIDs)
		}
	}
	// 720 MB pushed at a server with 64 MiB of live memory.
	if peak > 256<<20 {
		t.Errorf("server RSS reached %d MiB while producers pushed 720 MB at a full disk", peak>>20)
	}
	ledger.check(t, srv, "cam")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ledger.ingest(t, srv, "cam", gmFrags(v, next, 3))
	srv.Restart()
	ledger.check(t, srv, "cam")
	t.Logf("peak RSS %d MiB; %d fragments persisted", peak>>20, len(ledger.persisted))
}

// TestFaultLargeFrames sends 20 sessions a 45 MB frame each at a server
// with 256 MiB of live memory: parse buffers and fragments in progress
// count against it, so the sessions that find no room end with ERROR 5000
// instead of taking the memory, and the server's resident memory stays
// within the limit the runtime is given. A 40 MB stream header is refused
// (4006).
func TestFaultLargeFrames(t *testing.T) {
	const sessions, frame = 20, 45 << 20
	srv := startServer(t, "--live-total-bytes", "268435456", "--putmedia-bytes-per-second", "1e9")
	var limit struct {
		MemoryLimit int64 `json:"memory_limit"`
	}
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"listening"`) {
			if err := json.Unmarshal([]byte(line), &limit); err != nil {
				t.Fatalf("listening log line %s: %v", line, err)
			}
		}
	}
	if want := int64(256<<20 + 128<<20 + 256<<20); limit.MemoryLimit != want {
		t.Fatalf("memory_limit %d, want 1.5 x --live-total-bytes + 256 MiB = %d", limit.MemoryLimit, want)
	}
	body := append(synth.Header(1), synth.Cluster(0)...)
	body = enc.BigEndian.AppendUint32(append(body, 0xA3, 0x01, 0, 0, 0), frame) // SimpleBlock, 8-byte size
	body = append(body, 0x81, 0, 0, 0x80)                                       // track 1, timecode 0, key frame
	payload := make([]byte, frame-4)
	stop := make(chan struct{})
	peaks := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			if rss, err := vmRSS(srv.cmd.Process.Pid); err == nil {
				peak = max(peak, rss)
			}
			select {
			case <-stop:
				peaks <- peak
				return
			case <-time.After(5 * time.Millisecond): // sampling, not waiting
			}
		}
	}()
	var producers []*gmProducer
	for i := range sessions {
		name := fmt.Sprintf("big%d", i)
		createStream(t, srv, name, 24)
		p := gmStartProducer(t, srv, name)
		producers = append(producers, p)
		go func() {
			// The server may end the session at any point (ERROR 5000):
			// then the writes fail, and the outcome is in the ACKs.
			if _, err := p.pw.Write(body); err == nil {
				p.pw.Write(payload)
			}
			p.pw.Close()
		}()
	}
	count := map[string]int{}
	for _, p := range producers {
		p.waitEnd()
		if len(p.acks) == 0 {
			t.Fatalf("session ended (%v) without an ACK", p.endErr)
		}
		last := p.acks[len(p.acks)-1]
		count[fmt.Sprint(last.EventType, last.ErrorID)]++
	}
	close(stop)
	peak := <-peaks
	t.Logf("outcomes %v, peak RSS %d MiB", count, peak>>20)
	if count["PERSISTED0"] == 0 || count["ERROR5000"] == 0 || count["PERSISTED0"]+count["ERROR5000"] != sessions {
		t.Errorf("outcomes %v: want some frames stored and the rest refused with ERROR 5000", count)
	}
	// The runtime's limit is soft: allow it the size of one frame.
	if peak > limit.MemoryLimit+frame {
		t.Errorf("server RSS reached %d MiB, over its %d MiB memory limit", peak>>20, limit.MemoryLimit>>20)
	}

	createStream(t, srv, "header", 24)
	p := gmStartProducer(t, srv, "header")
	// The server ends the session once the header is too large, so the
	// write may fail: the outcome is in the ACKs.
	p.pw.Write(append(synth.Header(1), synth.Tags("k", string(make([]byte, 40<<20)))...))
	p.pw.Close()
	p.waitEnd()
	if n := len(p.acks); n == 0 || p.acks[n-1].EventType != "ERROR" || p.acks[n-1].ErrorID != 4006 {
		t.Errorf("a 40 MB header: ACKs %+v, want the last an ERROR 4006", p.acks)
	}
}

// TestReadOnlyCatalog starts the server on a catalog it cannot write: one
// line at start-up, not an ERROR 5000 at the first write. As root, which
// may write any file, the server runs as nobody.
func TestReadOnlyCatalog(t *testing.T) {
	srv := startServer(t)
	srv.Stop()
	catalog := filepath.Join(srv.Data, "catalog.db")
	cmd := exec.CommandContext(ctx(t), binary, "serve", "--addr", "127.0.0.1:0", "--data", srv.Data)
	if asNobody(t, cmd, filepath.Dir(srv.Data), srv.Data) {
		// nobody owns the data directory, all but the catalog's write
		// permission.
		err := filepath.WalkDir(srv.Data, func(path string, _ fs.DirEntry, err error) error {
			if err == nil {
				err = os.Chown(path, nobody, nobody)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(catalog, 0o444); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	want := "openkvs: catalog " + catalog + " is not writable: check its permissions and owner\n"
	if err == nil || string(out) != want {
		t.Fatalf("openkvs serve on a read-only catalog: %v, output %q; want exit status 1 and %q", err, out, want)
	}
}

// nobody is the user and group id the tests that run as root run the
// server as where they need it to lack permissions.
const nobody = 65534

// asNobody makes cmd run as nobody when the test runs as root, who may
// write any file. dirs, the directories cmd needs to reach, are opened to
// everyone (mode 0755; the test's temporary directories are 0700). It
// reports whether cmd runs as nobody.
func asNobody(t *testing.T, cmd *exec.Cmd, dirs ...string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	for _, dir := range dirs {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return true
}
