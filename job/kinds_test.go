package job

import (
	"errors"
	"strings"
	"testing"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/executor/native"
	"github.com/vft-network/vft/executor/oci"
	"github.com/vft-network/vft/executor/wasm"
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
