package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/openkvs/openkvs/synth"
)

// mediamtxConfig runs MediaMTX as a recorder of RTSP publishers and nothing
// else: the other servers off (their default ports may be taken), RTSP over
// TCP only (no UDP port pairs), fMP4 recording in 2 s segments, as the
// issue that set the comparison up defined it.
const mediamtxConfig = `logLevel: warn
logDestinations: [stdout]
api: false
metrics: false
pprof: false
playback: false
rtmp: false
hls: false
webrtc: false
srt: false
rtsp: true
rtspTransports: [tcp]
rtspEncryption: "no"
rtspAddress: %s
pathDefaults:
  record: true
  recordPath: %s/%%path/%%Y-%%m-%%d_%%H-%%M-%%S-%%f
  recordFormat: fmp4
  recordSegmentDuration: 2s
  recordDeleteAfter: 0s
paths:
  all_others:
`

// peerStep is what one run of N publishers to a peer measured.
type peerStep struct {
	n                int
	version          string
	steady           cpuWindow
	rssIdle, rssPeak int64
	failed           int
	firstErr         error
	sentBytes        int64 // of H.264 NAL units, all publishers
	files            int   // recorded segments
	recordedBytes    int64
	lateness         time.Duration
}

// mediamtxStep starts the MediaMTX binary at path with recording on and
// publishes n real-time streams of v over RTSP to it, frags fragments
// each, started evenly over one fragment as the PutMedia producers are.
func (e *env) mediamtxStep(ctx context.Context, path string, v *video, n, frags int) (*peerStep, error) {
	dir, err := os.MkdirTemp(e.dir, "mediamtx-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", path, err)
	}
	res := &peerStep{n: n, version: strings.TrimSpace(string(out))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close() // MediaMTX listens there; nothing else takes a port just freed this fast
	rec := filepath.Join(dir, "recordings")
	cfg := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, mediamtxConfig, addr, rec), 0o644); err != nil {
		return nil, err
	}
	p, err := startPeer(ctx, path, addr, cfg)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop()
		}
	}()
	pid := p.Pid()
	res.rssIdle, _ = rssBytes(pid)

	au, err := accessUnits(v)
	if err != nil {
		return nil, err
	}
	sps, pps, err := parameterSets(synth.AVCCodecPrivate)
	if err != nil {
		return nil, err
	}
	t0 := time.Now().Add(500 * time.Millisecond) // time to connect before the first frames are due
	stepCtx, cancel := context.WithDeadline(ctx, t0.Add(v.FragmentDuration*time.Duration(frags+1)+10*time.Second))
	defer cancel()
	peakRSS := sampleRSS(pid, 250*time.Millisecond)
	window := measureWindow(stepCtx, t0.Add(v.FragmentDuration), t0.Add(v.FragmentDuration*time.Duration(frags)),
		func() float64 { return cpuOf(pid) })
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := t0.Add(v.FragmentDuration * time.Duration(i) / time.Duration(n))
			pub := &rtspPublisher{v: v, au: au, sps: sps, pps: pps, start: start, frags: frags}
			err := pub.run(stepCtx, fmt.Sprintf("rtsp://%s/s%d", addr, i))
			mu.Lock()
			defer mu.Unlock()
			res.sentBytes += pub.sent
			res.lateness = max(res.lateness, pub.lateness)
			if err != nil {
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
			}
		})
	}
	wg.Wait()
	res.steady, _ = window()
	res.rssPeak = peakRSS()
	stopped = true
	if err := p.stop(); err != nil {
		return nil, fmt.Errorf("stop MediaMTX: %w", err)
	}
	// Stopped, MediaMTX has written out the segments it held.
	err = filepath.WalkDir(rec, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		res.files++
		res.recordedBytes += info.Size()
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("count the recordings: %w", err)
	}
	return res, ctx.Err()
}

// startPeer runs the peer binary with its configuration file and waits
// until it accepts connections at addr. It runs in the configuration's
// directory: MediaMTX writes the TLS certificate it makes itself
// (auto.crt, auto.key) into its working directory.
func startPeer(ctx context.Context, path, addr, cfg string) (*process, error) {
	cmd := exec.Command(path, cfg)
	cmd.Dir = filepath.Dir(cfg)
	setParentDeath(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &process{cmd: cmd, logs: &logTail{}, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.logs.add(sc.Text())
		}
		p.done <- cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("%s exited before listening (%v):\n%s", path, err, p.logs)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s did not listen on %s within 30s:\n%s", path, addr, p.logs)
		}
	}
}

// accessUnits returns the H.264 NAL unit of each frame of v's fragments
// (each SimpleBlock holds one, length-prefixed): the very bytes the PutMedia
// producers send, less the Matroska framing.
func accessUnits(v *video) ([][]byte, error) {
	out := make([][]byte, len(v.frames))
	for k, f := range v.frames {
		// SimpleBlock: ID, 8-byte size, track number, timecode, flags.
		const head = 1 + 8 + 1 + 2 + 1
		if len(f) < head+4 {
			return nil, fmt.Errorf("frame %d: %d bytes, too short", k, len(f))
		}
		payload := f[head:]
		size := binary.BigEndian.Uint32(payload)
		if int(size) != len(payload)-4 {
			return nil, fmt.Errorf("frame %d: NAL unit of %d bytes in %d", k, size, len(payload)-4)
		}
		out[k] = payload[4:]
	}
	return out, nil
}

// parameterSets returns the first SPS and PPS of an avcC record
// (ISO/IEC 14496-15 §5.3.3.1, AVCDecoderConfigurationRecord).
func parameterSets(avcC []byte) (sps, pps []byte, err error) {
	bad := errors.New("malformed avcC record")
	if len(avcC) < 8 || avcC[5]&0x1F == 0 {
		return nil, nil, bad
	}
	n := int(binary.BigEndian.Uint16(avcC[6:]))
	if len(avcC) < 8+n+3 {
		return nil, nil, bad
	}
	sps, rest := avcC[8:8+n], avcC[8+n:]
	if rest[0] == 0 {
		return nil, nil, bad
	}
	m := int(binary.BigEndian.Uint16(rest[1:]))
	if len(rest) < 3+m {
		return nil, nil, bad
	}
	return sps, rest[3 : 3+m], nil
}

// rtspPublisher sends frags fragments of v to one RTSP path in real time,
// as a camera would: each access unit at the moment it is filmed.
type rtspPublisher struct {
	v        *video
	au       [][]byte // the NAL unit of each frame of a fragment
	sps, pps []byte
	start    time.Time
	frags    int

	sent     int64 // NAL unit bytes handed to the connection
	lateness time.Duration
}

// clockRate is the RTP clock of H.264 (RFC 6184 §8.2.1).
const clockRate = 90000

func (p *rtspPublisher) run(ctx context.Context, url string) error {
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: p.sps, PPS: p.pps}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	tcp := gortsplib.ProtocolTCP
	// A key frame is about 90 RTP packets; frames that a busy machine
	// sends late go out together: the default queue (256) would overflow.
	c := &gortsplib.Client{Protocol: &tcp, WriteQueueSize: 4096}
	if err := c.StartRecording(url, &description.Session{Medias: []*description.Media{media}}); err != nil {
		return fmt.Errorf("RTSP publish to %s: %w", url, err)
	}
	defer c.Close()
	enc, err := forma.CreateEncoder()
	if err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for f := range p.frags {
		for k, nalu := range p.au {
			at := p.v.FragmentDuration*time.Duration(f) + p.v.frameAt(k)
			due := p.start.Add(at)
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
			p.lateness = max(p.lateness, time.Since(due))
			pkts, err := enc.Encode([][]byte{nalu})
			if err != nil {
				return err
			}
			ts := uint32(int64(at) * clockRate / int64(time.Second))
			for _, pkt := range pkts {
				pkt.Timestamp = ts
				if err := c.WritePacketRTP(media, pkt); err != nil {
					return fmt.Errorf("RTSP publish to %s: %w", url, err)
				}
			}
			p.sent += int64(len(nalu))
		}
	}
	return nil
}
