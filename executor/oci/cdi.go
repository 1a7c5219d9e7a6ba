package oci

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// ErrNoCDI: a task asks for GPUs and no CDI spec names them.
var ErrNoCDI = errors.New("GPU not found in the CDI specs")

// errUnresolved marks ErrNoCDI where no spec names a GPU (rather than a
// spec that does not apply): injection without CDI may then serve.
var errUnresolved = errors.New("not found")

// DefaultCDIKind is the CDI kind the NVIDIA Container Toolkit writes
// (`nvidia-ctk cdi generate`): devices are named by index, by UUID and "all".
const DefaultCDIKind = "nvidia.com/gpu"

// cdiFix is what to run on a miner without CDI specs for its GPUs.
const cdiFix = "generate them with `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (NVIDIA Container Toolkit)"

// gpuDevices injects the GPUs (NVML UUIDs) into spec from the CDI specs in
// dirs: their device nodes, device cgroup rules, environment, mounts (the
// driver's libraries) and hooks, as the NVIDIA toolkit describes them.
func gpuDevices(spec *specs.Spec, dirs []string, kind string, uuids []string) error {
	if len(uuids) == 0 {
		return nil
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if err != nil && cache == nil {
		return fmt.Errorf("%w: read CDI specs in %s: %v", ErrNoCDI, strings.Join(dirs, ", "), err)
	}
	names := make([]string, len(uuids))
	for i, u := range uuids {
		names[i] = kind + "=" + u
	}
	unresolved, err := cache.InjectDevices(spec, names...)
	if len(unresolved) > 0 {
		known := cache.ListDevices()
		have := "no CDI devices are defined"
		if len(known) > 0 {
			have = "the CDI specs define " + strings.Join(known, ", ")
		}
		return fmt.Errorf("%w: %s %w in %s (%s); %s", ErrNoCDI, strings.Join(unresolved, ", "), errUnresolved,
			strings.Join(dirs, ", "), have, cdiFix)
	}
	if err != nil {
		return fmt.Errorf("%w: apply CDI edits for %s: %v", ErrNoCDI, strings.Join(names, ", "), err)
	}
	return nil
}

// cdiDevices lists the devices of kind defined in dirs, and the spec
// files' errors, for Doctor.
func cdiDevices(dirs []string, kind string) ([]string, []string) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if cache == nil {
		return nil, []string{err.Error()}
	}
	var devs []string
	for _, d := range cache.ListDevices() {
		if strings.HasPrefix(d, kind+"=") {
			devs = append(devs, d)
		}
	}
	var problems []string
	for file, errs := range cache.GetErrors() {
		for _, e := range errs {
			problems = append(problems, file+": "+e.Error())
		}
	}
	slices.Sort(problems)
	return devs, problems
}
