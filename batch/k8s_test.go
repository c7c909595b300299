package batch

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// decodeJobStrict decodes a Job as the API server's strict field
// validation would: duplicate or unknown fields are errors.
func decodeJobStrict(data []byte) (*batchv1.Job, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var job batchv1.Job
	if err := dec.Decode(&job); err != nil {
		return nil, err
	}
	return &job, nil
}

func TestK8sJobDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testref.Root(t), "docs", "k8s-indexed-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The decoder rejects what the API server would: a misspelt or
	// misplaced field, a duplicate key.
	for _, bad := range []struct{ from, to string }{
		{"completionMode: Indexed", "completionMod: Indexed"},
		{"restartPolicy: Never", "restartPolicy: Never\n      restartPolicy: Never"},
		{"  parallelism: 4", "  parallelism: 4\n  template2: {}"},
	} {
		mut := strings.Replace(string(data), bad.from, bad.to, 1)
		if mut == string(data) {
			t.Fatalf("%q not in the manifest", bad.from)
		}
		if _, err := decodeJobStrict([]byte(mut)); err == nil {
			t.Errorf("%q -> %q decoded without error", bad.from, bad.to)
		}
	}

	job, err := decodeJobStrict(data)
	if err != nil {
		t.Fatalf("docs/k8s-indexed-job.yaml: %v", err)
	}
	if job.APIVersion != "batch/v1" || job.Kind != "Job" {
		t.Errorf("apiVersion %q kind %q", job.APIVersion, job.Kind)
	}
	spec := job.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode %v, want Indexed (JOB_COMPLETION_INDEX is set only in Indexed Jobs)", spec.CompletionMode)
	}
	if spec.Completions == nil || *spec.Completions < 1 || spec.Parallelism == nil || *spec.Parallelism < 1 {
		t.Fatalf("completions %v parallelism %v", spec.Completions, spec.Parallelism)
	}
	n := int(*spec.Completions)
	if spec.BackoffLimitPerIndex == nil || spec.MaxFailedIndexes == nil || *spec.MaxFailedIndexes > *spec.Completions {
		t.Errorf("backoffLimitPerIndex %v maxFailedIndexes %v", spec.BackoffLimitPerIndex, spec.MaxFailedIndexes)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q: backoffLimitPerIndex needs Never", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	args := c.Command
	if len(args) < 3 || args[0] != "quantbridge" || args[1] != "batch" || !slices.Contains(args, "--pull") {
		t.Errorf("command %q: want quantbridge batch --pull ... MANIFEST", args)
	}
	// Every flag parses as the CLI defines it (checked in cmd/quantbridge);
	// here: the manifest is on a mounted volume backed by a claim.
	manifest := args[len(args)-1]
	mounted := false
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(manifest, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != "" {
					mounted = true
				}
			}
		}
	}
	if !mounted {
		t.Errorf("manifest %s is not on a mounted persistent volume: %+v %+v", manifest, c.VolumeMounts, pod.Volumes)
	}

	// The environment: what the manifest sets, plus JOB_COMPLETION_INDEX,
	// which the Job controller sets in every pod of an Indexed Job (from
	// the batch.kubernetes.io/job-completion-index annotation). The
	// manifest must not set that one itself.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("env %s: valueFrom cannot be checked here", e.Name)
		}
		env[e.Name] = e.Value
	}
	if _, ok := env["JOB_COMPLETION_INDEX"]; ok {
		t.Error("the manifest sets JOB_COMPLETION_INDEX, which Kubernetes sets")
	}
	if batchv1.JobCompletionIndexAnnotation != "batch.kubernetes.io/job-completion-index" {
		t.Errorf("completion index annotation is %q", batchv1.JobCompletionIndexAnnotation)
	}
	if env["JOB_COMPLETIONS"] != strconv.Itoa(n) {
		t.Errorf("JOB_COMPLETIONS=%q, want .spec.completions %d", env["JOB_COMPLETIONS"], n)
	}
	// Without --pull, pod i does shard i/N.
	for i := range n {
		getenv := func(k string) string {
			if k == "JOB_COMPLETION_INDEX" {
				return strconv.Itoa(i)
			}
			return env[k]
		}
		s, ok, err := ShardFromEnv(getenv)
		if err != nil || !ok || s != (Shard{i, n}) {
			t.Errorf("pod %d: ShardFromEnv = %v %v %v, want %d/%d", i, s, ok, err, i, n)
		}
	}
}
