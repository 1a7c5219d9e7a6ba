// Package repo is a node's directory on disk: config.toml, identity.key,
// api.token, datastore/, blocks/ and, while a daemon runs, its api address
// file and lock.
package repo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/identity"
)

// File names inside a repo.
const (
	ConfigFile   = "config.toml"
	IdentityFile = "identity.key"
	TokenFile    = "api.token"
	APIFile      = "api"
	LockFile     = "repo.lock"
)

// EnvPath names the repo when --repo is not given.
const EnvPath = "VFT_PATH"

var (
	// ErrNotInitialised reports a directory without a repo in it.
	ErrNotInitialised = errors.New("repo is not initialised")
	// ErrExists reports an attempt to initialise over an existing repo.
	ErrExists = errors.New("repo already exists")
	// ErrLocked reports a repo another daemon is using.
	ErrLocked = errors.New("repo is in use by another daemon")
	// ErrInsecureToken reports an API token file that other users can read.
	ErrInsecureToken = errors.New("API token file is readable by other users")
	// ErrNoDaemon reports that no daemon is running for the repo.
	ErrNoDaemon = errors.New("no daemon is running")
)

// Resolve picks the repo directory: the flag, else $VFT_PATH, else ~/.vft.
func Resolve(flagValue string, getenv func(string) string) (string, error) {
	dir := flagValue
	if dir == "" {
		dir = getenv(EnvPath)
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the repo: no --repo, no $%s and no home directory (%w)", EnvPath, err)
		}
		dir = filepath.Join(home, ".vft")
	}
	if strings.HasPrefix(dir, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, dir[2:])
		}
	}
	return filepath.Abs(dir)
}

// Repo is an opened repo directory.
type Repo struct {
	dir string
}

// Init creates a repo in dir with the given config and a new identity. It
// refuses a directory that already holds a repo, and removes whatever it
// wrote if any step fails, so nothing is left half-written.
func Init(dir string, cfg config.Config) (repo *Repo, key *identity.Key, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	for _, name := range []string{ConfigFile, IdentityFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil, nil, fmt.Errorf("%w at %s: it already holds %s; use another --repo or remove it first", ErrExists, dir, name)
		}
	}
	created, err := mkdirTracked(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("create repo %s: %w", dir, err)
	}
	var written []string
	defer func() {
		if err == nil {
			return
		}
		for _, p := range written {
			os.RemoveAll(p)
		}
		if created {
			os.Remove(dir)
		}
	}()

	key, err = identity.Generate()
	if err != nil {
		return nil, nil, err
	}
	keyPath := filepath.Join(dir, IdentityFile)
	if err = key.Save(keyPath); err != nil {
		return nil, nil, err
	}
	written = append(written, keyPath)

	tokenPath := filepath.Join(dir, TokenFile)
	if err = writeToken(tokenPath); err != nil {
		return nil, nil, err
	}
	written = append(written, tokenPath)

	for _, sub := range []string{"datastore", "blocks"} {
		p := filepath.Join(dir, sub)
		if err = os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, nil, fmt.Errorf("create %s: %w", p, err)
		}
		written = append(written, p)
	}
	// The config goes last: its presence is what marks a repo as complete.
	cfgPath := filepath.Join(dir, ConfigFile)
	if err = cfg.Write(cfgPath); err != nil {
		return nil, nil, err
	}
	return &Repo{dir: dir}, key, nil
}

func mkdirTracked(dir string) (created bool, err error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	return true, nil
}

// Open opens an initialised repo.
func Open(dir string) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: run `vft init` first (or point --repo / $%s at your repo)", ErrNotInitialised, dir, EnvPath)
		}
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	return &Repo{dir: dir}, nil
}

// Dir is the repo's directory.
func (r *Repo) Dir() string { return r.dir }

// Path joins name onto the repo directory.
func (r *Repo) Path(name ...string) string {
	return filepath.Join(append([]string{r.dir}, name...)...)
}

// Config loads the config file and the environment.
func (r *Repo) Config(environ []string) (config.Config, error) {
	return config.Load(r.Path(ConfigFile), environ)
}

// Identity loads the node's key.
func (r *Repo) Identity() (*identity.Key, error) { return identity.Load(r.Path(IdentityFile)) }

// APIToken returns the token state-changing API calls need, creating it if
// an older repo has none.
func (r *Repo) APIToken() (string, error) {
	path := r.Path(TokenFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := writeToken(path); err != nil {
			return "", err
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	// Like identity.key (and ssh's keys): the token drives the node and
	// its wallet, so a file others can read is refused, not used.
	if info, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	} else if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %04o; run `chmod 600 %s` (or delete it and restart the daemon for a new token, if others may have read it)", ErrInsecureToken, path, perm, path)
	}
	token := strings.TrimSpace(string(data))
	if len(token) < 32 {
		return "", fmt.Errorf("API token in %s is too short: delete the file and restart the daemon to make a new one", path)
	}
	return token, nil
}

func writeToken(path string) error {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("generate API token: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write API token: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(buf) + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("write API token %s: %w", path, err)
	}
	return nil
}

// Lock takes the repo's daemon lock, so two daemons never share a repo.
// The lock is released when the returned function is called or the
// process dies.
func (r *Repo) Lock() (unlock func(), err error) {
	path := r.Path(LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repo: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s; stop that daemon first (`vft id` shows its API address)", ErrLocked, r.dir)
		}
		return nil, fmt.Errorf("lock repo %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// WriteAPIAddr records the running daemon's API address.
func (r *Repo) WriteAPIAddr(addr string) error {
	path := r.Path(APIFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("write API address: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write API address: %w", err)
	}
	return nil
}

// RemoveAPIAddr removes the address file when the daemon stops.
func (r *Repo) RemoveAPIAddr() error {
	if err := os.Remove(r.Path(APIFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// APIAddr returns the running daemon's API address (host:port).
func (r *Repo) APIAddr() (string, error) {
	data, err := os.ReadFile(r.Path(APIFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w for repo %s: start one with `vft daemon`", ErrNoDaemon, r.dir)
	}
	if err != nil {
		return "", fmt.Errorf("read API address: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
