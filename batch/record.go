package batch

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/quantbridge/quantbridge/internal/atomicfile"
)

const recordVersion = 1

// FileStamp identifies one input file by size and modification time.
type FileStamp struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

// EvalResult is what scoring one output gives.
type EvalResult struct {
	PPL       float64 `json:"ppl"`
	PPLStderr float64 `json:"ppl_stderr"`
	// KL fields are set when the output was compared with its base model.
	HasKL     bool    `json:"has_kl"`
	KLD       float64 `json:"kld"`
	KLDStderr float64 `json:"kld_stderr"`
	Top1      float64 `json:"top1_agreement"`
	Seconds   float64 `json:"seconds"`
}

// Record is written beside an output once the item is complete.
type Record struct {
	Version       int         `json:"version"`
	Item          string      `json:"item"`
	Target        Target      `json:"target"`
	Input         string      `json:"input"`
	InputStamp    []FileStamp `json:"input_stamp"`
	Output        string      `json:"output"`
	Bytes         int64       `json:"bytes"`
	BitsPerWeight float64     `json:"bits_per_weight"`
	Seconds       float64     `json:"seconds"`
	// EvalKey identifies the evaluation settings Eval was computed with.
	EvalKey string      `json:"eval_key,omitempty"`
	Eval    *EvalResult `json:"eval,omitempty"`
}

func recordPath(output string) string { return output + ".qb.json" }

// stampInput lists the files of a model path (a file or a directory tree),
// sorted by name.
func stampInput(path string) ([]FileStamp, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []FileStamp{{filepath.Base(path), info.Size(), info.ModTime().UnixNano()}}, nil
	}
	var out []FileStamp
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		out = append(out, FileStamp{filepath.ToSlash(rel), fi.Size(), fi.ModTime().UnixNano()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// readRecord returns the record beside output, or nil if there is none or
// it cannot be parsed (then the item is simply redone).
func readRecord(output string) *Record {
	data, err := os.ReadFile(recordPath(output))
	if err != nil {
		return nil
	}
	var r Record
	if json.Unmarshal(data, &r) != nil || r.Version != recordVersion {
		return nil
	}
	return &r
}

// writeRecord writes the record atomically (temporary file, fsync, rename).
func writeRecord(r *Record) error {
	data, err := jsonIndent(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(recordPath(r.Output), data)
}

// writeFileAtomic writes data to path (mode 0644, like the outputs the
// records and reports describe), creating its directory if needed, through
// a synced temporary file renamed into place.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	err := atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// outputSize is the size of an output file, or the total of a directory's
// regular files.
func outputSize(path string) (int64, error) {
	st, err := stampInput(path)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, s := range st {
		n += s.Size
	}
	return n, nil
}
