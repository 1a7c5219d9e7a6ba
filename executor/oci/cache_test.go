package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openImage(t *testing.T, body string) *Image {
	t.Helper()
	img, err := Open(writeLayout(t, imageOf(t, "", layerOf(t, file("data", body)))), nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCacheHitDoesNotUnpackAgain(t *testing.T) {
	c, err := OpenCache(t.TempDir(), 1<<20, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := openImage(t, "one")
	root1, release, hit, err := c.Get(context.Background(), img)
	if err != nil || hit {
		t.Fatalf("first Get: hit=%v err=%v", hit, err)
	}
	release()
	root2, release, hit, err := c.Get(context.Background(), img)
	if err != nil || !hit || root2 != root1 {
		t.Fatalf("second Get: %s hit=%v err=%v, want %s from the cache", root2, hit, err, root1)
	}
	release()
	if s := c.Stats(); s.Unpacks != 1 || s.Entries != 1 {
		t.Fatalf("stats %+v, want one unpack, one entry", s)
	}
	if b, err := os.ReadFile(filepath.Join(root2, "data")); err != nil || string(b) != "one" {
		t.Fatalf("data = %q, %v", b, err)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	a, b, c := openImage(t, strings.Repeat("a", 10_000)), openImage(t, strings.Repeat("b", 10_000)), openImage(t, strings.Repeat("c", 10_000))
	// Room for two images of ~13 KB (content plus entry costs), not three.
	cache, err := OpenCache(dir, 30_000, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(img *Image) {
		t.Helper()
		_, release, _, err := cache.Get(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	get(a)
	get(b)
	get(a) // a is now more recent than b
	get(c) // evicts b
	if !cache.Has(a.Digest.Hex) || cache.Has(b.Digest.Hex) || !cache.Has(c.Digest.Hex) {
		t.Fatalf("after a, b, a, c: has a=%v b=%v c=%v, want b evicted", cache.Has(a.Digest.Hex), cache.Has(b.Digest.Hex), cache.Has(c.Digest.Hex))
	}
	if _, err := os.Stat(filepath.Join(dir, b.Digest.Hex)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("evicted rootfs still on disk: %v", err)
	}
	if s := cache.Stats(); s.Bytes > 30_000 {
		t.Fatalf("cache holds %d bytes, over its 30000", s.Bytes)
	}

	// A reopened cache knows its entries and forgets unfinished unpacks.
	if err := os.Mkdir(filepath.Join(dir, ".crashed-unpack"), 0o700); err != nil {
		t.Fatal(err)
	}
	again, err := OpenCache(dir, 30_000, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Has(a.Digest.Hex) || !again.Has(c.Digest.Hex) || again.Stats().Entries != 2 {
		t.Fatalf("reopened cache: %+v", again.Stats())
	}
	if _, err := os.Stat(filepath.Join(dir, ".crashed-unpack")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("unfinished unpack not removed")
	}
}

func TestCacheKeepsImagesInUse(t *testing.T) {
	cache, err := OpenCache(t.TempDir(), 15_000, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := openImage(t, strings.Repeat("a", 10_000)), openImage(t, strings.Repeat("b", 10_000))
	rootA, releaseA, _, err := cache.Get(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	_, releaseB, _, err := cache.Get(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootA, "data")); err != nil {
		t.Fatalf("a rootfs in use was evicted: %v", err)
	}
	releaseA() // over the limit and unused now: a goes, b is still in use
	releaseB()
	if s := cache.Stats(); s.Entries != 1 || !cache.Has(b.Digest.Hex) {
		t.Fatalf("after release: %+v, has b=%v", s, cache.Has(b.Digest.Hex))
	}
}

func TestCacheRefusesImageLargerThanTheCache(t *testing.T) {
	cache, err := OpenCache(t.TempDir(), 4_000, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = cache.Get(context.Background(), openImage(t, strings.Repeat("x", 10_000)))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "cache") {
		t.Fatalf("Get: %v, want ErrTooLarge naming the cache", err)
	}
	if s := cache.Stats(); s.Entries != 0 {
		t.Fatalf("stats %+v after a refused image", s)
	}
	entries, _ := os.ReadDir(cache.dir)
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestCacheUnpacksOnceForConcurrentRuns(t *testing.T) {
	cache, err := OpenCache(t.TempDir(), 1<<20, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := openImage(t, "shared")
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, release, _, err := cache.Get(context.Background(), img)
			if err == nil {
				release()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := cache.Stats(); s.Unpacks != 1 || s.Entries != 1 {
		t.Fatalf("stats %+v, want one unpack for four concurrent Gets", s)
	}
}
