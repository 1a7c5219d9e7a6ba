package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
)

// progressBar draws bytes, rate and ETA on one terminal line. Off a
// terminal it draws nothing, so scripts see only the result.
type progressBar struct {
	w      io.Writer
	label  string
	on     bool
	start  time.Time
	drawn  bool
	lastAt time.Time
}

func newProgressBar(w io.Writer, label string) *progressBar {
	f, ok := w.(*os.File)
	on := ok && isatty.IsTerminal(f.Fd())
	return &progressBar{w: w, label: label, on: on, start: time.Now()}
}

// Update redraws the line; total < 0 means not known yet.
func (p *progressBar) Update(done, total int64) {
	if !p.on || time.Since(p.lastAt) < 100*time.Millisecond {
		return
	}
	p.lastAt = time.Now()
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	line := fmt.Sprintf("%s %s", p.label, humanBytes(done))
	if total > 0 {
		pct := float64(done) / float64(total) * 100
		line += fmt.Sprintf(" / %s (%3.0f%%)", humanBytes(total), pct)
	}
	line += fmt.Sprintf("  %s/s", humanBytes(int64(rate)))
	if total > 0 && rate > 0 && done < total {
		eta := time.Duration(float64(total-done)/rate) * time.Second
		line += "  ETA " + eta.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// Done clears the line.
func (p *progressBar) Done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
