package wasm

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// pruneCache keeps the on-disk compilation cache under CacheMaxBytes by
// removing its oldest files. wazero writes one file per compiled module and
// never removes any, so without this a node that runs many distinct modules
// (every job can bring its own) fills its disk with machine code. A module
// whose file is removed is compiled again when it next runs; a file removed
// while wazero reads it stays readable until closed.
func (e *Executor) pruneCache() {
	if e.cfg.CacheDir == "" {
		return
	}
	type entry struct {
		path string
		size int64
		mod  time.Time
	}
	var files []entry
	var total int64
	_ = filepath.WalkDir(e.cfg.CacheDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		// wazero writes a module's code to "<key>.*.tmp" and renames it:
		// a fresh one is being written now; an old one was left by a crash.
		if strings.HasSuffix(p, ".tmp") {
			if time.Since(info.ModTime()) > time.Hour {
				_ = os.Remove(p)
			}
			return nil
		}
		{
			files = append(files, entry{p, info.Size(), info.ModTime()})
			total += info.Size()
		}
		return nil
	})
	if total <= e.cfg.CacheMaxBytes {
		return
	}
	slices.SortFunc(files, func(a, b entry) int { return a.mod.Compare(b.mod) })
	for _, f := range files {
		if total <= e.cfg.CacheMaxBytes {
			break
		}
		if err := os.Remove(f.path); err == nil {
			total -= f.size
			e.log.Debug("removed compiled module from the cache", "file", f.path, "bytes", f.size)
		}
	}
}
