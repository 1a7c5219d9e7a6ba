package storage

import (
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// TestRecentSet: the set of blocks a fetch hashed on arrival holds the
// last size of them, forgets on request, and a nil set (flatfs, no
// checksum of its own) holds none, so every read there is hashed.
func TestRecentSet(t *testing.T) {
	c := func(i int) cid.Cid {
		mh, err := multihash.Sum([]byte(fmt.Sprint(i)), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		return cid.NewCidV1(cid.Raw, mh)
	}
	r := newRecentSet(3)
	for i := range 5 {
		r.add(c(i))
	}
	r.add(c(4)) // again: no new slot
	for i, want := range []bool{false, false, true, true, true} {
		if got := r.has(c(i)); got != want {
			t.Errorf("after adding 0..4 to a set of 3: has(%d) = %v, want %v", i, got, want)
		}
	}
	r.forget(c(3))
	if r.has(c(3)) {
		t.Error("a forgotten block is still held")
	}
	r.add(c(5)) // takes 2's slot, the oldest
	if r.has(c(2)) || !r.has(c(4)) || !r.has(c(5)) {
		t.Errorf("after forgetting 3 and adding 5: has 2 %v, 4 %v, 5 %v; want false, true, true", r.has(c(2)), r.has(c(4)), r.has(c(5)))
	}
	var none *recentSet
	none.add(c(1))
	none.forget(c(1))
	if none.has(c(1)) {
		t.Error("a nil set holds a block")
	}
}
