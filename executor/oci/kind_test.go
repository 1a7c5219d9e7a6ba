package oci

import (
	"strings"
	"testing"

	"github.com/vft-network/vft/executor"
)

func TestKind(t *testing.T) {
	const image = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	cases := []struct {
		name    string
		spec    executor.JobSpec
		wantErr string
	}{
		{"image and command", executor.JobSpec{Image: image, Command: []string{"python3", "infer.py"}}, ""},
		{"image only: its entrypoint runs", executor.JobSpec{Image: image}, ""},
		{"no image", executor.JobSpec{Command: []string{"true"}}, "vft image import"},
		{"image not a CID", executor.JobSpec{Image: "busybox:latest"}, `image "busybox:latest" is not a CID`},
		{"module", executor.JobSpec{Image: image, Module: image}, "module is set"},
		{"args without command", executor.JobSpec{Image: image, Args: []string{"-v"}}, "args without command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Kind{}.CheckSpec(tc.spec)
			if (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckSpec: %v, want %q", err, tc.wantErr)
			}
		})
	}
	spec := executor.JobSpec{Image: image, Command: []string{"sh", "-c"}, Args: []string{"echo hi"}}
	content := Kind{}.Content(spec)
	if len(content) != 1 || content[0].CID != image || content[0].Field != "image" {
		t.Fatalf("Content: %+v", content)
	}
	var task executor.Task
	if err := (Kind{}).Prepare(spec, map[string]string{"image": "/stage/image"}, &task); err != nil {
		t.Fatal(err)
	}
	if task.Image != "/stage/image" || strings.Join(task.Args, " ") != "sh -c echo hi" {
		t.Fatalf("task %+v", task)
	}
}
