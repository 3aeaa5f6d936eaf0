package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/proctest"
)

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m))
}

// client does not follow redirects: the tests look at the redirect itself.
var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// created is the answer of a successful shorten.
type created struct {
	Code      string `json:"code"`
	ShortURL  string `json:"short_url"`
	URL       string `json:"url"`
	CreatedAt string `json:"created_at"`
}

// shorten posts one create and returns the status and the decoded body.
func shorten(base string, body string) (int, created, []byte, error) {
	resp, err := client.Post(base+"/api/v1/links", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, created{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, created{}, nil, err
	}
	var c created
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &c); err != nil {
			return resp.StatusCode, c, raw, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, c, raw, nil
}

// redirectTarget GETs base/code and returns the status and Location.
func redirectTarget(base, code string) (int, string, error) {
	resp, err := client.Get(base + "/" + code)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}
