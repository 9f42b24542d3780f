package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"testing"
)

func get(t *testing.T, method, target string, header ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w.Result()
}

// TestContentTypes checks that every embedded file has a content type.
func TestContentTypes(t *testing.T) {
	n := 0
	fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.IsDir() {
			return nil
		}
		n++
		name := strings.TrimPrefix(p, "static/")
		resp := get(t, http.MethodGet, Prefix+name)
		want := contentTypes[path.Ext(p)]
		if want == "" {
			t.Errorf("%s: no content type for %s files", name, path.Ext(p))
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want {
			t.Errorf("%s: %d %q, want 200 %q", name, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
		return nil
	})
	if n < 6 {
		t.Errorf("%d files embedded, want the page, its style, scripts and icon", n)
	}
}

// TestRoutes checks where the page and its files are served.
func TestRoutes(t *testing.T) {
	index, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, target string
		status         int
		body           string // "" for any
	}{
		{"GET", "/", 200, string(index)},
		{"GET", "/console/", 200, string(index)},
		{"GET", "/console/index.html", 200, string(index)},
		{"HEAD", "/", 200, ""},
		{"GET", "/console/nothing.js", 404, "404 page not found\n"},
		{"GET", "/console/../console.go", 404, ""},
		{"GET", "/other", 404, "404 page not found\n"},
		{"POST", "/", 405, "The console takes GET or HEAD.\n"},
	} {
		resp := get(t, tc.method, tc.target)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
			t.Errorf("%s %s: %d %.40q, want %d %.40q", tc.method, tc.target, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.method == "HEAD" && (len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(index))) {
			t.Errorf("HEAD %s: %d bytes of body, Content-Length %q", tc.target, len(body), resp.Header.Get("Content-Length"))
		}
	}
	resp := get(t, "GET", "/console")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != Prefix {
		t.Errorf("GET /console: %d to %q, want 301 to %s", resp.StatusCode, resp.Header.Get("Location"), Prefix)
	}
}

// TestCaching checks that every answer is revalidated by its ETag, and
// that the page carries its security headers.
func TestCaching(t *testing.T) {
	resp := get(t, "GET", "/console/app.js")
	etag := resp.Header.Get("ETag")
	if resp.Header.Get("Cache-Control") != "no-cache" || len(etag) != 18 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("app.js: Cache-Control %q, ETag %q, X-Content-Type-Options %q; want no-cache, a quoted 16-digit hash, nosniff",
			resp.Header.Get("Cache-Control"), etag, resp.Header.Get("X-Content-Type-Options"))
	}
	again := get(t, "GET", "/console/app.js", "If-None-Match", etag)
	if body, _ := io.ReadAll(again.Body); again.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("app.js with its ETag: %d with %d bytes, want 304 without a body", again.StatusCode, len(body))
	}
	if other := get(t, "GET", "/console/console.css").Header.Get("ETag"); other == etag {
		t.Errorf("console.css and app.js share the ETag %s", etag)
	}
	page := get(t, "GET", "/")
	if csp := page.Header.Get("Content-Security-Policy"); csp != securityPolicy {
		t.Errorf("the page's Content-Security-Policy %q, want %q", csp, securityPolicy)
	}
}
