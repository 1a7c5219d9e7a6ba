package kubo

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// NonLoopbackSockets lists the TCP and UDP sockets of process pid whose
// local or remote address is neither loopback nor unset, read from
// /proc/<pid>/fd and /proc/<pid>/net/{tcp,tcp6,udp,udp6}. It is how the
// tests check that a process sent nothing beyond 127.0.0.1 / ::1, and
// listens nowhere else (mDNS, for one, would bind 0.0.0.0:5353).
func NonLoopbackSockets(pid int) ([]string, error) {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var bad []string
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			local, err1 := parseProcAddr(f[1])
			remote, err2 := parseProcAddr(f[2])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("parse /proc/%d/net/%s line %q", pid, proto, line)
			}
			// A listening or unconnected socket has remote 0; its local
			// address must still be loopback.
			localOK := local.IsLoopback()
			remoteOK := remote.IsUnspecified() || remote.IsLoopback()
			if !localOK || !remoteOK {
				bad = append(bad, fmt.Sprintf("%s %s -> %s", proto, local, remote))
			}
		}
	}
	return bad, nil
}

// parseProcAddr decodes "0100007F:1F90" (IPv4) or the 32-digit IPv6 form:
// the address is stored as 32-bit words in host (little-endian) order.
func parseProcAddr(s string) (net.IP, error) {
	addr, _, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("no port in %q", s)
	}
	b, err := hex.DecodeString(addr)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), nil
}
