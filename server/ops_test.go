package server

import (
	"io"
	"net/http"
	"testing"
)

// TestReadyz checks that /readyz answers 503 "starting" until MarkReady,
// then 200, without authentication although the server has keys.
func TestReadyz(t *testing.T) {
	srv, s := newTestServerWith(t, nil)
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 503 || body != "{\"ready\":false,\"reason\":\"starting\"}\n" {
		t.Errorf("/readyz before MarkReady: %d %q", code, body)
	}
	s.MarkReady()
	if code, body := get(); code != 200 || body != "{\"ready\":true}\n" {
		t.Errorf("/readyz after MarkReady: %d %q", code, body)
	}
}
