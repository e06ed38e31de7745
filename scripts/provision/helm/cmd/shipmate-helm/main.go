// Command shipmate-helm runs the Helm actions the helm CLI cannot express:
// a release whose records live in one namespace (Flux's storageNamespace)
// while its objects and .Release.Namespace use another (targetNamespace),
// as helm-controller configures Helm's SDK. The agent's Helm engine
// (src/agent/helm/cli.ts) calls it with one JSON request on stdin; it
// prints nothing on success and `Error: <message>` on stderr on failure,
// as helm does, so both are read the same way. Everything else stays
// with the helm CLI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
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
	// rollback
	Version int `json:"version,omitempty"`
	// uninstall
	KeepHistory bool   `json:"keepHistory,omitempty"`
	Cascade     string `json:"cascade,omitempty"`
}

func main() {
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
		return r.Run(req.Release)
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
	u.Timeout = timeout
	u.WaitStrategy = wait
	u.WaitForJobs = req.WaitForJobs
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
