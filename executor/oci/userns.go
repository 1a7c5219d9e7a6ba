package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A container runs in a user namespace of its own: its uids and gids 0 to
// IDRangeSize-1 are the host's HostIDBase to HostIDBase+IDRangeSize-1, ids
// no account on the host has. Its root owns its image's files, but a
// process that escapes the container (a runtime or kernel bug) is nobody
// on the host, not root.
const (
	// DefaultHostIDBase is where the containers' ids start on the host:
	// above every account and below the ids that systemd hands its own
	// containers (0x70000000 up), 64 Ki-aligned as those ranges are.
	DefaultHostIDBase = 0x6000_0000
	// IDRangeSize is how many ids a container has: a Debian image needs
	// root, the system users and nobody (65534).
	IDRangeSize = 1 << 16
)

// CheckHostIDBase refuses a base under which the container's range would
// overlap ordinary accounts (under 65536) or pass the largest id.
func CheckHostIDBase(base uint32) error {
	if base < IDRangeSize || uint64(base)+IDRangeSize > 1<<32-1 {
		return fmt.Errorf("host id base %d is outside %d..%d (the container's %d ids must not overlap the host's accounts or pass 4294967294)",
			base, IDRangeSize, 1<<32-1-IDRangeSize, IDRangeSize)
	}
	return nil
}

// userNamespaceSupported says why this kernel cannot give a container a
// user namespace, or nil.
func userNamespaceSupported() error {
	raw, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil {
		return fmt.Errorf("user namespaces: %w", err)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(raw))); n == 0 {
		return errors.New("this kernel allows no user namespaces (user.max_user_namespaces = 0); run `sysctl -w user.max_user_namespaces=15000`, or set executor.oci.user_namespace = false to run containers as host root without capabilities")
	}
	return nil
}

// prepareUserNamespaces checks that containers can have a user namespace
// with cfg's ids.
func prepareUserNamespaces(cfg *Config) error {
	if cfg.HostIDBase == 0 {
		cfg.HostIDBase = DefaultHostIDBase
	}
	if err := CheckHostIDBase(cfg.HostIDBase); err != nil {
		return fmt.Errorf("executor.oci.host_id_base: %w", err)
	}
	return userNamespaceSupported()
}

// devicesAsMounts turns the spec's device nodes (GPUs) into bind mounts of
// the host's nodes. In a user namespace a runtime cannot mknod, so it binds
// the host file at the device's container path, which is the wrong file or
// none when the host keeps the node elsewhere; the node is found here by
// its type and numbers instead. The device cgroup rules stay as they are.
func devicesAsMounts(spec *specs.Spec) error {
	for _, d := range spec.Linux.Devices {
		host, err := hostDeviceNode(d)
		if err != nil {
			return err
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: d.Path, Type: "bind", Source: host,
			Options: []string{"bind", "nosuid", "noexec"}})
	}
	spec.Linux.Devices = nil
	return nil
}

// hostDeviceNode finds the host's node of d: its own path, udev's
// /dev/char or /dev/block link, or any node under /dev with its numbers.
func hostDeviceNode(d specs.LinuxDevice) (string, error) {
	want := uint64(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	isChar := d.Type != "b"
	matches := func(p string) bool {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			return false
		}
		kind := st.Mode & unix.S_IFMT
		return st.Rdev == want && ((isChar && kind == unix.S_IFCHR) || (!isChar && kind == unix.S_IFBLK))
	}
	link := fmt.Sprintf("/dev/char/%d:%d", d.Major, d.Minor)
	if !isChar {
		link = fmt.Sprintf("/dev/block/%d:%d", d.Major, d.Minor)
	}
	for _, p := range []string{d.Path, link} {
		if matches(p) {
			return p, nil
		}
	}
	for _, dir := range []string{"/dev", "/dev/dri"} {
		list, _ := os.ReadDir(dir)
		for _, e := range list {
			if p := filepath.Join(dir, e.Name()); e.Type()&fs.ModeDevice != 0 && matches(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("device %s (%d:%d) has no node under /dev on this host to bind into the container's user namespace", d.Path, d.Major, d.Minor)
}
