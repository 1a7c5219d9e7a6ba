package logging

import (
	"context"
	"log/slog"
	"strings"
	"time"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"go.uber.org/zap/zapcore"
)

// RouteLibraries sends go-libp2p's slog loggers and the IPFS libraries' zap
// loggers (go-log: kad-dht, pubsub, boxo) into h at the given level. Those
// libraries keep their logger in package state, so this is process-wide:
// call it once, from main.
func RouteLibraries(h slog.Handler, level slog.Level) {
	filtered := LevelFilter{Level: level, Handler: h}
	gologshim.SetDefaultHandler(filtered)
	// SetupLogging with no output sets the level for loggers created later;
	// our core then replaces its (empty) primary core.
	golog.SetupLogging(golog.Config{Format: golog.JSONOutput, Level: zapLevel(level)})
	golog.SetPrimaryCore(&zapToSlog{handler: filtered})
}

func zapLevel(l slog.Level) golog.LogLevel {
	switch {
	case l <= slog.LevelDebug:
		return golog.LevelDebug
	case l <= slog.LevelInfo:
		return golog.LevelInfo
	case l <= slog.LevelWarn:
		return golog.LevelWarn
	}
	return golog.LevelError
}

// zapToSlog is a zapcore.Core that re-emits zap entries as slog records.
type zapToSlog struct {
	handler slog.Handler
	fields  []zapcore.Field
}

func (c *zapToSlog) Enabled(l zapcore.Level) bool {
	return c.handler.Enabled(context.Background(), slogLevel(l))
}

func (c *zapToSlog) With(fields []zapcore.Field) zapcore.Core {
	return &zapToSlog{handler: c.handler, fields: append(append([]zapcore.Field{}, c.fields...), fields...)}
}

func (c *zapToSlog) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *zapToSlog) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(c.fields, fields...) {
		f.AddTo(enc)
	}
	level := slogLevel(e.Level)
	if level > slog.LevelDebug && aloneAtStart(e.LoggerName, e.Message, enc.Fields) {
		level = slog.LevelDebug
		if !c.handler.Enabled(context.Background(), level) {
			return nil
		}
	}
	rec := slog.NewRecord(e.Time, level, e.Message, 0)
	if e.LoggerName != "" {
		rec.AddAttrs(slog.String("logger", e.LoggerName))
	}
	for k, v := range enc.Fields {
		rec.AddAttrs(slog.Any(k, v))
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	return c.handler.Handle(context.Background(), rec)
}

func (c *zapToSlog) Sync() error { return nil }

// aloneAtStart tells the library warnings that only say a node has no
// peers yet, which every node is for its first moments (kad-dht refreshes
// its routing table as it starts, before the bootstrap peers are
// connected) and the first node of a network is until another joins.
// Every daemon printed them at start; they are logged at debug. A node
// that cannot reach its bootstrap peers says so itself, in our words.
func aloneAtStart(logger, msg string, fields map[string]any) bool {
	if logger != "dht/RtRefreshManager" {
		return false
	}
	errText, _ := fields["error"].(string)
	return strings.Contains(msg+" "+errText, "failed to find any peer in table")
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}
