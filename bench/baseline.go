package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// ServeBaseline runs the baseline server the bench compares openkvs with,
// until ctx ends: the least a server must do for each job, in a process of
// its own so that its CPU time is measured as the server's is.
//
//   - POST /upload?fsync=N writes the body to a new file under dir, with an
//     fsync after every N bytes and at the end (the cadence of one fsync per
//     fragment), and answers "ok".
//   - GET /files/NAME serves dir/NAME with http.ServeContent (sendfile from
//     the page cache).
//   - A TCP listener echoes every byte back: the loopback round trip.
//   - POST /putMedia takes a PutMedia body (chunked, as a camera sends it)
//     and does the least a server must for each fragment: find where each
//     Cluster starts, write each fragment to a file of its own, fsync it,
//     and answer one PERSISTED ACK line, as openkvs does. POST
//     /createStream makes the stream's directory. Nothing else of the KVS
//     protocol is checked or kept.
//
// It logs one JSON line {"msg":"listening","url":...,"echo":...} to logw,
// as `openkvs serve --log-format json` does.
func ServeBaseline(ctx context.Context, dir string, logw io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("baseline directory: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("baseline listen: %w", err)
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return fmt.Errorf("baseline echo listen: %w", err)
	}
	go serveEcho(echo)
	var seq atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		cadence, _ := strconv.ParseInt(r.URL.Query().Get("fsync"), 10, 64)
		name := filepath.Join(dir, fmt.Sprintf("upload-%d", seq.Add(1)))
		if err := writeSynced(name, r.Body, cadence); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /createStream", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ StreamName string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := os.MkdirAll(filepath.Join(dir, "ingest", filepath.Base(in.StreamName)), 0o755); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("POST /putMedia", func(w http.ResponseWriter, r *http.Request) {
		putMedia(w, r, filepath.Join(dir, "ingest", filepath.Base(r.Header.Get("x-amzn-stream-name"))))
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(dir, filepath.Base(r.PathValue("name"))))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, "", st.ModTime(), f)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	slog.New(slog.NewJSONHandler(logw, nil)).Info("listening", "url", "http://"+ln.Addr().String(), "echo", echo.Addr().String())
	go func() {
		<-ctx.Done()
		echo.Close()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("baseline serve: %w", err)
	}
	return nil
}

// putMedia stores each fragment of the body as a file of its own in dir,
// fsyncs it and then sends its PERSISTED ACK; the header (before the first
// Cluster) goes to a file of its own without an ACK.
func putMedia(w http.ResponseWriter, r *http.Request, dir string) {
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	var file *os.File
	files := 0
	open := func() (err error) {
		file, err = os.Create(filepath.Join(dir, strconv.Itoa(files)))
		files++
		return err
	}
	fr := &fragmenter{write: func(p []byte) error {
		_, err := file.Write(p)
		return err
	}}
	// done completes the file being written: fsync, close, then the ACK
	// of the fragment it holds.
	done := func() error {
		err := file.Sync()
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil || fr.Clusters == 0 {
			return err
		}
		fmt.Fprintf(w, `{"EventType":"PERSISTED","FragmentTimecode":%d,"FragmentNumber":"%d"}`+"\n", fr.Timecode, fr.Clusters)
		return rc.Flush()
	}
	fr.cut = func() error {
		if err := done(); err != nil {
			return err
		}
		return open()
	}
	err := open()
	if err == nil {
		err = readInto(r.Body, make([]byte, 64<<10), fr.feed)
		if err == nil {
			err = done()
		} else {
			file.Close()
		}
	}
	if err != nil {
		b, _ := json.Marshal(err.Error())
		fmt.Fprintf(w, `{"EventType":"ERROR","ErrorId":5000,"ErrorCode":%s}`+"\n", b)
	}
}

// readInto reads r to its end, handing each read to fn.
func readInto(r io.Reader, buf []byte, fn func([]byte) error) error {
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if err := fn(buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeSynced copies r to a new file, fsyncing after every cadence bytes
// (never if cadence <= 0) and at the end.
func writeSynced(name string, r io.Reader, cadence int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	var since int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			since += int64(n)
			if cadence > 0 && since >= cadence {
				if err := f.Sync(); err != nil {
					return err
				}
				since = 0
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// serveEcho echoes each connection's bytes back until it closes.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			io.Copy(c, c)
		}()
	}
}
