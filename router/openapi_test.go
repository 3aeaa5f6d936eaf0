package router

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// allows reports whether methods (an Allow value) lists method.
func allows(methods, method string) bool {
	return slices.Contains(strings.Split(methods, ", "), method)
}

var allMethods = []string{
	fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost, fasthttp.MethodPut,
	fasthttp.MethodPatch, fasthttp.MethodDelete, fasthttp.MethodOptions,
}

// TestOpenAPIMatchesRoutes keeps router/openapi.json, apiRoutes and the
// handler in step: the document lists exactly the routes and methods of
// apiRoutes; the handler serves every one of them (no 405, not the
// catch-all 404) and answers every other method on those paths with 405
// and the route's Allow; and paths outside the table under /api/ are 404.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string][]string{}
	for path, item := range doc.Paths {
		for k := range item {
			if k == "parameters" || k == "summary" || k == "description" {
				continue
			}
			documented[path] = append(documented[path], strings.ToUpper(k))
		}
	}
	served := map[string][]string{}
	for _, rt := range apiRoutes {
		served[rt.path] = strings.Split(rt.methods, ", ")
	}
	for path, methods := range documented {
		slices.Sort(methods)
		want := slices.Sorted(slices.Values(served[path]))
		if !slices.Equal(methods, want) {
			t.Errorf("%s: documented %v, served %v", path, methods, want)
		}
	}
	for path := range served {
		if _, ok := documented[path]; !ok {
			t.Errorf("%s is served but not documented", path)
		}
	}

	r, _, code := newClickRouter(t, Options{})
	var ctx fasthttp.RequestCtx
	do := func(method, path string) {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(path)
		if method == fasthttp.MethodPost {
			ctx.Request.Header.SetContentType("application/json")
			ctx.Request.SetBodyString(`{"url": "https://example.com/openapi"}`)
		}
		r.handle(&ctx)
	}
	for _, rt := range apiRoutes {
		path := strings.ReplaceAll(rt.path, "{code}", code)
		for _, m := range allMethods {
			if m == fasthttp.MethodDelete && allows(rt.methods, m) {
				continue // would delete the code the other checks use; TestDeleteLink covers it
			}
			do(m, path)
			st := ctx.Response.StatusCode()
			switch {
			case allows(rt.methods, m):
				if st == fasthttp.StatusMethodNotAllowed || strings.Contains(string(ctx.Response.Body()), "no such resource") || st >= 500 {
					t.Errorf("%s %s is documented but answers %d %s", m, path, st, ctx.Response.Body())
				}
			default:
				if st != fasthttp.StatusMethodNotAllowed || string(ctx.Response.Header.Peek("Allow")) != rt.methods {
					t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", m, path, st, ctx.Response.Header.Peek("Allow"), rt.methods)
				}
			}
		}
	}
	for _, path := range []string{"/api/v1/other", "/api/v2/links", "/api/v1/openapi.yaml", "/api/v1/links/" + code + "/other"} {
		do(fasthttp.MethodGet, path)
		if st := ctx.Response.StatusCode(); st != fasthttp.StatusNotFound {
			t.Errorf("GET %s (not in the document) answers %d", path, st)
		}
	}
	do(fasthttp.MethodGet, pathOpenAPI)
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Header.ContentType()) != contentJSON || !json.Valid(ctx.Response.Body()) {
		t.Fatalf("GET %s: %d %q", pathOpenAPI, ctx.Response.StatusCode(), ctx.Response.Header.ContentType())
	}
}
