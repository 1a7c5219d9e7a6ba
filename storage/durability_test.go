package storage

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/go-datastore"
)

// withPebbleFS makes New open its own datastore on fs.
func withPebbleFS(fs vfs.FS) Options { return Options{pebbleFS: fs} }

// Issue #13 item 12: pins live in pebble, which by default does not sync
// its writes. A pin (and an unpin) that Add, Pin or Unpin acknowledged
// must survive a crash right after, or GC later deletes content the user
// was told is kept. The crash is pebble's own simulation: the clone holds
// exactly what was synced.
func TestPinsSurviveCrash(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewCrashableMem()
	repo := t.TempDir()
	s, err := New(testConfig(), repo, nil, nil, nil, withPebbleFS(mem))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.AddNode(ctx, files.NewBytesFile([]byte("pinned before the crash")), AddOptions{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := s.AddNode(ctx, files.NewBytesFile([]byte("unpinned before the crash")), AddOptions{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, dropped); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{}) // power lost here
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := New(testConfig(), repo, nil, nil, nil, withPebbleFS(crashed))
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s2.Close()
	pins, err := s2.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 1 || pins[0] != kept {
		t.Fatalf("pins after a crash = %v, want only %s", pins, kept)
	}
}

// A record followed by Sync survives a crash: the contract every
// component that must not lose a write (job records, journals,
// reputation, pins) relies on.
func TestSyncedWritesSurviveCrash(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewCrashableMem()
	repo := t.TempDir()
	s, err := New(testConfig(), repo, nil, nil, nil, withPebbleFS(mem))
	if err != nil {
		t.Fatal(err)
	}
	key := dsKeyOf("/jobs/x")
	if err := s.Datastore().Put(ctx, key, []byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := s.Datastore().Sync(ctx, key); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	s2, err := New(testConfig(), repo, nil, nil, nil, withPebbleFS(crashed))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.Datastore().Get(ctx, key); err != nil || string(got) != "record" {
		t.Fatalf("record after a crash = %q, %v; want it kept", got, err)
	}
}

func dsKeyOf(s string) datastore.Key { return datastore.NewKey(s) }
