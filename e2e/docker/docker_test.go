//go:build docker

// Package docker runs linkraft in containers (3 nodes, 2 routers on a private
// network, from deploy/docker) and cuts real network links between them with
// `docker network disconnect`, kills containers and pauses them.
//
// Run it with `make e2e-docker`; it needs a Docker engine and builds its own
// image FROM scratch around the static binary, so no image is pulled.
package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
)

const image = "linkraft:e2e"

func TestMain(m *testing.M) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		fmt.Println("e2e/docker: no Docker engine answers; skipping the container tests")
		os.Exit(0)
	}
	if err := buildImage(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/docker:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// buildImage builds the static binary and the FROM scratch image around it.
func buildImage() error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	ctxDir, err := os.MkdirTemp("", "linkraft-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctxDir)
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "linkraft"), "./cmd/linkraft")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	for _, f := range []string{"Dockerfile", "cluster.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "deploy/docker", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(ctxDir, f), data, 0o644); err != nil {
			return err
		}
	}
	if out, err := exec.Command("docker", "build", "-q", "-t", image, ctxDir).CombinedOutput(); err != nil {
		return fmt.Errorf("docker build: %v\n%s", err, out)
	}
	return nil
}

// cluster is one compose project started by a test.
type cluster struct {
	t       *testing.T
	project string
	compose string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	root, _ := filepath.Abs("../..")
	c := &cluster{t: t, project: fmt.Sprintf("lre2e%d", rand.IntN(1_000_000)), compose: filepath.Join(root, "deploy/docker/compose.yaml")}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.composeCmd("logs", "--no-color", "--tail", "200")
			t.Logf("container logs:\n%s", out)
		}
		if out, err := c.composeCmd("down", "-v", "-t", "5"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	if out, err := c.composeCmd("up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	return c
}

func (c *cluster) composeCmd(args ...string) (string, error) {
	cmd := exec.Command("docker-compose", append([]string{"-p", c.project, "-f", c.compose}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) docker(args ...string) string {
	c.t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (c *cluster) container(service string) string { return c.project + "_" + service + "_1" }
func (c *cluster) network() string                 { return c.project + "_linkraft" }

// routerURL is the published address of a router's port 8080.
func (c *cluster) routerURL(service string) string {
	c.t.Helper()
	out, err := c.composeCmd("port", service, "8080")
	if err != nil {
		c.t.Fatalf("compose port %s: %v\n%s", service, err, out)
	}
	return "http://" + strings.TrimSpace(out)
}

// leaderOf asks a node container for the cluster status and returns the ID
// of the node that leads shard.
func (c *cluster) leaderOf(shard int, via string) (string, error) {
	out, err := exec.Command("docker", "exec", c.container(via), "/linkraft", "admin", "status", "--config", "/etc/linkraft/cluster.yaml").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("admin status: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == fmt.Sprint(shard) && f[2] == "Leader" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no leader of shard %d in:\n%s", shard, out)
}

var httpClient = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func ready(base string) error {
	resp, err := httpClient.Get(base + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("readyz %d: %s", resp.StatusCode, body)
	}
	return nil
}

func create(base, url string) (string, error) {
	resp, err := httpClient.Post(base+"/api/v1/links", "application/json", bytes.NewReader([]byte(fmt.Sprintf(`{"url": %q}`, url))))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create: %d: %s", resp.StatusCode, body)
	}
	var r struct{ Code string }
	if err := json.Unmarshal(body, &r); err != nil {
		return "", err
	}
	return r.Code, nil
}

func checkRedirects(t *testing.T, base string, links map[string]string) {
	t.Helper()
	for code, url := range links {
		testutil.EventuallyEvery(t, 100*time.Millisecond, 10*time.Second, "redirect of "+code, func() error {
			resp, err := httpClient.Get(base + "/" + code)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 301 || resp.Header.Get("Location") != url {
				return fmt.Errorf("status %d location %q, want %q", resp.StatusCode, resp.Header.Get("Location"), url)
			}
			return nil
		})
	}
}

// TestPartitionKillPause: a shard leader is cut off the network, then killed,
// then paused; after each fault creates resume and every acknowledged link
// still redirects through both routers.
func TestPartitionKillPause(t *testing.T) {
	c := startCluster(t)
	r1, r2 := c.routerURL("r1"), c.routerURL("r2")
	testutil.EventuallyEvery(t, 100*time.Millisecond, 60*time.Second, "r1 ready", func() error { return ready(r1) })
	testutil.EventuallyEvery(t, 100*time.Millisecond, 30*time.Second, "r2 ready", func() error { return ready(r2) })

	links := make(map[string]string)
	add := func(n int, tag string) {
		for i := 0; i < n; i++ {
			url := fmt.Sprintf("https://example.com/%s/%d", tag, i)
			var code string
			testutil.EventuallyEvery(t, 100*time.Millisecond, 15*time.Second, "create "+url, func() error {
				var err error
				code, err = create(r1, url)
				return err
			})
			links[code] = url
		}
	}
	add(200, "start")

	faults := []struct {
		name  string
		apply func(node string)
		heal  func(node string)
	}{
		{"partition", func(n string) { c.docker("network", "disconnect", c.network(), c.container(n)) },
			func(n string) { c.docker("network", "connect", "--alias", n, c.network(), c.container(n)) }},
		{"kill", func(n string) { c.docker("kill", c.container(n)) }, func(n string) { c.docker("start", c.container(n)) }},
		{"pause", func(n string) { c.docker("pause", c.container(n)) }, func(n string) { c.docker("unpause", c.container(n)) }},
	}
	for _, f := range faults {
		var leader string
		testutil.EventuallyEvery(t, 100*time.Millisecond, 20*time.Second, "leader of shard 1", func() error {
			var err error
			leader, err = c.leaderOf(1, "n1")
			if err != nil {
				leader, err = c.leaderOf(1, "n2")
			}
			return err
		})
		t.Logf("%s: fault on %s, leader of shard 1", f.name, leader)
		f.apply(leader)
		start := time.Now()
		add(50, f.name+"-during")
		t.Logf("%s: 50 creates done %s after the fault", f.name, time.Since(start).Round(time.Millisecond))
		checkRedirects(t, r2, links)
		f.heal(leader)
		testutil.EventuallyEvery(t, 100*time.Millisecond, 60*time.Second, "r1 ready after heal", func() error { return ready(r1) })
		add(20, f.name+"-after")
	}
	checkRedirects(t, r1, links)
	checkRedirects(t, r2, links)
}
