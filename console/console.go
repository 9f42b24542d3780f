// Package console is openkvs's web console: pages of our own HTML, CSS and
// JavaScript, embedded in the binary, that list the streams, play them live
// and from the archive and export clips. The pages reach the server only
// through the public KVS APIs and the playback URLs, as any browser client
// would; this package just serves the files.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Prefix is the path under which the console's files are served; the page
// itself is also served at "/".
const Prefix = "/console/"

//go:embed static
var static embed.FS

// contentTypes are the types of the files the console is made of. A file
// of another type is not embedded (TestContentTypes).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// securityPolicy keeps the page to its own files: scripts and styles only
// from the server, no frames. Playback URLs may name another data endpoint
// (GetDataEndpoint), so requests and media may go to any http(s) origin.
const securityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob: http: https:; connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console: the page at "/" and at Prefix, its files
// under Prefix, and a redirect from Prefix without its slash. Every answer
// must be revalidated (Cache-Control: no-cache, with an ETag of the
// content), so a new binary's console is seen at the next load without
// hashed file names; unchanged files cost a 304.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		files[strings.TrimPrefix(p, "static/")] = file{body: body, contentType: contentTypes[path.Ext(p)],
			etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: only a broken build gets here.
		panic("console: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "The console takes GET or HEAD.", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		switch {
		case r.URL.Path == "/" || r.URL.Path == Prefix:
			name = "index.html"
		case r.URL.Path == strings.TrimSuffix(Prefix, "/"):
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		case !ok:
			http.NotFound(w, r)
			return
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if name == "index.html" {
			h.Set("Content-Security-Policy", securityPolicy)
		}
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(f.body)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(f.body)
	})
}
