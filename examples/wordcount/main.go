// Command wordcount counts the words of every text file under /input
// (recursively; files that are not valid UTF-8 or contain NUL bytes are
// skipped) and writes /output/counts.tsv: "word<TAB>count" lines sorted by
// count, highest first, then by word. A word is a maximal run of letters,
// digits and apostrophes inside a word, lower-cased.
//
//	GOOS=wasip1 GOARCH=wasm go build -o wordcount.wasm ./examples/wordcount
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

func main() {
	in := flag.String("in", "/input", "input directory")
	out := flag.String("out", "/output", "output directory")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	counts := map[string]int{}
	files := 0
	err := filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
			fmt.Fprintln(os.Stderr, "skipping non-text file", path)
			return nil
		}
		files++
		count(string(data), counts)
		return nil
	})
	if err != nil {
		return err
	}
	type entry struct {
		word string
		n    int
	}
	entries := make([]entry, 0, len(counts))
	for w, n := range counts {
		entries = append(entries, entry{w, n})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.word, b.word))
	})
	f, err := os.Create(filepath.Join(out, "counts.tsv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%d\n", e.word, e.n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("%d files, %d distinct words\n", files, len(entries))
	return f.Close()
}

func count(text string, counts map[string]int) {
	isWord := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
	start := -1
	flush := func(end int) {
		if start >= 0 {
			counts[strings.ToLower(strings.Trim(text[start:end], "'"))]++
			start = -1
		}
	}
	for i, r := range text {
		switch {
		case isWord(r):
			if start < 0 {
				start = i
			}
		case (r == '\'' || r == '’') && start >= 0:
			// an apostrophe inside a word ("don't") keeps it going
		default:
			flush(i)
		}
	}
	flush(len(text))
}
