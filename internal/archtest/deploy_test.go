package archtest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// loadCompose loads docker-compose.yml the way `docker compose` would after
// the README's first step (cp .env.example .env), in a copy of the files.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := moduleRoot(t)
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "docker-compose.yml"), filepath.Join(dir, "docker-compose.yml"))
	copyFile(t, filepath.Join(root, ".env.example"), filepath.Join(dir, ".env"))

	env := types.Mapping{}
	b, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			env[k] = v
		}
	}
	p, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("atp", true) })
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	return p
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDockerCompose(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)

	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"atp-server", "postgres"}; !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v", names, want)
	}

	pg := p.Services["postgres"]
	if !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("postgres image = %q, want postgres:<version>", pg.Image)
	}
	if pg.HealthCheck == nil || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Errorf("postgres healthcheck = %+v, want one running pg_isready", pg.HealthCheck)
	}
	if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data"
	}) {
		t.Errorf("postgres volumes = %+v, want a named volume on /var/lib/postgresql/data", pg.Volumes)
	}

	srv := p.Services["atp-server"]
	if srv.Build == nil || srv.Build.Dockerfile != "deploy/Dockerfile" || srv.Build.Context != p.WorkingDir {
		t.Errorf("atp-server build = %+v, want context . and dockerfile deploy/Dockerfile", srv.Build)
	}
	if dep, ok := srv.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("atp-server depends_on = %+v, want postgres with condition service_healthy", srv.DependsOn)
	}
	if !slices.ContainsFunc(srv.EnvFiles, func(f types.EnvFile) bool { return filepath.Base(f.Path) == ".env" }) {
		t.Errorf("atp-server env_file = %+v, want .env", srv.EnvFiles)
	}
	if u := srv.Environment["DATABASE_URL"]; u == nil || !strings.HasPrefix(*u, "postgres://") || !strings.Contains(*u, "@postgres:5432/") {
		t.Errorf("atp-server DATABASE_URL does not point at the postgres service")
	}
	for _, name := range []string{"ATP_ENCRYPTION_KEY", "ATP_JWT_SECRET"} {
		if _, ok := srv.Environment[name]; !ok {
			t.Errorf("atp-server environment lacks %s (from .env)", name)
		}
	}
	if !slices.ContainsFunc(srv.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == 3333 && pc.Published == "3333" }) {
		t.Errorf("atp-server ports = %+v, want 3333:3333", srv.Ports)
	}
	if srv.HealthCheck == nil || !slices.Equal(srv.HealthCheck.Test, types.HealthCheckTest{"CMD", "/atp-server", "healthcheck"}) {
		t.Errorf("atp-server healthcheck = %+v, want [CMD /atp-server healthcheck]", srv.HealthCheck)
	}
}

func TestEnvExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"openssl rand -base64 32", "\nPOSTGRES_PASSWORD=", "\nATP_ENCRYPTION_KEY=", "\nATP_ENCRYPTION_KEY_OLD=", "\nATP_JWT_SECRET=", "\nATP_ADMIN_KEY="} {
		if !strings.Contains(s, want) {
			t.Errorf(".env.example lacks %q", want)
		}
	}
	// No real-looking secret is committed: the secrets are left empty.
	for _, line := range strings.Split(s, "\n") {
		for _, name := range []string{"ATP_ENCRYPTION_KEY=", "ATP_JWT_SECRET=", "ATP_ADMIN_KEY="} {
			if strings.HasPrefix(line, name) && line != name {
				t.Errorf(".env.example sets %s: leave it empty so nobody runs with a published secret", line)
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w`, "./cmd/atp-server",
		"EXPOSE 3333", `HEALTHCHECK`, `CMD ["/atp-server", "healthcheck"]`, `ENTRYPOINT ["/atp-server"]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
	var user string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "USER" {
			user = f[1]
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("deploy/Dockerfile final USER = %q, want a non-root user", user)
	}
}

// manifest is one Kubernetes object, decoded loosely.
type manifest map[string]any

// get walks a path of map keys and list indexes ("spec.template.spec").
func (m manifest) get(path string) any {
	var cur any = map[string]any(m)
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func (m manifest) str(path string) string { s, _ := m.get(path).(string); return s }

func loadManifests(t *testing.T) map[string][]manifest {
	t.Helper()
	dir := filepath.Join(moduleRoot(t), "deploy", "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	out := map[string][]manifest{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m map[string]any // not manifest: yaml would make every nested map one
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(f), err)
			}
			if m == nil {
				continue
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], manifest(m))
		}
	}
	return out
}

func only(t *testing.T, all map[string][]manifest, file, kind string) manifest {
	t.Helper()
	ms := all[file]
	if len(ms) != 1 || ms[0].str("kind") != kind {
		t.Fatalf("%s: want exactly one %s", file, kind)
	}
	return ms[0]
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	all := loadManifests(t)

	kust := only(t, all, "kustomization.yaml", "Kustomization")
	resources, _ := kust.get("resources").([]any)
	for _, r := range resources {
		if _, ok := all[r.(string)]; !ok {
			t.Errorf("kustomization.yaml lists %v, which is not in deploy/kubernetes", r)
		}
		if r == "secret.example.yaml" {
			t.Errorf("kustomization.yaml must not apply the placeholder secret")
		}
	}
	for _, want := range []string{"deployment.yaml", "service.yaml"} {
		if !slices.Contains(resources, any(want)) {
			t.Errorf("kustomization.yaml resources = %v, want %s among them", resources, want)
		}
	}

	dep := only(t, all, "deployment.yaml", "Deployment")
	if r, _ := dep.get("spec.replicas").(int); r != 2 {
		t.Errorf("Deployment replicas = %v, want 2", dep.get("spec.replicas"))
	}
	pod := manifest(dep.get("spec.template.spec").(map[string]any))
	if pod.get("securityContext.runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	containers, _ := pod.get("containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(containers))
	}
	c := manifest(containers[0].(map[string]any))
	if got := c.str("readinessProbe.httpGet.path"); got != "/readyz" {
		t.Errorf("readinessProbe path = %q, want /readyz", got)
	}
	if got := c.str("livenessProbe.httpGet.path"); got != "/healthz" {
		t.Errorf("livenessProbe path = %q, want /healthz", got)
	}
	if c.get("resources.requests") == nil || c.get("resources.limits") == nil {
		t.Error("the server container has no resource requests and limits")
	}
	if c.get("securityContext.allowPrivilegeEscalation") != false || c.get("securityContext.readOnlyRootFilesystem") != true {
		t.Error("the server container must not escalate privileges and must have a read-only root filesystem")
	}

	inits, _ := pod.get("initContainers").([]any)
	if len(inits) != 1 || !slices.Equal(manifest(inits[0].(map[string]any)).get("args").([]any), []any{"migrate", "up"}) {
		t.Errorf("initContainers = %v, want one running `migrate up`", inits)
	}

	// Every secret the pod reads comes from atp-server-secrets, and the
	// example Secret has every key, required ones included.
	secret := only(t, all, "secret.example.yaml", "Secret")
	secretName := secret.str("metadata.name")
	data, _ := secret.get("stringData").(map[string]any)
	envByName := map[string]manifest{}
	for _, ctr := range append(slices.Clone(containers), inits...) {
		env, _ := manifest(ctr.(map[string]any)).get("env").([]any)
		for _, e := range env {
			e := manifest(e.(map[string]any))
			envByName[e.str("name")] = e
			ref := e.get("valueFrom.secretKeyRef")
			if ref == nil {
				continue
			}
			r := manifest(ref.(map[string]any))
			if r.str("name") != secretName {
				t.Errorf("env %s reads Secret %q, want %q", e.str("name"), r.str("name"), secretName)
			}
			if _, ok := data[r.str("key")]; !ok {
				t.Errorf("env %s reads key %q, which secret.example.yaml lacks", e.str("name"), r.str("key"))
			}
		}
	}
	for _, name := range []string{"DATABASE_URL", "ATP_ENCRYPTION_KEY", "ATP_JWT_SECRET"} {
		e, ok := envByName[name]
		if !ok || e.get("valueFrom.secretKeyRef") == nil {
			t.Errorf("the pod does not read %s from a Secret", name)
		}
	}

	svc := only(t, all, "service.yaml", "Service")
	sel, _ := svc.get("spec.selector").(map[string]any)
	labels, _ := dep.get("spec.template.metadata.labels").(map[string]any)
	if len(sel) == 0 {
		t.Error("Service has no selector")
	}
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pod labels %v", k, v, labels)
		}
	}
}
