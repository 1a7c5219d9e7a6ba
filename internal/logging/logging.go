// Package logging builds the node's slog handler from config and routes the
// logs of go-libp2p and the IPFS libraries (go-log, zap) through it, so an
// operator reads one stream in one format.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
)

// Config is the `[log]` section of the node's config.
type Config struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is auto (text on a terminal, JSON otherwise), text or json.
	Format string `toml:"format"`
	// LibP2PLevel is the level for go-libp2p and IPFS library logs, which
	// are chatty at info.
	LibP2PLevel string `toml:"libp2p_level"`
}

// DefaultConfig logs at info, libraries at warn.
func DefaultConfig() Config {
	return Config{Level: "info", Format: "auto", LibP2PLevel: "warn"}
}

// Validate names a bad level or format.
func (c Config) Validate() error {
	if _, err := ParseLevel(c.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	if _, err := ParseLevel(c.LibP2PLevel); err != nil {
		return fmt.Errorf("log.libp2p_level: %w", err)
	}
	switch c.Format {
	case "auto", "text", "json":
		return nil
	}
	return fmt.Errorf("log.format %q is not one of auto, text, json", c.Format)
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// NewHandler returns a handler writing to w at the configured level, in
// text when w is a terminal (or by config) and JSON otherwise.
func NewHandler(cfg Config, w io.Writer) (slog.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := ParseLevel(cfg.Level)
	opts := &slog.HandlerOptions{Level: level}
	if useText(cfg.Format, w) {
		return slog.NewTextHandler(w, opts), nil
	}
	return slog.NewJSONHandler(w, opts), nil
}

func useText(format string, w io.Writer) bool {
	switch format {
	case "text":
		return true
	case "json":
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// LevelFilter lets through records at or above a level; it sits in front of
// the library logs.
type LevelFilter struct {
	Level slog.Leveler
	slog.Handler
}

// Enabled implements slog.Handler.
func (f LevelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.Level.Level() && f.Handler.Enabled(ctx, l)
}

// WithAttrs implements slog.Handler.
func (f LevelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LevelFilter{f.Level, f.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (f LevelFilter) WithGroup(name string) slog.Handler {
	return LevelFilter{f.Level, f.Handler.WithGroup(name)}
}
