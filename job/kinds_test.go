package job

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/wire"
)

// The job tests use the kinds node/ registers.
func init() {
	RegisterKind(wasm.Kind{})
	RegisterKind(native.Kind{})
	RegisterKind(oci.Kind{})
}

// recipeKind is a kind only this test knows: it stages a "recipe" file
// named in Module and refuses the module "spoiled".
type recipeKind struct{}

func (recipeKind) Name() string { return "recipe" }
func (recipeKind) CheckSpec(s executor.JobSpec) error {
	if s.Module == "spoiled" {
		return errors.New("module spoiled: the recipe kind refuses it")
	}
	return nil
}
func (recipeKind) Content(s executor.JobSpec) []executor.Content {
	return []executor.Content{{Field: "recipe", CID: s.Module, File: "recipe.txt"}}
}
func (recipeKind) Prepare(s executor.JobSpec, staged map[string]string, t *executor.Task) error {
	t.Args = append([]string{"cook", staged["recipe"]}, s.Args...)
	return nil
}

func withFloats(s Spec, floats string) Spec {
	s.Floats = floats
	return s
}

// TestExecutorKindsDecide: a spec's executor fields are checked by the
// kind registered under its name, and job/ knows no kind's rules itself.
func TestExecutorKindsDecide(t *testing.T) {
	spec := func(executor, module string, command ...string) Spec {
		s := validSpec()
		s.Executor, s.Module, s.Command = executor, module, command
		return s
	}
	cases := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"wasm with a module", spec("wasm", fakeCID("m")), ""},
		{"wasm with a command", spec("wasm", fakeCID("m"), "ls"), "command is set for a wasm job"},
		{"native with a command", spec("native", "", "python3", "x.py"), ""},
		{"native without one", spec("native", ""), "command is empty"},
		{"a kind nobody registered", spec("recipe", "any"), `executor "recipe" is not one of native, oci, wasm`},
		{"wasm, floats native", withFloats(spec("wasm", fakeCID("m")), "native"), ""},
		{"wasm, floats portable", withFloats(spec("wasm", fakeCID("m")), "portable"), ""},
		{"wasm, floats misspelt", withFloats(spec("wasm", fakeCID("m")), "fast"), `floats "fast": use portable`},
		{"wasm, floats in capitals", withFloats(spec("wasm", fakeCID("m")), "Native"), `floats "Native"`},
		{"native with floats", withFloats(spec("native", "", "python3"), "native"), `floats = "native" for a native job`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate(t0)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}

	RegisterKind(recipeKind{})
	t.Cleanup(func() {
		kinds.Lock()
		delete(kinds.byName, "recipe")
		kinds.Unlock()
	})
	if err := spec("recipe", "fine").Validate(t0); err != nil {
		t.Fatalf("a registered kind's spec: %v", err)
	}
	if err := spec("recipe", "spoiled").Validate(t0); err == nil || !strings.Contains(err.Error(), "the recipe kind refuses it") {
		t.Fatalf("Validate = %v, want the kind's own refusal", err)
	}
}

// TestWasmFloatsReachTheTask: the spec's floats is what the wasm kind puts
// in the task the executor runs.
func TestWasmFloatsReachTheTask(t *testing.T) {
	for _, floats := range []string{"", "portable", "native"} {
		s := withFloats(validSpec(), floats)
		var task executor.Task
		if err := (wasm.Kind{}).Prepare(s.ForExecutor(), map[string]string{"module": "/staged/module.wasm"}, &task); err != nil {
			t.Fatal(err)
		}
		if task.Floats != floats || task.ModulePath != "/staged/module.wasm" {
			t.Errorf("floats %q: task has Floats %q, ModulePath %q", floats, task.Floats, task.ModulePath)
		}
	}
}

// TestSpecFileFloats: a spec file's floats reaches the offer; "portable",
// the default, is left out so that the offer's bytes and job ID are those
// of a file without the key; a bad value is refused by name.
func TestSpecFileFloats(t *testing.T) {
	add := func(string) (string, error) { return fakeCID("x"), nil }
	encode := func(floats string) (Spec, []byte, error) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "m.wasm"), []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := FileSpec{Module: "m.wasm", Floats: floats}.Resolve(dir, add, t0)
		if err != nil {
			return s, nil, err
		}
		s.Nonce = []byte("fixed nonce") // Resolve draws one
		body, err := wire.Marshal(s)
		return s, body, err
	}
	_, plain, err := encode("")
	if err != nil {
		t.Fatal(err)
	}
	_, portable, err := encode("portable")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, portable) {
		t.Errorf("floats = \"portable\" changed the offer's bytes:\n%x\n%x", plain, portable)
	}
	if bytes.Contains(plain, []byte("floats")) {
		t.Errorf("the default floats is written into the offer: %x", plain)
	}
	native, nativeBody, err := encode("native")
	if err != nil || native.Floats != "native" || !bytes.Contains(nativeBody, []byte("floats")) {
		t.Errorf("floats = \"native\": spec %q, %v", native.Floats, err)
	}
	if _, _, err := encode("fastest"); err == nil || !strings.Contains(err.Error(), `floats "fastest"`) {
		t.Errorf("floats = \"fastest\": %v, want it named", err)
	}
}
