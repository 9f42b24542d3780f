package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/store"
)

// TestImporter runs the store.Importer conformance suite; open must return
// a catalog that is also a store.Importer.
func TestImporter(t *testing.T, open OpenCatalog) {
	tests := map[string]func(*testing.T, store.Catalog, store.Importer){
		"ImportStream": testImportStream,
		"Conflicts":    testImportConflicts,
		"ReserveIDs":   testReserveStreamIDs,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			c := openTemp(t, open)
			imp, ok := c.(store.Importer)
			if !ok {
				t.Fatalf("%T is not a store.Importer", c)
			}
			fn(t, c, imp)
		})
	}
}

// imported is a stream as another catalog made it: its own ID, version,
// status, creation time and configurations.
func imported(name string, id int64) *store.Stream {
	s := newStream(name)
	s.ID, s.Version, s.Status = id, "Vsrc0000000000000001", store.StatusUpdating
	s.ImageGeneration, s.Notification = `{"Format":"JPEG"}`, `{"DestinationConfig":{"Uri":"arn:x"}}`
	return s
}

func testImportStream(t *testing.T, c store.Catalog, imp store.Importer) {
	ctx := context.Background()
	s := imported("moved", 7)
	created, err := imp.ImportStream(ctx, s, 40)
	if err != nil || !created {
		t.Fatalf("ImportStream = %v, %v; want created", created, err)
	}
	got, err := c.StreamByName(ctx, "moved")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got, equalTime()); diff != "" {
		t.Errorf("imported stream (-want +got):\n%s", diff)
	}
	if next, err := c.ReserveSequence(ctx, 7, 10); err != nil || next != 40 {
		t.Errorf("first sequence after the import = %d, %v; want 40", next, err)
	}
	// Imported again (a re-run): the same stream, its sequence raised only
	// if the source's is past it, nothing else touched.
	again := imported("moved", 7)
	again.Tags = map[string]string{"changed": "yes"}
	for _, next := range []uint64{60, 45} {
		if created, err := imp.ImportStream(ctx, again, next); err != nil || created {
			t.Fatalf("ImportStream again = %v, %v; want an existing stream", created, err)
		}
	}
	if next, err := c.ReserveSequence(ctx, 7, 1); err != nil || next != 60 {
		t.Errorf("sequence after imports of 60 and 45 = %d, %v; want 60", next, err)
	}
	got, err = c.StreamByName(ctx, "moved")
	if err != nil || !cmp.Equal(got.Tags, s.Tags) {
		t.Errorf("tags after importing again = %v, %v; want the first import's %v", got.Tags, err, s.Tags)
	}
	// The imported stream takes fragment rows, and new streams get later
	// IDs.
	if err := c.AddFragments(ctx, nil, []*store.Fragment{fragment(7, 1, 0)}); err != nil {
		t.Fatalf("AddFragments to an imported stream: %v", err)
	}
	if n := mustCreate(t, c, newStream("new")); n.ID <= 7 {
		t.Errorf("a stream created after importing ID 7 got ID %d", n.ID)
	}
}

func testImportConflicts(t *testing.T, c store.Catalog, imp store.Importer) {
	ctx := context.Background()
	here := mustCreate(t, c, newStream("here"))
	for _, s := range []*store.Stream{
		imported("here", here.ID+10), // the name is another stream's
		func() *store.Stream { s := imported("x", here.ID); s.ARN += "x"; return s }(), // the ID is
		func() *store.Stream { s := imported("y", here.ID+11); s.ARN = here.ARN; return s }(),
	} {
		if _, err := imp.ImportStream(ctx, s, 1); !errors.Is(err, store.ErrExists) {
			t.Errorf("ImportStream(%s, ID %d) beside stream %d %s: %v, want ErrExists", s.Name, s.ID, here.ID, here.Name, err)
		}
	}
	if got, err := c.StreamByName(ctx, "here"); err != nil || got.ID != here.ID || got.Version != here.Version {
		t.Errorf("the stream there after refused imports = %+v, %v", got, err)
	}
}

func testReserveStreamIDs(t *testing.T, c store.Catalog, imp store.Importer) {
	ctx := context.Background()
	if err := imp.ReserveStreamIDs(ctx, 20); err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, c, newStream("a"))
	if a.ID <= 20 {
		t.Fatalf("a stream created after reserving IDs up to 20 got ID %d", a.ID)
	}
	// Reserving fewer never sets the sequence back.
	if err := imp.ReserveStreamIDs(ctx, 5); err != nil {
		t.Fatal(err)
	}
	b := newStream("b")
	b.ARN += "b"
	if mustCreate(t, c, b); b.ID <= a.ID {
		t.Errorf("after reserving up to 5, a new stream got ID %d, not after %d", b.ID, a.ID)
	}
}
