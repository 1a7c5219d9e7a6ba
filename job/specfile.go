package job

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ipfs/go-cid"

	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/verify"
)

// FileSpec is a job spec as a person writes it (`vft job submit job.toml`):
// local paths instead of CIDs, durations and sizes in words. Resolve turns
// it into a Spec by adding the files to the content store.
type FileSpec struct {
	Executor string `toml:"executor"`
	// Module is the path of the .wasm file (relative to the spec file).
	Module  string   `toml:"module"`
	Command []string `toml:"command"`
	// Image is an OCI image layout's CID, for executor "oci" (`vft image
	// import` prints it).
	Image string `toml:"image"`
	// Inputs are paths mounted read-only under /input, rsync-style: "dir/"
	// mounts the directory's contents at /input, "dir" or "file" mounts it
	// at /input/<name>, and "src:name" mounts src at /input/name. A src
	// that is a CID and no local path is content already on the network
	// (model weights, a dataset): "bafy…:model" mounts it at /input/model.
	Inputs []string          `toml:"inputs"`
	Args   []string          `toml:"args"`
	Env    map[string]string `toml:"env"`
	Seed   uint64            `toml:"seed"`

	Timeout   units.Duration `toml:"timeout"`
	Memory    units.Bytes    `toml:"memory"`
	CPU       uint32         `toml:"cpu"`
	GPUs      uint32         `toml:"gpus"`
	GPUMemory units.Bytes    `toml:"gpu_memory"`
	GPUModel  string         `toml:"gpu_model"`
	MaxOutput units.Bytes    `toml:"max_output"`

	Redundancy uint32  `toml:"redundancy"`
	Quorum     uint32  `toml:"quorum"`
	Verify     string  `toml:"verify"`
	SpotChance float64 `toml:"spot_chance"` // 0..1, for verify = "spot"
	RelTol     float64 `toml:"rel_tol"`     // for verify = "tolerance"
	AbsTol     float64 `toml:"abs_tol"`
	Verifier   string  `toml:"verifier"` // path of the verifier module, for verify = "custom"

	Reward   uint64         `toml:"reward"`
	Mint     string         `toml:"mint"`
	Escrow   bool           `toml:"escrow"`   // lock the reward in an SPL multisig before work starts
	Deadline units.Duration `toml:"deadline"` // from submission

	// Floats is a wasm job's float mode: "portable" (the default) or
	// "native" (docs/JOBSPEC.md says when to choose which).
	Floats string `toml:"floats"`
}

// LoadFile reads a spec file strictly: an unknown key is an error naming it.
func LoadFile(path string) (FileSpec, error) {
	var fs FileSpec
	md, err := toml.DecodeFile(path, &fs)
	if err != nil {
		return FileSpec{}, fmt.Errorf("job spec %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return FileSpec{}, fmt.Errorf("job spec %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	return fs, nil
}

// checkNumbers refuses the numbers that would wrap when they become the
// spec's integers: a negative tolerance used to become about 1.8e19 parts
// per billion, so a tolerance job accepted any result.
func (f FileSpec) checkNumbers() error {
	if err := f.verifyTerms().Check(); err != nil {
		return err
	}
	for _, size := range []struct {
		key string
		v   units.Bytes
	}{{"memory", f.Memory}, {"gpu_memory", f.GPUMemory}, {"max_output", f.MaxOutput}} {
		if size.v < 0 {
			return fmt.Errorf("%s = %s is negative", size.key, size.v)
		}
	}
	return nil
}

// verifyTerms are the file's verify keys, as verify reads them.
func (f FileSpec) verifyTerms() verify.Terms {
	return verify.Terms{Mode: f.Verify, Workers: f.Redundancy, Quorum: f.Quorum,
		SpotChance: f.SpotChance, RelTol: f.RelTol, AbsTol: f.AbsTol}
}

// AddFunc imports a local file or directory and returns its CID.
type AddFunc func(path string) (string, error)

// Resolve imports the module and inputs (paths relative to baseDir) and
// fills defaults: 1 worker with exact verification, a 10 min timeout,
// 512 MiB of memory, a one-hour deadline. The result is validated.
func (f FileSpec) Resolve(baseDir string, add AddFunc, now time.Time) (Spec, error) {
	abs := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	if err := f.checkNumbers(); err != nil {
		return Spec{}, err
	}
	s := Spec{
		Executor: f.Executor, Command: f.Command, Image: f.Image, Args: f.Args, Env: f.Env, Seed: f.Seed,
		Reward: f.Reward, Mint: f.Mint, Escrow: f.Escrow, Floats: f.Floats,
		Needs: Resources{
			CPUCores: f.CPU, MemoryBytes: uint64(f.Memory), GPUs: f.GPUs, GPUMemoryBytes: uint64(f.GPUMemory),
			GPUModel: f.GPUModel, TimeoutMS: uint64(f.Timeout.Std() / time.Millisecond), MaxOutputBytes: uint64(f.MaxOutput),
		},
	}
	var err error
	if s.Verify, err = f.verifyTerms().Policy(); err != nil {
		return Spec{}, err
	}
	if s.Floats == "portable" {
		s.Floats = "" // the default is left out of the offer: one byte form, one job ID
	}
	if s.Executor == "" && s.Image != "" {
		s.Executor = "oci"
	} else if s.Executor == "" {
		s.Executor = ExecutorWASM
	}
	if s.Args == nil {
		s.Args = []string{}
	}
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	if s.Needs.TimeoutMS == 0 {
		s.Needs.TimeoutMS = uint64((10 * time.Minute).Milliseconds())
	}
	if s.Needs.MemoryBytes == 0 {
		s.Needs.MemoryBytes = 512 << 20
	}
	deadline := f.Deadline.Std()
	if deadline == 0 {
		deadline = time.Hour
	}
	s.Deadline = now.Add(deadline).UnixMilli()
	s.Nonce = make([]byte, 16)
	if _, err := rand.Read(s.Nonce); err != nil {
		return Spec{}, err
	}

	if f.Module != "" {
		id, err := addPath(add, abs(f.Module), "module")
		if err != nil {
			return Spec{}, err
		}
		s.Module = id
	}
	if f.Verifier != "" {
		id, err := addPath(add, abs(f.Verifier), "verifier")
		if err != nil {
			return Spec{}, err
		}
		s.Verify.Verifier = id
	}
	s.Inputs = []Input{}
	for _, in := range f.Inputs {
		src, mount := in, ""
		if i := strings.LastIndex(in, ":"); i > 0 {
			src, mount = in[:i], in[i+1:]
		} else if !strings.HasSuffix(in, "/") {
			mount = filepath.Base(filepath.Clean(in))
		}
		id, err := inputCID(add, abs(src), src)
		if err != nil {
			return Spec{}, err
		}
		s.Inputs = append(s.Inputs, Input{CID: id, Path: mount})
	}
	if err := s.Validate(now); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// inputCID adds the input at path p, or takes src as the CID of content
// already on the network when it is one and no such path exists.
func inputCID(add AddFunc, p, src string) (string, error) {
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		if c, err := cid.Decode(src); err == nil {
			return c.String(), nil
		}
	}
	return addPath(add, p, "input")
}

func addPath(add AddFunc, p, what string) (string, error) {
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s %s does not exist", what, p)
		}
		return "", fmt.Errorf("%s %s: %w", what, p, err)
	}
	id, err := add(p)
	if err != nil {
		return "", fmt.Errorf("add %s %s: %w", what, p, err)
	}
	return id, nil
}
