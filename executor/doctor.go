package executor

// Check is one line of `vft doctor` about an executor kind, said by the
// kind's own package (a runner's prerequisites: a sandbox tool, cgroups,
// a container runtime).
type Check struct {
	Name     string
	Severity Severity
	Detail   string
	Fix      string // what to do; empty when OK
}

// Severity grades a Check as hwdetect.Severity does (the same words).
type Severity string

const (
	SeverityOK   Severity = "ok"
	SeverityWarn Severity = "warn"
	SeverityFail Severity = "fail"
)
