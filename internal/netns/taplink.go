package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A delayed, lossy link made in user space. This kernel family (and many CI
// kernels) has no sch_netem and no sch_fq, so neither `tc netem` nor an
// EDT/BPF delay is available; TAP devices are (CONFIG_TUN). A shaped host's
// eth0 is a TAP device in its namespace, its bridge port another TAP device
// in the switch namespace, and two goroutines of the test process copy
// frames between the two file descriptors: host→switch frames wait in a
// FIFO until their due time (so order is kept and throughput does not fall
// with the delay) and LossPercent of them are dropped; switch→host frames
// pass at once, as netem on the host's eth0 would only touch what the host
// sends.
//
// Both devices carry a virtio-net header (IFF_VNET_HDR) and accept TSO/GSO
// (TUNSETOFFLOAD), as qemu's TAP backend does: a 64 KiB TCP super-frame
// crosses the forwarder in one read and one write instead of 45.

// tapLink is one forwarder; close stops it and removes both devices (a
// non-persistent TAP device disappears with its last file descriptor).
type tapLink struct {
	host, sw *os.File // the host's eth0 and its bridge port
	delay    atomic.Int64
	lossPPM  atomic.Int64 // dropped frames per million
	done     chan struct{}
	wg       sync.WaitGroup
}

// frame is one host→switch frame waiting for its due time.
type frame struct {
	buf []byte
	due time.Time
}

const (
	vnetHdrLen = 12                 // struct virtio_net_hdr_v1 (with num_buffers), set by TUNSETVNETHDRSZ
	maxFrame   = vnetHdrLen + 65550 // a GSO super-frame: 64 KiB of IP plus the Ethernet header
	// queued bounds the frames in flight inside the delay: at 64 KiB a
	// frame that is 64 MiB, far more than a 20 ms RTT path holds. A full
	// queue holds the reader back and the TAP device's own queue
	// (txqueuelen) then drops, as a full router buffer would.
	queued = 1024
)

var framePool = sync.Pool{New: func() any { b := make([]byte, maxFrame); return &b }}

// openTap creates TAP device name inside namespace ns and returns its file,
// nonblocking so that Go's poller serves reads and close interrupts them.
// The device belongs to the namespace the opening thread is in, so the
// thread is moved into ns for the open and back afterwards.
func openTap(ns, name string) (*os.File, error) {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open this thread's network namespace: %w", err)
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	fd, openErr := openTapHere(name)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so Go ends it with this goroutine
		// instead of running other code in the wrong namespace.
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("return from namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	if openErr != nil {
		return nil, fmt.Errorf("TAP device %s in %s: %w", name, ns, openErr)
	}
	return os.NewFile(uintptr(fd), ns+"/"+name), nil
}

// openTapHere opens /dev/net/tun in the calling thread's namespace as TAP
// device name with a virtio-net header and TSO/GSO offloads on.
func openTapHere(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun (needs CONFIG_TUN): %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF: %w", err)
	}
	hdr := int32(vnetHdrLen)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETVNETHDRSZ, uintptr(unsafe.Pointer(&hdr))); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETVNETHDRSZ: %w", e)
	}
	offload := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offload); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETOFFLOAD: %w", err)
	}
	return fd, nil
}

// set changes the delay and loss of a running link.
func (l *tapLink) set(s Shaping) {
	l.delay.Store(int64(s.Delay))
	l.lossPPM.Store(int64(s.LossPercent * 10000))
}

// start runs the two copying goroutines.
func (l *tapLink) start() {
	q := make(chan frame, queued)
	l.wg.Add(3)
	go func() { // host → queue, dropping the lost frames
		defer l.wg.Done()
		defer close(q)
		for {
			bp := framePool.Get().(*[]byte)
			n, err := l.host.Read(*bp)
			if err != nil {
				framePool.Put(bp)
				if errors.Is(err, os.ErrClosed) {
					return
				}
				// Not the end (the device may be down for a while): try
				// again, without spinning on an error that persists.
				time.Sleep(time.Millisecond)
				continue
			}
			if p := l.lossPPM.Load(); p > 0 && rand.Int64N(1_000_000) < p {
				framePool.Put(bp)
				continue
			}
			select {
			case q <- frame{buf: (*bp)[:n], due: time.Now().Add(time.Duration(l.delay.Load()))}:
			case <-l.done:
				return
			}
		}
	}()
	go func() { // queue → switch, each frame at its due time
		defer l.wg.Done()
		for f := range q {
			if d := time.Until(f.due); d > 0 {
				select {
				case <-time.After(d):
				case <-l.done:
					return
				}
			}
			l.sw.Write(f.buf) // an error (the port is down) loses the frame, as a wire would
			b := f.buf[:cap(f.buf)]
			framePool.Put(&b)
		}
	}()
	go func() { // switch → host, at once
		defer l.wg.Done()
		buf := make([]byte, maxFrame)
		for {
			n, err := l.sw.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				time.Sleep(time.Millisecond)
				continue
			}
			l.host.Write(buf[:n])
		}
	}()
}

// close stops the goroutines and closes both devices.
func (l *tapLink) close() {
	close(l.done)
	l.host.Close()
	l.sw.Close()
	l.wg.Wait()
}

// linkInfo is what `ip -j addr show dev eth0` says about the link a TAP
// pair replaces.
type linkInfo struct {
	Address  string `json:"address"` // MAC
	MTU      int    `json:"mtu"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func showLink(ns, dev string) (linkInfo, error) {
	out, err := exec.Command("ip", "-n", ns, "-j", "addr", "show", "dev", dev).Output()
	if err != nil {
		return linkInfo{}, fmt.Errorf("ip -n %s addr show dev %s: %w", ns, dev, err)
	}
	var links []linkInfo
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return linkInfo{}, fmt.Errorf("ip -n %s addr show dev %s: unexpected output %q", ns, dev, out)
	}
	return links[0], nil
}
