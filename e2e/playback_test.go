package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/synth"
)

// playStream creates a stream that keeps data and puts the media file in it
// with RELATIVE timecodes from start, so its producer timestamps are known;
// it returns the stream's fragments as ListFragments reports them.
func playStream(t *testing.T, srv *serverProc, stream, file string, start time.Time) []amtypes.Fragment {
	t.Helper()
	_, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	opts := client.PutOptions{Endpoint: srv.URL, Stream: stream, TimecodeType: "RELATIVE", StartTime: start}
	if _, err := client.Put(ctx(t), opts, bytes.NewReader(media(t, file))); err != nil {
		t.Fatalf("put %s: %v", file, err)
	}
	return playFragments(t, srv, stream)
}

// playFragments lists the stream's fragments in producer-time order.
func playFragments(t *testing.T, srv *serverProc, stream string) []amtypes.Fragment {
	t.Helper()
	frags, _ := gmPages(t, srv, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String(stream),
		FragmentSelector: &amtypes.FragmentSelector{FragmentSelectorType: amtypes.FragmentSelectorTypeProducerTimestamp,
			TimestampRange: &amtypes.TimestampRange{StartTimestamp: aws.Time(time.Unix(0, 0)), EndTimestamp: aws.Time(time.Now().Add(time.Hour))}}})
	return frags
}

// httpGet fetches a playback URL and returns the status and body.
func httpGet(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// getOK fetches a playback URL that must answer 200.
func getOK(t *testing.T, u string) []byte {
	t.Helper()
	status, _, body := httpGet(t, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, status, body)
	}
	return body
}

// sessionToken is the SessionToken of a session URL.
func sessionToken(t *testing.T, u string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Query().Get("SessionToken")
}

// hlsURL creates an HLS session with the SDK.
func hlsURL(t *testing.T, srv *serverProc, in *kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput) string {
	t.Helper()
	out, err := gmArchived(srv).GetHLSStreamingSessionURL(ctx(t), in)
	if err != nil {
		t.Fatalf("GetHLSStreamingSessionURL: %v", err)
	}
	return aws.ToString(out.HLSStreamingSessionURL)
}

// dashURL creates a DASH session with the SDK.
func dashURL(t *testing.T, srv *serverProc, in *kinesisvideoarchivedmedia.GetDASHStreamingSessionURLInput) string {
	t.Helper()
	out, err := gmArchived(srv).GetDASHStreamingSessionURL(ctx(t), in)
	if err != nil {
		t.Fatalf("GetDASHStreamingSessionURL: %v", err)
	}
	return aws.ToString(out.DASHStreamingSessionURL)
}

// decodedFrames decodes one kind of stream ("v" or "a") of a playback URL with
// ffmpeg, as a player reads it, and counts the frames.
func decodedFrames(t *testing.T, ffmpeg, u, kind string) int {
	t.Helper()
	out, err := exec.CommandContext(ctx(t), ffmpeg, "-v", "error", "-i", u, "-map", "0:"+kind, "-f", "framecrc", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", u, err, out)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "[") {
			t.Errorf("ffmpeg complained reading %s: %s", u, l)
			continue
		}
		n++
	}
	return n
}

// wantFrames checks that exactly video video frames and audio audio frames
// (none checked when 0) of src decode, naming what src is in the errors.
func wantFrames(t *testing.T, ffmpeg, src, what string, video, audio int) {
	t.Helper()
	if n := decodedFrames(t, ffmpeg, src, "v"); n != video {
		t.Errorf("%s: %d video frames decode, want %d", what, n, video)
	}
	if audio > 0 {
		if n := decodedFrames(t, ffmpeg, src, "a"); n != audio {
			t.Errorf("%s: %d audio frames decode, want %d", what, n, audio)
		}
	}
}

func odRange(field amtypes.HLSFragmentSelectorType, from, to time.Time) *amtypes.HLSFragmentSelector {
	return &amtypes.HLSFragmentSelector{FragmentSelectorType: field,
		TimestampRange: &amtypes.HLSTimestampRange{StartTimestamp: aws.Time(from), EndTimestamp: aws.Time(to)}}
}

// TestPlaybackOnDemand plays ON_DEMAND sessions of H.264+AAC, H.264 with
// B-frames and H.265 media in every container with ffmpeg, as a player
// would, and checks that exactly the frames put in decode.
func TestPlaybackOnDemand(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	for _, tc := range []struct {
		file         string
		video, audio int
	}{
		{file: "h264_aac.mkv", video: 180, audio: 283},
		{file: "h264_bframes.mkv", video: 180},
		{file: "h265.mkv", video: 180},
	} {
		t.Run(tc.file, func(t *testing.T) {
			stream := strings.TrimSuffix(tc.file, ".mkv")
			frags := playStream(t, srv, stream, tc.file, start)
			if len(frags) != 3 {
				t.Fatalf("%d fragments, want 3", len(frags))
			}
			from, to := start.Add(-time.Second), start.Add(time.Minute)
			urls := map[string]string{
				"HLS fMP4": hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String(stream),
					PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, from, to)}),
				"HLS TS": hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String(stream),
					PlaybackMode: amtypes.HLSPlaybackModeOnDemand, ContainerFormat: amtypes.ContainerFormatMpegTs,
					HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, from, to)}),
				"DASH": dashURL(t, srv, &kinesisvideoarchivedmedia.GetDASHStreamingSessionURLInput{StreamName: aws.String(stream),
					PlaybackMode: amtypes.DASHPlaybackModeOnDemand, DASHFragmentSelector: &amtypes.DASHFragmentSelector{
						FragmentSelectorType: amtypes.DASHFragmentSelectorTypeProducerTimestamp,
						TimestampRange:       &amtypes.DASHTimestampRange{StartTimestamp: aws.Time(from), EndTimestamp: aws.Time(to)}}}),
			}
			for name, u := range urls {
				if !strings.HasPrefix(u, srv.URL+"/") {
					t.Errorf("%s URL %s is not under the data endpoint %s", name, u, srv.URL)
				}
				wantFrames(t, ffmpeg, u, name, tc.video, tc.audio)
			}
		})
	}
}

// TestPlaybackHLSPlaylists checks the exact text of master and media
// playlists against the layout of real AWS captures (kvs-playback.md §1),
// and the boxes and packets of the segments they name.
func TestPlaybackHLSPlaylists(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	frags := playStream(t, srv, "cam", "h264_aac.mkv", start)
	var bandwidth int64
	for _, f := range frags {
		bandwidth = max(bandwidth, f.FragmentSizeInBytes*8*1000/f.FragmentLengthInMilliseconds)
	}
	u := hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, DisplayFragmentTimestamp: amtypes.HLSDisplayFragmentTimestampAlways,
		HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start, start.Add(time.Minute))})
	base := srv.URL + "/hls/v1/"
	tok := sessionToken(t, u)
	if u != base+"getHLSMasterPlaylist.m3u8?SessionToken="+tok {
		t.Fatalf("session URL %s", u)
	}
	q := "SessionToken=" + tok
	status, header, master := httpGet(t, u)
	if status != 200 || header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Fatalf("master: %d %s", status, header.Get("Content-Type"))
	}
	wantMaster := "#EXTM3U\n#EXT-X-VERSION:1\n" +
		`#EXT-X-MEDIA:AUTOSELECT=YES,FORCED=NO,TYPE=AUDIO,URI="getHLSMediaPlaylist.m3u8?` + q + `&TrackNumber=2",GROUP-ID="audio",DEFAULT=NO,NAME="audio"` + "\n" +
		fmt.Sprintf(`#EXT-X-STREAM-INF:CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=29.99,BANDWIDTH=%d,AUDIO="audio"`, bandwidth) + "\n" +
		"getHLSMediaPlaylist.m3u8?" + q + "&TrackNumber=1\n"
	if d := cmp.Diff(wantMaster, string(master)); d != "" {
		t.Errorf("master playlist (-want +got):\n%s", d)
	}
	for _, track := range []int{1, 2} {
		want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
			fmt.Sprintf(`#EXT-X-MAP:URI="getMP4InitFragment.mp4?%s&TrackNumber=%d"`, q, track) + "\n"
		for _, f := range frags {
			want += "#EXT-X-PROGRAM-DATE-TIME:" + aws.ToTime(f.ProducerTimestamp).UTC().Format("2006-01-02T15:04:05.000Z") + "\n" +
				"#EXTINF:" + strconv.FormatFloat(float64(f.FragmentLengthInMilliseconds)/1000, 'f', -1, 64) + ",\n" +
				fmt.Sprintf("getMP4MediaFragment.mp4?FragmentNumber=%s&%s&TrackNumber=%d\n", aws.ToString(f.FragmentNumber), q, track)
		}
		want += "#EXT-X-ENDLIST\n"
		got := getOK(t, fmt.Sprintf("%sgetHLSMediaPlaylist.m3u8?%s&TrackNumber=%d", base, q, track))
		if d := cmp.Diff(want, string(got)); d != "" {
			t.Errorf("track %d media playlist (-want +got):\n%s", track, d)
		}
	}

	// The server-timestamp default, DiscontinuityMode ALWAYS, as AWS writes it.
	// The fragments were put as fast as they go: they may share a server
	// millisecond, and End must come after Start.
	u = hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeServerTimestamp,
			aws.ToTime(frags[0].ServerTimestamp), aws.ToTime(frags[2].ServerTimestamp).Add(time.Millisecond))})
	q = "SessionToken=" + sessionToken(t, u)
	want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
	for i, f := range frags {
		want += "#EXT-X-DISCONTINUITY\n"
		if i == 0 {
			want += `#EXT-X-MAP:URI="getMP4InitFragment.mp4?` + q + `&TrackNumber=1&SequenceNumber=0"` + "\n"
		}
		want += "#EXTINF:" + strconv.FormatFloat(float64(f.FragmentLengthInMilliseconds)/1000, 'f', -1, 64) + ",\n" +
			"getMP4MediaFragment.mp4?FragmentNumber=" + aws.ToString(f.FragmentNumber) + "&" + q + "&TrackNumber=1\n"
	}
	want += "#EXT-X-DISCONTINUITY\n#EXT-X-ENDLIST\n"
	if d := cmp.Diff(want, string(getOK(t, base+"getHLSMediaPlaylist.m3u8?"+q+"&TrackNumber=1"))); d != "" {
		t.Errorf("ALWAYS media playlist (-want +got):\n%s", d)
	}

	// Segments: an init of ftyp+moov with one track, a media segment of
	// moof+mdat placed at the fragment's producer timestamp, and TS packets.
	init := getOK(t, base+"getMP4InitFragment.mp4?"+q+"&TrackNumber=1&SequenceNumber=0")
	file, err := mp4.DecodeFile(bytes.NewReader(init))
	if err != nil || file.Init == nil || len(file.Init.Moov.Traks) != 1 || file.Ftyp == nil {
		t.Fatalf("init segment: %v, %+v", err, file)
	}
	status, header, seg := httpGet(t, base+"getMP4MediaFragment.mp4?FragmentNumber="+aws.ToString(frags[0].FragmentNumber)+"&"+q+"&TrackNumber=1")
	if status != 200 || header.Get("Content-Type") != "video/mp4" || header.Get("ETag") == "" || !strings.Contains(header.Get("Cache-Control"), "immutable") {
		t.Fatalf("media segment: %d %v", status, header)
	}
	file, err = mp4.DecodeFile(bytes.NewReader(seg))
	if err != nil || len(file.Segments) != 1 || len(file.Segments[0].Fragments) != 1 {
		t.Fatalf("media segment: %v", err)
	}
	traf := file.Segments[0].Fragments[0].Moof.Traf
	// The file's video starts 21 ms into the first Cluster (after the AAC
	// priming), and has no B-frames: decoding starts there.
	if got, want := traf.Tfdt.BaseMediaDecodeTime(), uint64((aws.ToTime(frags[0].ServerTimestamp).UnixMilli()+21)*90); got != want {
		t.Errorf("tfdt %d, want %d: the server timestamp in 90 kHz since the epoch", got, want)
	}
	if n := traf.Trun.SampleCount(); n != 60 {
		t.Errorf("media segment holds %d samples, want 60", n)
	}
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, base+"getMP4MediaFragment.mp4?FragmentNumber="+aws.ToString(frags[0].FragmentNumber)+"&"+q+"&TrackNumber=1", nil)
	req.Header.Set("If-None-Match", header.Get("ETag"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET with the ETag: %v %v, want 304", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

// TestPlaybackLive follows a stream a producer is sending: a LIVE session's
// window slides over the newest fragments and never goes back; a
// LIVE_REPLAY session adds fragments at the pace they were recorded and ends.
func TestPlaybackLive(t *testing.T) {
	t.Parallel()
	// The test reloads playlists as fast as it can, not once a second as
	// players do.
	srv := startServer(t, "--playlist-calls-per-second", "100000")
	cx := ctx(t)
	if _, err := srv.control().CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("live"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	// Nothing ingested yet: no LIVE session.
	_, err := gmArchived(srv).GetHLSStreamingSessionURL(cx, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("live")})
	wantAPIError[*amtypes.ResourceNotFoundException](t, err, "No fragments found in the stream for the streaming request.")

	start := time.UnixMilli(time.Now().UnixMilli())
	persisted := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		_, err := client.Put(cx, client.PutOptions{Endpoint: srv.URL, Stream: "live", TimecodeType: "RELATIVE", StartTime: start, Realtime: true,
			OnAck: func(a client.Ack) {
				if a.EventType == "PERSISTED" {
					persisted <- struct{}{}
				}
			}}, bytes.NewReader(media(t, "h264.mkv")))
		done <- err
	}()
	select {
	case <-persisted:
	case err := <-done:
		t.Fatalf("producer ended before its first fragment was persisted: %v", err)
	case <-cx.Done():
		t.Fatal("no fragment persisted")
	}
	u := hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("live"),
		MaxMediaPlaylistFragmentResults: aws.Int64(2)})
	media1 := strings.Replace(u, "getHLSMasterPlaylist.m3u8", "getHLSMediaPlaylist.m3u8", 1) + "&TrackNumber=1"
	var last []string
	seqs := map[string]int{}
	wait.For(t, "the LIVE window to slide to the newest 2 of 3 fragments", func() bool {
		pl := string(getOK(t, media1))
		if strings.Contains(pl, "#EXT-X-ENDLIST") || strings.Contains(pl, "#EXT-X-PLAYLIST-TYPE") {
			t.Fatalf("a LIVE playlist is not final:\n%s", pl)
		}
		nums := fragmentNumbers(pl)
		seq := mediaSequence(t, pl)
		for i, n := range nums {
			if s, ok := seqs[n]; ok && s != seq+i {
				t.Fatalf("fragment %s moved from media sequence %d to %d", n, s, seq+i)
			}
			seqs[n] = seq + i
		}
		if len(last) > 0 && len(nums) > 0 && nums[len(nums)-1] < last[len(last)-1] {
			t.Fatalf("the window went back: %v after %v", nums, last)
		}
		last = nums
		return seq == 1 && len(nums) == 2
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frags := playFragments(t, srv, "live")
	if len(frags) != 3 || last[0] != aws.ToString(frags[1].FragmentNumber) || last[1] != aws.ToString(frags[2].FragmentNumber) {
		t.Errorf("LIVE window %v, want the newest two of %d fragments", last, len(frags))
	}

	// LIVE_REPLAY from the first fragment: one listed at once, the next after
	// each one's duration, then the end.
	end := aws.ToTime(frags[2].ProducerTimestamp)
	created := time.Now()
	u = hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("live"),
		PlaybackMode: amtypes.HLSPlaybackModeLiveReplay, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start, end)})
	replay := strings.Replace(u, "getHLSMasterPlaylist.m3u8", "getHLSMediaPlaylist.m3u8", 1) + "&TrackNumber=1"
	first := getOK(t, replay)
	if n := fragmentNumbers(string(first)); time.Since(created) < 2*time.Second && len(n) != 1 {
		t.Errorf("LIVE_REPLAY lists %d fragments at first, want 1:\n%s", len(n), first)
	}
	wait.For(t, "LIVE_REPLAY to list every fragment and end", func() bool {
		pl := string(getOK(t, replay))
		n := fragmentNumbers(pl)
		if len(n) > 1 && time.Since(created) < time.Duration(frags[0].FragmentLengthInMilliseconds)*time.Millisecond {
			t.Fatalf("LIVE_REPLAY listed a second fragment before the first had played:\n%s", pl)
		}
		if strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") {
			if d := cmp.Diff(fragmentNumbers(string(first))[:1], n[:1]); len(n) != 3 || d != "" {
				t.Fatalf("the ended LIVE_REPLAY playlist lists %v, want the 3 fragments", n)
			}
			return true
		}
		return false
	})
	if elapsed := time.Since(created); elapsed < time.Duration(frags[0].FragmentLengthInMilliseconds+frags[1].FragmentLengthInMilliseconds)*time.Millisecond {
		t.Errorf("LIVE_REPLAY listed its third fragment %v after it started, before the first two had played", elapsed)
	}
}

var fragmentNumberParam = regexp.MustCompile(`(?m)^get(?:MP4MediaFragment\.mp4|TSFragment\.ts)\?FragmentNumber=([0-9]+)`)

// fragmentNumbers lists the fragment numbers of a media playlist's segments
// (not of its low-latency parts).
func fragmentNumbers(pl string) []string {
	var out []string
	for _, m := range fragmentNumberParam.FindAllStringSubmatch(pl, -1) {
		out = append(out, m[1])
	}
	return out
}

func mediaSequence(t *testing.T, pl string) int {
	t.Helper()
	m := regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:([0-9]+)\n`).FindStringSubmatch(pl)
	if m == nil {
		t.Fatalf("no EXT-X-MEDIA-SEQUENCE in\n%s", pl)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestPlaybackErrors checks every modeled error of the session calls, with
// the exception types the SDK maps them to.
func TestPlaybackErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	cx := ctx(t)
	am := gmArchived(srv)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	all := odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start, start.Add(time.Minute))
	hls := func(in kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput) error {
		_, err := am.GetHLSStreamingSessionURL(cx, &in)
		return err
	}
	wantAPIError[*amtypes.InvalidArgumentException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		HLSFragmentSelector: all}), "HLSFragmentSelector.TimestampRange must not be set with PlaybackMode LIVE.")
	wantAPIError[*amtypes.InvalidArgumentException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand}), "HLSFragmentSelector.TimestampRange with StartTimestamp and EndTimestamp is required with PlaybackMode ON_DEMAND.")
	wantAPIError[*amtypes.InvalidArgumentException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: all, Expires: aws.Int32(299)}), "")
	wantAPIError[*amtypes.InvalidArgumentException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start, start.Add(25*time.Hour))}),
		"HLSFragmentSelector.TimestampRange must not span more than 24 hours.")
	wantAPIError[*amtypes.ResourceNotFoundException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start.Add(-time.Hour), start.Add(-time.Minute))}),
		"No fragments found in the stream for the streaming request.")
	wantAPIError[*amtypes.ResourceNotFoundException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("nope"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: all}), "")

	// A stream that keeps nothing.
	if _, err := srv.control().CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("none")}); err != nil {
		t.Fatal(err)
	}
	wantAPIError[*amtypes.NoDataRetentionException](t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("none"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: all}), "")

	for _, tc := range refusedSetups(t) {
		putSetup(t, srv, tc.stream, tc.media, start)
		tc.check(t, hls(kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String(tc.stream),
			PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: all}))
	}
	// H.264 without CodecPrivate.
	if _, err := srv.control().CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("nocpd"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	gmIngest(t, srv, "nocpd", "PERSISTED", gmFrags(synth.Video{}, 0, 1))
	_, err := am.GetHLSStreamingSessionURL(cx, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("nocpd")})
	wantAPIError[*amtypes.MissingCodecPrivateDataException](t, err, "")
	_, err = am.GetDASHStreamingSessionURL(cx, &kinesisvideoarchivedmedia.GetDASHStreamingSessionURLInput{StreamName: aws.String("nocpd")})
	wantAPIError[*amtypes.MissingCodecPrivateDataException](t, err, "")
}

// refusedSetup is a stream whose codec setup the playback APIs refuse, made
// by editing a real file's header in place, and the check of the error.
type refusedSetup struct {
	stream string
	media  []byte
	check  func(*testing.T, error)
}

func refusedSetups(t *testing.T) []refusedSetup {
	h264 := media(t, "h264.mkv")
	// CodecPrivate (ID 63 A2): its avcC's first SPS length becomes huge.
	badCPD := bytes.Clone(h264)
	i := bytes.Index(badCPD, []byte{0x63, 0xA2})
	badCPD[i+3+6], badCPD[i+3+7] = 0xFF, 0xFF
	return []refusedSetup{
		{"unsupported", bytes.Replace(h264, []byte("V_MPEG4/ISO/AVC"), []byte("V_MPEG4/ISO/XYZ"), 1),
			func(t *testing.T, err error) { wantAPIError[*amtypes.UnsupportedStreamMediaTypeException](t, err, "") }},
		{"badcpd", badCPD, func(t *testing.T, err error) { wantAPIError[*amtypes.InvalidCodecPrivateDataException](t, err, "") }},
	}
}

// putSetup creates a stream that keeps data and puts the MKV bytes in it with
// RELATIVE timecodes from start.
func putSetup(t *testing.T, srv *serverProc, stream string, mkv []byte, start time.Time) {
	t.Helper()
	if _, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	opts := client.PutOptions{Endpoint: srv.URL, Stream: stream, TimecodeType: "RELATIVE", StartTime: start}
	if _, err := client.Put(ctx(t), opts, bytes.NewReader(mkv)); err != nil {
		t.Fatal(err)
	}
}

// TestPlaybackTokens checks that playback URLs are authorized by their token
// alone: a forged or altered token, one of the wrong kind and one revoked by
// newer sessions get a 403.
func TestPlaybackTokens(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--sessions-per-stream", "3")
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	in := &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start, start.Add(time.Minute))}
	first := hlsURL(t, srv, in)
	getOK(t, first)
	tok := sessionToken(t, first)
	rejected := func(u, msg string) {
		t.Helper()
		status, header, body := httpGet(t, u)
		want := `{"Message":"` + msg + `","__type":"NotAuthorizedException"}`
		if status != http.StatusForbidden || string(body) != want || header.Get("x-amzn-ErrorType") == "" {
			t.Errorf("GET %s: %d %s, want 403 %s", u, status, body, want)
		}
	}
	flip := []byte(tok)
	flip[10] ^= 1
	rejected(strings.Replace(first, tok, string(flip), 1), "Streaming session token is not valid.")
	rejected(strings.Replace(first, tok, "x"+tok, 1), "Streaming session token is not valid.")
	rejected(srv.URL+"/dash/v1/getDASHManifest.mpd?SessionToken="+tok, "Streaming session token is not valid for this resource.")
	// Three sessions per stream: the fourth revokes the first.
	for range 3 {
		getOK(t, hlsURL(t, srv, in))
	}
	rejected(first, "Streaming session was revoked: the stream has 3 newer sessions.")
}

// TestPlaybackCORS checks that a page on another origin may create sessions
// and load their URLs, as AWS's media viewer does.
func TestPlaybackCORS(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodOptions, srv.URL+"/getHLSStreamingSessionURL", nil)
	req.Header.Set("Origin", "https://viewer.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-amz-date,x-amz-content-sha256,amz-sdk-invocation-id")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
		h.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-amz-date,x-amz-content-sha256,amz-sdk-invocation-id" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
	req.Header.Set("Access-Control-Request-Headers", "x-not-allowed")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("preflight with a header SigV4 does not send: %v, want 403", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	get, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, srv.URL+"/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=x", nil)
	get.Header.Set("Origin", "https://viewer.example")
	resp, err = http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "x-amzn-ErrorType") {
		t.Errorf("playback answer without CORS headers: %v", resp.Header)
	}
	only := startServer(t, "--cors-origins", "https://viewer.example")
	get, _ = http.NewRequestWithContext(ctx(t), http.MethodGet, only.URL+"/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=x", nil)
	for origin, want := range map[string]string{"https://viewer.example": "https://viewer.example", "https://evil.example": ""} {
		get.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(get)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}

// TestPlaybackBoto3 creates HLS and DASH sessions with boto3 and the AWS CLI.
func TestPlaybackBoto3(t *testing.T) {
	t.Parallel()
	py := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	awsCLI := requireTool(t, "aws", "apt-get install -y awscli")
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	script := `
import sys, boto3, datetime
c = boto3.client("kinesis-video-archived-media", endpoint_url=sys.argv[1], region_name="us-east-1")
r = {"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {
    "StartTimestamp": datetime.datetime.fromtimestamp(float(sys.argv[2]), datetime.timezone.utc),
    "EndTimestamp": datetime.datetime.fromtimestamp(float(sys.argv[2]) + 60, datetime.timezone.utc)}}
print(c.get_hls_streaming_session_url(StreamName="cam", PlaybackMode="ON_DEMAND", HLSFragmentSelector=r)["HLSStreamingSessionURL"])
print(c.get_dash_streaming_session_url(StreamName="cam", PlaybackMode="ON_DEMAND", DASHFragmentSelector=r)["DASHStreamingSessionURL"])
try:
    c.get_hls_streaming_session_url(StreamName="cam", PlaybackMode="LIVE", HLSFragmentSelector=r)
except c.exceptions.InvalidArgumentException as e:
    print(e.response["Error"]["Message"])
`
	cmd := exec.CommandContext(ctx(t), py, "-c", script, srv.URL, strconv.FormatInt(start.Unix(), 10))
	cmd.Env = awsEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], srv.URL+"/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=") ||
		!strings.HasPrefix(lines[1], srv.URL+"/dash/v1/getDASHManifest.mpd?SessionToken=") ||
		lines[2] != "HLSFragmentSelector.TimestampRange must not be set with PlaybackMode LIVE." {
		t.Fatalf("boto3 printed:\n%s", out)
	}
	for _, u := range lines[:2] {
		getOK(t, u)
	}
	cmd = exec.CommandContext(ctx(t), awsCLI, "--endpoint-url", srv.URL, "kinesis-video-archived-media", "get-hls-streaming-session-url",
		"--stream-name", "cam", "--playback-mode", "ON_DEMAND", "--hls-fragment-selector",
		fmt.Sprintf("FragmentSelectorType=PRODUCER_TIMESTAMP,TimestampRange={StartTimestamp=%d,EndTimestamp=%d}", start.Unix(), start.Unix()+60),
		"--query", "HLSStreamingSessionURL", "--output", "text")
	cmd.Env = awsEnv(t)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws cli: %v\n%s", err, out)
	}
	getOK(t, strings.TrimSpace(string(out)))
}

// TestPlaybackAuth checks that with --credentials creating a session needs
// its permission, while the session's URLs are authorized by their token
// alone, as on AWS.
func TestPlaybackAuth(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	admin := srv.awsConfig()
	admin.Credentials = credentials.NewStaticCredentialsProvider(adminKey, adminSecret, "")
	if _, err := kinesisvideo.NewFromConfig(admin).CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	signer := v4.NewSigner()
	put := client.PutOptions{Endpoint: srv.URL, Stream: "cam-1", TimecodeType: "RELATIVE", StartTime: start, Sign: func(r *http.Request) error {
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		return signer.SignHTTP(r.Context(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}, r, "UNSIGNED-PAYLOAD", "kinesisvideo", "us-east-1", time.Now())
	}}
	if _, err := client.Put(ctx(t), put, bytes.NewReader(media(t, "h264.mkv"))); err != nil {
		t.Fatal(err)
	}
	in := &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam-1"), PlaybackMode: amtypes.HLSPlaybackModeOnDemand,
		HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, start, start.Add(time.Minute))}
	reader := srv.awsConfig()
	reader.Credentials = credentials.NewStaticCredentialsProvider(readerKey, readerSecret, "")
	_, err := kinesisvideoarchivedmedia.NewFromConfig(reader).GetHLSStreamingSessionURL(ctx(t), in)
	wantAPIError[*amtypes.NotAuthorizedException](t, err,
		"User: AKIDREADER is not authorized to perform: kinesisvideo:GetHLSStreamingSessionURL on resource: cam-1")
	out, err := kinesisvideoarchivedmedia.NewFromConfig(admin).GetHLSStreamingSessionURL(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	// An unsigned GET with the token, as a player sends it.
	master := getOK(t, aws.ToString(out.HLSStreamingSessionURL))
	if !bytes.HasPrefix(master, []byte("#EXTM3U\n")) {
		t.Errorf("master playlist %q", master)
	}

	// GetClip and GetImages are authorized as their own actions too.
	clipIn := &kinesisvideoarchivedmedia.GetClipInput{StreamName: aws.String("cam-1"), ClipFragmentSelector: &amtypes.ClipFragmentSelector{
		FragmentSelectorType: amtypes.ClipFragmentSelectorTypeProducerTimestamp,
		TimestampRange:       &amtypes.ClipTimestampRange{StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(time.Minute))}}}
	_, err = kinesisvideoarchivedmedia.NewFromConfig(reader).GetClip(ctx(t), clipIn)
	wantAPIError[*amtypes.NotAuthorizedException](t, err, "User: AKIDREADER is not authorized to perform: kinesisvideo:GetClip on resource: cam-1")
	clip, err := kinesisvideoarchivedmedia.NewFromConfig(admin).GetClip(ctx(t), clipIn)
	if err != nil {
		t.Fatalf("admin GetClip: %v", err)
	}
	clip.Payload.Close()
	_, err = kinesisvideoarchivedmedia.NewFromConfig(reader).GetImages(ctx(t), &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("cam-1"),
		ImageSelectorType: amtypes.ImageSelectorTypeProducerTimestamp, StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(time.Second)),
		Format: amtypes.FormatJpeg, SamplingInterval: aws.Int32(1000)})
	wantAPIError[*amtypes.NotAuthorizedException](t, err, "User: AKIDREADER is not authorized to perform: kinesisvideo:GetImages on resource: cam-1")
}

// TestPlaybackLowLatency follows a stream a producer is sending through a
// LIVE session's low-latency parts: the playlist announces them, a blocking
// reload returns once the next part exists, and the preload-hinted part is
// served as soon as its frames arrived.
func TestPlaybackLowLatency(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--playlist-calls-per-second", "100000")
	cx := ctx(t)
	if _, err := srv.control().CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("ll"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	persisted := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		_, err := client.Put(cx, client.PutOptions{Endpoint: srv.URL, Stream: "ll", TimecodeType: "RELATIVE", Realtime: true,
			OnAck: func(a client.Ack) {
				if a.EventType == "PERSISTED" {
					persisted <- struct{}{}
				}
			}}, bytes.NewReader(media(t, "h264_aac.mkv")))
		done <- err
	}()
	select {
	case <-persisted:
	case err := <-done:
		t.Fatalf("producer ended before its first fragment was persisted: %v", err)
	}
	u := hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("ll"),
		DiscontinuityMode: amtypes.HLSDiscontinuityModeOnDiscontinuity})
	base := strings.Replace(u, "getHLSMasterPlaylist.m3u8", "getHLSMediaPlaylist.m3u8", 1) + "&TrackNumber=1"
	pl := string(getOK(t, base))
	for _, tag := range []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6\n", "#EXT-X-PART-INF:PART-TARGET=0.2\n", "#EXT-X-PRELOAD-HINT:TYPE=PART,URI="} {
		if !strings.Contains(pl, tag) {
			t.Fatalf("low-latency playlist lacks %q:\n%s", tag, pl)
		}
	}
	hint := regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+PartNumber=([0-9]+))"`).FindStringSubmatch(pl)
	msn := mediaSequence(t, pl) + strings.Count(pl, "#EXTINF:")
	// Block until the hinted part is listed, as hls.js asks.
	reload := fmt.Sprintf("%s&_HLS_msn=%d&_HLS_part=%s", base, msn, hint[2])
	next := string(getOK(t, reload))
	if !strings.Contains(next, hint[1]+`"`) || strings.Contains(next, `PRELOAD-HINT:TYPE=PART,URI="`+hint[1]+`"`) {
		t.Errorf("blocking reload for part %s of %d does not list it as a part:\n%s", hint[2], msn, next)
	}
	// The hinted part: one moof+mdat of a few frames, at most a part target long.
	part := getOK(t, srv.URL+"/hls/v1/"+hint[1])
	file, err := mp4.DecodeFile(bytes.NewReader(part))
	if err != nil || len(file.Segments) != 1 {
		t.Fatalf("part: %v", err)
	}
	trun := file.Segments[0].Fragments[0].Moof.Traf.Trun
	var ticks uint64
	for _, s := range trun.Samples {
		ticks += uint64(s.Dur)
	}
	if n := trun.SampleCount(); n < 1 || n > 7 || ticks > 90000*210/1000 {
		t.Errorf("part holds %d samples lasting %d ticks, want a part of about 200 ms", n, ticks)
	}
	// Far beyond the live edge is an error, not a wait.
	status, _, body := httpGet(t, fmt.Sprintf("%s&_HLS_msn=%d", base, msn+3))
	if status != http.StatusBadRequest {
		t.Errorf("_HLS_msn 3 ahead: %d %s, want 400", status, body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Between fragments (the producer stopped), the playlist still ends with
	// a hint: the first part of whatever fragment comes next, which the next
	// producer session sends.
	hintAfter := regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(getMP4MediaFragment\.mp4\?PartAfter=[0-9]+&[^"]+&PartNumber=0)"\n$`)
	var hinted []string
	wait.For(t, "the playlist to end between fragments with a hint of the next", func() bool {
		hinted = hintAfter.FindStringSubmatch(string(getOK(t, base)))
		return hinted != nil
	})
	got := make(chan []byte, 1)
	go func() {
		var body []byte
		if resp, err := http.Get(srv.URL + "/hls/v1/" + hinted[1]); err == nil {
			if resp.StatusCode == http.StatusOK {
				body, _ = io.ReadAll(resp.Body)
			}
			resp.Body.Close()
		}
		got <- body
	}()
	if _, err := client.Put(cx, client.PutOptions{Endpoint: srv.URL, Stream: "ll", TimecodeType: "RELATIVE", Realtime: true},
		bytes.NewReader(media(t, "h264_aac.mkv"))); err != nil {
		t.Fatal(err)
	}
	if file, err := mp4.DecodeFile(bytes.NewReader(<-got)); err != nil || len(file.Segments) != 1 {
		t.Errorf("the hinted first part of the next fragment: %v", err)
	}
}
