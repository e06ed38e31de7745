// Command shipmate-helm runs the Helm actions the helm CLI cannot express:
// a release whose records live in one namespace (Flux's storageNamespace)
// while its objects and .Release.Namespace use another (targetNamespace),
// as helm-controller configures Helm's SDK; an install or upgrade whose
// manifests go through Flux's kustomize post-renderers (the real kustomize,
// one build per post-renderer, in order: Helm v4's CLI only takes plugins);
// and `test` (Helm's test hooks with Flux's name filters).
//
// `shipmate-helm serve` keeps one process for many requests, as
// helm-controller keeps Helm in-process: one JSON line `{"id": N, "request":
// {...}}` per request on stdin, each run concurrently, one line `{"id": N,
// "error": "..."}` per answer on stdout (error empty on success). It ends
// when stdin closes. The agent's Helm engine
// (src/agent/helm/cli.ts) calls it with one JSON request on stdin; it
// prints nothing on success and `Error: <message>` on stderr on failure,
// as helm does, so both are read the same way. Everything else stays
// with the helm CLI.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/postrenderer"
	ri "helm.sh/helm/v4/pkg/release"
	"helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// request is the whole interface: one action on one release.
type request struct {
	Action           string `json:"action"` // upgrade | rollback | uninstall
	Kubeconfig       string `json:"kubeconfig"`
	AsUser           string `json:"asUser,omitempty"`
	Release          string `json:"release"`
	Namespace        string `json:"namespace"`
	StorageNamespace string `json:"storageNamespace"`
	TimeoutSeconds   int    `json:"timeoutSeconds"`
	Wait             bool   `json:"wait"`
	WaitForJobs      bool   `json:"waitForJobs,omitempty"`
	DisableHooks     bool   `json:"disableHooks,omitempty"`
	CleanupOnFail    bool   `json:"cleanupOnFail,omitempty"`
	// upgrade
	ChartDir                 string         `json:"chartDir,omitempty"`
	Values                   map[string]any `json:"values,omitempty"`
	Install                  bool           `json:"install,omitempty"`
	MaxHistory               int            `json:"maxHistory,omitempty"`
	CreateNamespace          bool           `json:"createNamespace,omitempty"`
	SkipCRDs                 bool           `json:"skipCrds,omitempty"`
	DisableOpenAPIValidation bool           `json:"disableOpenApiValidation,omitempty"`
	SkipSchemaValidation     bool           `json:"disableSchemaValidation,omitempty"`
	TakeOwnership            bool           `json:"takeOwnership,omitempty"`
	ForceReplace             bool           `json:"forceReplace,omitempty"`
	// Each a kustomization.yaml applied to the rendered manifests in turn;
	// its resources list is set here to the manifests file.
	PostRenderers []map[string]any `json:"postRenderers,omitempty"`
	// The kustomize build command ("kustomize build" or "kubectl kustomize").
	Kustomize []string `json:"kustomize,omitempty"`
	// rollback
	Version int `json:"version,omitempty"`
	// test: Helm's filters ("name": run only these, "!name": skip these)
	Filters map[string][]string `json:"filters,omitempty"`
	// uninstall
	KeepHistory bool   `json:"keepHistory,omitempty"`
	Cascade     string `json:"cascade,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve(os.Stdin, os.Stdout)
		return
	}
	if err := run(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader) error {
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	var req request
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("invalid request: %w", err)
	}
	if req.Release == "" || req.Namespace == "" || req.StorageNamespace == "" || req.Kubeconfig == "" {
		return errors.New("invalid request: release, namespace, storageNamespace and kubeconfig are required")
	}
	cfg, err := configuration(req)
	if err != nil {
		return err
	}
	timeout := time.Duration(req.TimeoutSeconds) * time.Second
	wait := kube.HookOnlyStrategy
	if req.Wait {
		wait = kube.StatusWatcherStrategy
	}
	switch req.Action {
	case "upgrade":
		return upgrade(cfg, req, timeout, wait)
	case "rollback":
		r := action.NewRollback(cfg)
		r.Version = req.Version
		r.Timeout = timeout
		r.WaitStrategy = wait
		r.WaitForJobs = req.WaitForJobs
		r.DisableHooks = req.DisableHooks
		r.CleanupOnFail = req.CleanupOnFail
		r.ForceReplace = req.ForceReplace
		return r.Run(req.Release)
	case "test":
		t := action.NewReleaseTesting(cfg)
		t.Namespace = req.Namespace
		t.Timeout = timeout
		for k, v := range req.Filters {
			t.Filters[k] = v
		}
		_, shutdown, err := t.Run(req.Release)
		if shutdown != nil {
			if serr := shutdown(); err == nil {
				err = serr
			}
		}
		return err
	case "uninstall":
		u := action.NewUninstall(cfg)
		u.Timeout = timeout
		u.WaitStrategy = wait
		u.KeepHistory = req.KeepHistory
		u.DisableHooks = req.DisableHooks
		u.DeletionPropagation = "background"
		if req.Cascade != "" {
			u.DeletionPropagation = req.Cascade
		}
		_, err := u.Run(req.Release)
		return err
	default:
		return fmt.Errorf("invalid request: unknown action %q", req.Action)
	}
}

// configuration is helm-controller's: Kubernetes objects in the release
// namespace (the getter's), release records in the storage namespace.
func configuration(req request) (*action.Configuration, error) {
	settings := cli.New()
	settings.KubeConfig = req.Kubeconfig
	settings.KubeAsUser = req.AsUser
	settings.SetNamespace(req.Namespace)
	cfg := action.NewConfiguration()
	if err := cfg.Init(settings.RESTClientGetter(), req.StorageNamespace, "secret"); err != nil {
		return nil, err
	}
	return cfg, nil
}

// upgrade is `helm upgrade [--install]`: install when no release exists or the last was uninstalled.
func upgrade(cfg *action.Configuration, req request, timeout time.Duration, wait kube.WaitStrategy) error {
	ch, err := loader.Load(req.ChartDir)
	if err != nil {
		return err
	}
	vals := req.Values
	if vals == nil {
		vals = map[string]any{}
	}
	ctx := context.Background()
	var post postrenderer.PostRenderer
	if len(req.PostRenderers) > 0 {
		if len(req.Kustomize) == 0 {
			return errors.New("invalid request: postRenderers need the kustomize command")
		}
		post = kustomizePostRenderer{steps: req.PostRenderers, command: req.Kustomize}
	}
	if req.Install {
		history, err := cfg.Releases.History(req.Release)
		uninstalled := err == nil && len(history) > 0 && lastUninstalled(history)
		if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(history) == 0) {
			err = nil
			history = nil
		}
		if err == nil && (len(history) == 0 || uninstalled) {
			i := action.NewInstall(cfg)
			i.ReleaseName = req.Release
			i.Namespace = req.Namespace
			i.CreateNamespace = req.CreateNamespace
			i.SkipCRDs = req.SkipCRDs
			i.DisableHooks = req.DisableHooks
			i.DisableOpenAPIValidation = req.DisableOpenAPIValidation
			i.SkipSchemaValidation = req.SkipSchemaValidation
			i.TakeOwnership = req.TakeOwnership
			i.Timeout = timeout
			i.WaitStrategy = wait
			i.WaitForJobs = req.WaitForJobs
			i.Replace = uninstalled
			i.PostRenderer = post
			_, err := i.RunWithContext(ctx, ch, vals)
			return err
		} else if err != nil {
			return err
		}
	}
	u := action.NewUpgrade(cfg)
	u.Namespace = req.Namespace
	u.MaxHistory = req.MaxHistory
	u.DisableHooks = req.DisableHooks
	u.DisableOpenAPIValidation = req.DisableOpenAPIValidation
	u.SkipSchemaValidation = req.SkipSchemaValidation
	u.TakeOwnership = req.TakeOwnership
	u.CleanupOnFail = req.CleanupOnFail
	u.ForceReplace = req.ForceReplace
	u.Timeout = timeout
	u.WaitStrategy = wait
	u.WaitForJobs = req.WaitForJobs
	u.PostRenderer = post
	_, err = u.RunWithContext(ctx, req.Release, ch, vals)
	if err != nil {
		return fmt.Errorf("UPGRADE FAILED: %w", err)
	}
	return nil
}

// lastUninstalled: whether the newest revision is an uninstalled one (kept with --keep-history).
func lastUninstalled(history []ri.Releaser) bool {
	var last *release.Release
	for _, r := range history {
		rel, ok := r.(*release.Release)
		if ok && (last == nil || rel.Version > last.Version) {
			last = rel
		}
	}
	return last != nil && last.Info != nil && last.Info.Status == common.StatusUninstalled
}

// kustomizePostRenderer is Flux's kustomize post-renderer on the real
// kustomize: the manifests Helm rendered become the one resource of a
// kustomization holding the post-renderer's patches and images, built in a
// private directory; each post-renderer takes the previous one's output.
type kustomizePostRenderer struct {
	steps   []map[string]any
	command []string
}

func (k kustomizePostRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	dir, err := os.MkdirTemp("", "shipmate-helm-postrender-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := in
	for i, step := range k.steps {
		if err := os.WriteFile(filepath.Join(dir, "manifests.yaml"), out.Bytes(), 0o600); err != nil {
			return nil, err
		}
		doc := map[string]any{}
		for key, v := range step {
			doc[key] = v
		}
		doc["apiVersion"] = "kustomize.config.k8s.io/v1beta1"
		doc["kind"] = "Kustomization"
		doc["resources"] = []string{"manifests.yaml"}
		// JSON is YAML: kustomize reads it as is.
		text, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), text, 0o600); err != nil {
			return nil, err
		}
		args := append(append([]string{}, k.command[1:]...), dir)
		cmd := exec.Command(k.command[0], args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			line := strings.TrimSpace(stderr.String())
			if j := strings.LastIndex(line, "\n"); j >= 0 {
				line = line[j+1:]
			}
			line = strings.ReplaceAll(line, dir+"/", "")
			return nil, fmt.Errorf("post-renderer %d (kustomize): %s", i, strings.TrimPrefix(line, "Error: "))
		}
		out = &stdout
	}
	return out, nil
}

// serve answers requests until stdin closes; each runs in its own goroutine.
func serve(in io.Reader, out io.Writer) {
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for {
		var line struct {
			ID      int             `json:"id"`
			Request json.RawMessage `json:"request"`
		}
		if err := dec.Decode(&line); err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answer := map[string]any{"id": line.ID, "error": ""}
			if err := run(bytes.NewReader(line.Request)); err != nil {
				answer["error"] = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			_ = enc.Encode(answer)
		}()
	}
	wg.Wait()
}
