package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// packFiles lists the pack files of the store at repo and their total size.
func packFiles(t testing.TB, repo string) ([]string, int64) {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(repo, "blocks", "*"+packSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range m {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	return m, total
}

// New repos keep their blocks in packs; content survives a reopen, and
// GC gives the space of deleted blocks back by compacting the packs.
func TestPackStoreReopenAndCompact(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	s, err := New(testConfig(), repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	keptData, droppedData := randomBytes(1<<20, 30), randomBytes(3<<20, 31)
	kept, err := s.AddReader(ctx, bytes.NewReader(keptData), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := s.AddReader(ctx, bytes.NewReader(droppedData), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if isFlatfsDir(filepath.Join(repo, "blocks")) {
		t.Fatal("a new repo got a flatfs block store")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, repo)
	for c, want := range map[cid.Cid][]byte{kept: keptData, dropped: droppedData} {
		if got := readAll(t, s, c); !bytes.Equal(got, want) {
			t.Fatalf("%s differs after reopening", c)
		}
	}
	if err := s.Unpin(ctx, dropped); err != nil {
		t.Fatal(err)
	}
	_, before := packFiles(t, repo)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	_, after := packFiles(t, repo)
	if after > before-3<<20 || after < 1<<20 {
		t.Errorf("packs hold %d bytes after GC of 3 MiB of %d, want about 1 MiB", after, before)
	}
	st, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != after {
		t.Errorf("Stat.Bytes = %d, pack files hold %d", st.Bytes, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, repo)
	if got := readAll(t, s, kept); !bytes.Equal(got, keptData) {
		t.Fatal("kept content differs after compaction and reopen")
	}
	if has, _ := s.Blockstore().Has(ctx, dropped); has {
		t.Error("collected root still present")
	}
}

// A refused import leaves dead blocks in the pack being written; GC must
// still give that space back, or the quota stays used up.
func TestPackStoreGCReclaimsCurrentPack(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, testConfig(), nil, nil)
	c, err := s.AddReader(ctx, bytes.NewReader(randomBytes(2<<20, 32)), AddOptions{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Blockstore().Has(ctx, c); has {
		t.Fatal("unpinned root survived GC")
	}
	if used, _ := s.blocks.DiskUsage(ctx); used > 0 {
		t.Errorf("block store uses %d bytes after everything was collected, want 0", used)
	}
}

// Repos created before the pack store keep their flatfs block store:
// New opens it as it is and keeps writing one file per block there.
func TestFlatfsRepoStillOpens(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	makeFlatfsRepo(t, repo)
	s, err := New(testConfig(), repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(300_000, 33)
	c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.blocks.(*packStore); ok {
		t.Fatal("a flatfs repo was opened as a pack store")
	}
	blockFile(t, repo, firstLeaf(t, s, c)) // fails the test if not a flatfs file
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, repo)
	if got := readAll(t, s, c); !bytes.Equal(got, data) {
		t.Fatal("content differs after reopening the flatfs repo")
	}
	if m, _ := packFiles(t, repo); len(m) != 0 {
		t.Errorf("pack files %v appeared in a flatfs repo", m)
	}
}

// A power loss can leave the index newer than the pack data: the end of
// a pack missing, or zeros where blocks should be. Blocks past the end are
// forgotten at open; every read checks the block's CRC, whatever
// hash_on_read says, so other lost bytes are reported corrupt and dropped.
// Either way the content can be imported or fetched again.
func TestPackStoreLostWrites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, pack string, size int64)
		wantErr error // from the first Export after reopening
	}{
		{"tail of the pack lost", func(t *testing.T, pack string, size int64) {
			if err := os.Truncate(pack, size/2); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"zeros in the middle", func(t *testing.T, pack string, size int64) {
			f, err := os.OpenFile(pack, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 4096), size/2); err != nil {
				t.Fatal(err)
			}
		}, ErrCorruptBlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			repo := t.TempDir()
			cfg := testConfig()
			cfg.HashOnRead = false
			s, err := New(cfg, repo, nil, nil, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			data := randomBytes(1<<20, 34)
			c, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The import's batches go to two packs at once: damage the
			// larger, which holds most leaves.
			packs, _ := packFiles(t, repo)
			var largest string
			var size int64
			for _, pack := range packs {
				if st, err := os.Stat(pack); err == nil && st.Size() > size {
					largest, size = pack, st.Size()
				}
			}
			if size < 1<<19 {
				t.Fatalf("packs %v: none holds half the file's 1 MiB", packs)
			}
			tc.damage(t, largest, size)
			s, err = New(cfg, repo, nil, nil, nil, Options{})
			if err != nil {
				t.Fatalf("reopen after lost writes: %v", err)
			}
			defer s.Close()
			err = s.Export(ctx, c, filepath.Join(t.TempDir(), "out"), ExportLimits{})
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Export after lost writes = %v, want an error matching %v", err, tc.wantErr)
			}
			if _, err := s.AddReader(ctx, bytes.NewReader(data), AddOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s, c); !bytes.Equal(got, data) {
				t.Fatal("content differs after importing it again")
			}
		})
	}
}

const crashRepoEnv = "VFT_TEST_PACK_CRASH_REPO"

// TestPackStoreCrashHelper is the process TestKillDuringImport kills: it
// imports an endless stream until it dies.
func TestPackStoreCrashHelper(t *testing.T) {
	repo := os.Getenv(crashRepoEnv)
	if repo == "" {
		t.Skip("run by TestKillDuringImport")
	}
	s, err := New(DefaultConfig(), repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(crashModeEnv) == "finished" {
		// One import that returns, then wait to be killed.
		c, err := s.AddReader(context.Background(), bytes.NewReader(randomBytes(3<<20, 37)), AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("imported %s\n", c)
		select {}
	}
	_, err = s.AddReader(context.Background(), &endlessReader{seed: 35}, AddOptions{})
	t.Fatalf("endless import returned: %v", err)
}

const crashModeEnv = "VFT_TEST_PACK_CRASH_MODE"

// An import that returned (and pinned) survives a kill -9 right after:
// the index commits are not synced and pebble had not even written them,
// so the store indexes the blocks again from the packs when it opens.
func TestKillAfterImport(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestPackStoreCrashHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashRepoEnv+"="+repo, crashModeEnv+"=finished")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var root cid.Cid
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "imported "); ok {
			root, err = cid.Decode(s)
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if !root.Defined() {
		cmd.Process.Kill()
		t.Fatal("the importing process printed no CID")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	s := reopen(t, repo)
	if got := readAll(t, s, root); !bytes.Equal(got, randomBytes(3<<20, 37)) {
		t.Fatal("content differs after kill -9")
	}
	if pins, err := s.Pins(ctx); err != nil || len(pins) != 1 || pins[0] != root {
		t.Fatalf("pins after kill -9 = %v, %v; want %s", pins, err, root)
	}
}

type endlessReader struct {
	seed uint64
	buf  []byte
}

func (r *endlessReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		r.seed++
		r.buf = randomBytes(1<<20, r.seed)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// kill -9 in the middle of an import (blocks being appended to a pack
// and indexed in batches) leaves no indexed block that fails its hash,
// and the store opens and imports again.
func TestKillDuringImport(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestPackStoreCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashRepoEnv+"="+repo)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, size := packFiles(t, repo)
		if size > 24<<20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the importing process wrote %d bytes in 60 s: %s", size, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	if strings.Contains(out.String(), "FAIL") && !strings.Contains(out.String(), "signal: killed") && out.Len() > 0 {
		t.Logf("importer output: %s", out.String())
	}

	cfg := DefaultConfig()
	cfg.HashOnRead = true
	s, err := New(cfg, repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	keys, err := s.guard.Blockstore.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys {
		// AllKeysChan gives raw CIDs (the keys carry no codec); the hash
		// check only needs the multihash.
		if _, err := s.Blockstore().Get(ctx, k); err != nil {
			t.Errorf("block %s after kill -9: %v", k, err)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d blocks indexed before the kill; the test did not exercise a crash mid-import", n)
	}
	if st, _ := s.Stat(ctx); st.CorruptBlocks != 0 {
		t.Fatalf("%d of %d blocks failed their hash after kill -9", st.CorruptBlocks, n)
	}
	t.Logf("%d blocks indexed before the kill, all intact", n)
	if _, err := s.AddReader(ctx, bytes.NewReader(randomBytes(3<<20, 36)), AddOptions{}); err != nil {
		t.Fatalf("import after kill -9: %v", err)
	}
}

func reopen(t *testing.T, repo string) *Store {
	t.Helper()
	s, err := New(testConfig(), repo, nil, nil, nil, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func readAll(t *testing.T, s *Store, c cid.Cid) []byte {
	t.Helper()
	rc, err := s.Cat(context.Background(), c, 0, -1)
	if err != nil {
		t.Fatalf("cat %s: %v", c, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatalf("cat %s: %v", c, err)
	}
	return buf.Bytes()
}

// FuzzPackRecovery scans arbitrary bytes as a pack, as the store does at
// open for records its index lost: it must not panic, and every record it
// reports must lie inside the pack and hold a block matching its CRC.
// TestKillAfterImport covers the same path through a real store.
func FuzzPackRecovery(f *testing.F) {
	var good bytes.Buffer
	for i, v := range [][]byte{[]byte("first block"), randomBytes(3000, 50)} {
		key := "/KEY" + string(rune('A'+i))
		hdr := make([]byte, packHeaderLen)
		binary.LittleEndian.PutUint32(hdr[0:], uint32(len(key)))
		binary.LittleEndian.PutUint32(hdr[4:], uint32(len(v)))
		binary.LittleEndian.PutUint32(hdr[8:], crc32.Checksum(v, castagnoli))
		good.Write(hdr)
		good.WriteString(key)
		good.Write(v)
	}
	f.Add(good.Bytes(), int64(0))
	f.Add(good.Bytes()[:good.Len()-7], int64(0))
	f.Add(good.Bytes(), int64(12))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, pack []byte, from int64) {
		n := 0
		err := scanPackRecords(bytes.NewReader(pack), int64(len(pack)), from, func(key []byte, e packEntry) error {
			if e.offset < 0 || e.offset+int64(e.length) > int64(len(pack)) {
				t.Fatalf("record %q at %d+%d is outside a pack of %d bytes", key, e.offset, e.length, len(pack))
			}
			if crc32.Checksum(pack[e.offset:e.offset+int64(e.length)], castagnoli) != e.crc {
				t.Fatalf("record %q reported with a CRC its bytes do not have", key)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if from == 0 && bytes.Equal(pack, good.Bytes()) && n != 2 {
			t.Fatalf("found %d records in a pack of 2", n)
		}
	})
}

// Bitswap goes on answering peers for a moment after the node stops, so
// the block store is read after Close: that must be an error, never a
// panic on the closed index (it crashed a whole test binary in CI).
func TestPackStoreUseAfterClose(t *testing.T) {
	ctx := context.Background()
	p := openTestPackStore(t, t.TempDir())
	key := datastore.NewKey("block")
	if err := p.Put(ctx, key, []byte("data")); err != nil {
		t.Fatal(err)
	}
	// A walk left open across Close, and readers racing it.
	res, err := p.Query(ctx, query.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := p.GetSize(ctx, key); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("GetSize during Close: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatalf("Close with a walk open: %v", err)
	}
	close(stop)
	readers.Wait()

	for name, call := range map[string]func() error{
		"Get":     func() error { _, err := p.Get(ctx, key); return err },
		"Has":     func() error { _, err := p.Has(ctx, key); return err },
		"GetSize": func() error { _, err := p.GetSize(ctx, key); return err },
		"Put":     func() error { return p.Put(ctx, key, []byte("x")) },
		"Delete":  func() error { return p.Delete(ctx, key) },
		"Sync":    func() error { return p.Sync(ctx, datastore.NewKey("")) },
		"Query":   func() error { _, err := p.Query(ctx, query.Query{}); return err },
		"Compact": func() error { _, err := p.Compact(ctx); return err },
		"Batch": func() error {
			b, _ := p.Batch(ctx)
			b.Put(ctx, key, []byte("x"))
			return b.Commit(ctx)
		},
		"open walk": func() error {
			r, ok := res.NextSync()
			if !ok {
				return ErrClosed // ended: also fine
			}
			return r.Error
		},
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if err := res.Close(); err != nil {
		t.Errorf("closing the walk after the store: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Two commits append to two packs at once: a writer in the middle of its
// appends (holding the first lane) does not hold up another, and blocks
// from both are indexed, read back and survive a reopen.
func TestPackStoreWritersAppendAtOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := openTestPackStore(t, dir)
	first := p.lanes[0]
	first.mu.Lock() // a commit busy appending
	wrote := make(chan error, 1)
	go func() { wrote <- p.Put(ctx, datastore.NewKey("second"), []byte("second writer")) }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		first.mu.Unlock()
		t.Fatal("a commit waited for another commit's appends")
	}
	first.mu.Unlock()
	if err := p.Put(ctx, datastore.NewKey("first"), []byte("first writer")); err != nil {
		t.Fatal(err)
	}
	if packs, _ := filepath.Glob(filepath.Join(dir, "*"+packSuffix)); len(packs) != 2 {
		t.Errorf("packs after two writers: %v, want one per lane", packs)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPackStore(t, dir)
	defer p.Close()
	for key, want := range map[string]string{"first": "first writer", "second": "second writer"} {
		got, err := p.Get(ctx, datastore.NewKey(key))
		if err != nil || string(got) != want {
			t.Errorf("Get(%s) after reopening = %q, %v; want %q", key, got, err, want)
		}
	}
}

// A pack a lane has moved on from, whose indexed blocks are all deleted,
// is removed, but not while a commit's appends in it wait to be indexed:
// their index entries would point into a deleted file.
func TestPackStoreKeepsPackWithPendingAppends(t *testing.T) {
	ctx := context.Background()
	p := openTestPackStore(t, t.TempDir())
	defer p.Close()
	old := datastore.NewKey("old")
	if err := p.Put(ctx, old, []byte("deleted while the next block is in flight")); err != nil {
		t.Fatal(err)
	}
	// A commit appends to the lane's pack, which then fills up (the lane
	// moves to a new one) before the commit reaches the index.
	l := p.lane()
	inFlight := []packPut{newPackPut(datastore.NewKey("in-flight"), []byte("appended, not indexed yet"))}
	entries, touched, err := p.appendBatch(l, inFlight, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.rotateLocked(l); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()

	if err := p.Delete(ctx, old); err != nil { // the pack's only indexed block
		t.Fatal(err)
	}
	p.wmu.Lock()
	err = p.indexLocked(inFlight, entries, touched, nil)
	p.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Get(ctx, datastore.NewKey("in-flight"))
	if err != nil || string(got) != "appended, not indexed yet" {
		t.Fatalf("Get of the block indexed after the delete = %q, %v", got, err)
	}
}

// A block deleted from the end of a pack stays deleted when the store is
// opened again. Opening indexes the records past the last one the index
// knows in each pack (those of batches a kill -9 took from the index),
// and took a deleted block at the end of a pack for one of them: GC's
// deletions came back after a restart (TestPackStoreReopenAndCompact
// failed now and then, when its collected root was the last record of a
// pack that kept a live block).
func TestDeletedBlocksStayDeletedAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *packStore { return openTestPackStore(t, dir) }
	key := func(name string) datastore.Key { return datastore.NewKey(name) }
	p := open()
	// One writer at a time: every batch goes to the same lane's pack.
	for _, name := range []string{"kept", "deleted-middle", "kept-2", "deleted-last"} {
		if err := p.Put(ctx, key(name), randomBytes(10_000, uint64(len(name)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"deleted-middle", "deleted-last"} {
		if err := p.Delete(ctx, key(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		p = open()
		for name, want := range map[string]bool{"kept": true, "kept-2": true, "deleted-middle": false, "deleted-last": false} {
			if has, err := p.Has(ctx, key(name)); err != nil || has != want {
				t.Errorf("open %d: Has(%s) = %v, %v; want %v", round+1, name, has, err, want)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A repo from before the index kept each pack's end gets them when it is
// opened, so that a block it deletes later from the end of an old pack
// also stays deleted.
func TestOldPacksGetTheirEndsOnOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *packStore { return openTestPackStore(t, dir) }
	p := open()
	for _, name := range []string{"kept", "last"} {
		if err := p.Put(ctx, datastore.NewKey(name), randomBytes(10_000, uint64(len(name)))); err != nil {
			t.Fatal(err)
		}
	}
	// As an older version left the index: no pack ends.
	if err := p.idx.DeleteRange(packEndKeys.LowerBound, packEndKeys.UpperBound, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open()
	if err := p.Delete(ctx, datastore.NewKey("last")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open()
	defer p.Close()
	if has, _ := p.Has(ctx, datastore.NewKey("last")); has {
		t.Error("a block deleted from the end of a pack written before pack ends were kept is back after a reopen")
	}
	if has, _ := p.Has(ctx, datastore.NewKey("kept")); !has {
		t.Error("the kept block is gone")
	}
}

// openTestPackStore opens the pack store in dir, failing the test if it
// cannot.
func openTestPackStore(t *testing.T, dir string) *packStore {
	t.Helper()
	p, err := openPackStore(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
