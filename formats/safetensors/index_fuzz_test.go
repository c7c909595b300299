package safetensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// FuzzParseIndex feeds arbitrary bytes to the model.safetensors.index.json
// parser. An error names the file; an accepted index has a weight map
// whose shards are plain file names, and survives a marshal/parse round
// trip unchanged.
func FuzzParseIndex(f *testing.F) {
	b, err := os.ReadFile(testref.Local(f, "unseen", "qwen2-bpe-tied", IndexName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range []string{
		`{"metadata":null,"weight_map":{}}`,
		`{"metadata":{"total_size":1e3,"x":[1,"a",{"b":null}]},"weight_map":{"a":"model-1.safetensors","b":"model-1.safetensors"}}`,
		`{"weight_map":{"a":"../x.safetensors"}}`,
		`{"weight_map":{"a":"."}}`,
		`{"weight_map":null}`,
		`{"Weight_Map":{"a":"x"},"METADATA":{}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := parseIndex(IndexName, b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "safetensors: "+IndexName+": ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if idx.WeightMap == nil {
			t.Fatal("accepted an index without weight_map")
		}
		shards := idx.Shards()
		if !sort.StringsAreSorted(shards) {
			t.Fatalf("shards not sorted: %q", shards)
		}
		for i, s := range shards {
			if s == "" || s == "." || s == ".." || filepath.Base(s) != s || (i > 0 && shards[i-1] == s) {
				t.Fatalf("bad shard name %q in %q", s, shards)
			}
		}
		out, err := json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		idx2, err := parseIndex(IndexName, out)
		if err != nil {
			t.Fatalf("re-encoded index does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(idx, idx2) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", idx2, idx)
		}
	})
}

// TestReadIndexSizeCaps: an index over maxIndexSize, or whose metadata is
// over maxIndexMetadata, is refused before it is decoded, with an error
// naming the file, the size and the limit. The large file is sparse: it
// takes no disk space.
func TestReadIndexSizeCaps(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, IndexName)
	if err := os.WriteFile(big, []byte(`{"weight_map":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 510<<20); err != nil {
		t.Fatal(err)
	}
	_, err := ReadIndex(big)
	if err == nil || !strings.Contains(err.Error(), big) || !strings.Contains(err.Error(), "534773760 bytes, over the 67108864-byte limit") {
		t.Errorf("510 MB index: error %v", err)
	}
	// OpenCheckpoint reports the same error.
	if _, err2 := OpenCheckpoint(dir); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("OpenCheckpoint: error %v, want %v", err2, err)
	}

	meta := `{"metadata":{"x":[` + strings.Repeat("0,", maxIndexMetadata/2) + `0]},"weight_map":{}}`
	_, err = parseIndex("i.json", []byte(meta))
	if err == nil || !strings.Contains(err.Error(), "safetensors: i.json: metadata is 1048585 bytes, over the 1048576-byte limit") {
		t.Errorf("large metadata: error %v", err)
	}
}
