package access

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReloader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.json")
	writeFile(t, path, `{"keys": [{"accessKeyId": "OLD", "secretAccessKey": "old-secret"}]}`)
	r, err := NewReloader(path)
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	if secret, ok := r.Secret("OLD"); !ok || secret != "old-secret" {
		t.Fatalf("Secret(OLD) = %q, %v", secret, ok)
	}
	before := r.Store()

	writeFile(t, path, `{"keys": [{"accessKeyId": "NEW", "secretAccessKey": "new-secret",
		"policy": [{"actions": ["kinesisvideo:GetMedia"], "streams": ["cam-*"]}]}]}`)
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, ok := r.Secret("OLD"); ok {
		t.Error("removed key still known after reload")
	}
	if !r.Allowed("NEW", "GetMedia", "cam-1") || r.Allowed("NEW", "PutMedia", "cam-1") {
		t.Error("new policy not in force after reload")
	}
	if _, ok := before.Secret("OLD"); !ok {
		t.Error("a Store taken before the reload changed")
	}

	// A broken file keeps the previous store.
	writeFile(t, path, `{"keys": [{"accessKeyId": "NEW"}]}`)
	err = r.Reload()
	want := "reload: credentials file " + path + `: keys[0] (accessKeyId "NEW").secretAccessKey: missing or empty`
	if err == nil || err.Error() != want {
		t.Fatalf("Reload of broken file: got %v, want %q", err, want)
	}
	if secret, ok := r.Secret("NEW"); !ok || secret != "new-secret" {
		t.Errorf("after failed reload Secret(NEW) = %q, %v; want the previous store", secret, ok)
	}

	if _, err := NewReloader(filepath.Join(t.TempDir(), "missing.json")); err == nil ||
		!strings.HasPrefix(err.Error(), "reload: credentials file: open ") {
		t.Errorf("NewReloader of missing file: got %v", err)
	}
}

// TestReloaderConcurrent swaps files while readers check keys; run with -race. Every reader must
// see one whole file: key A with secret a1 and key B with b1, or A with a2 and no B.
func TestReloaderConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.json")
	files := []string{
		`{"keys": [{"accessKeyId": "A", "secretAccessKey": "a1"}, {"accessKeyId": "B", "secretAccessKey": "b1"}]}`,
		`{"keys": [{"accessKeyId": "A", "secretAccessKey": "a2", "policy": [{"actions": ["kinesisvideo:GetMedia"]}]}]}`,
	}
	writeFile(t, path, files[0])
	r, err := NewReloader(path)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				s := r.Store()
				a, _ := s.Secret("A")
				_, hasB := s.Secret("B")
				put := s.Allowed("A", "PutMedia", "x")
				if !(a == "a1" && hasB && put) && !(a == "a2" && !hasB && !put) {
					t.Errorf("mixed store: A=%q B=%v PutMedia=%v", a, hasB, put)
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range 50 {
		writeFile(t, path, files[(i+1)%2])
		if err := r.Reload(); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Error("readers never ran")
	}
}
