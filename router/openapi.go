package router

import (
	_ "embed" // the OpenAPI document

	"github.com/valyala/fasthttp"
)

// pathOpenAPI serves the API's OpenAPI 3 document.
const pathOpenAPI = "/api/v1/openapi.json"

// openAPIDoc is the OpenAPI 3 document of every route the router serves
// (router/openapi.json). TestOpenAPIMatchesRoutes keeps it, apiRoutes and
// the handler in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// apiRoute is one path pattern the router serves and the methods it
// answers there; any other method is a 405 with Allow: methods.
type apiRoute struct {
	path    string // OpenAPI path template
	methods string // the Allow header
}

// apiRoutes is every route the handler serves, in the OpenAPI document's
// path syntax.
var apiRoutes = []apiRoute{
	{pathLinks, allowLinks},
	{pathBulk, allowBulk},
	{pathLinksPrefix + "{code}", allowLink},
	{pathLinksPrefix + "{code}" + pathStatsSuffix, allowGetHead},
	{pathLinksPrefix + "{code}" + pathQRSuffix, allowGetHead},
	{pathOpenAPI, allowGetHead},
	{pathHealth, allowGetHead},
	{pathReady, allowGetHead},
	{"/{code}", allowGetHead},
}

// openAPI answers GET /api/v1/openapi.json.
func (r *Router) openAPI(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		methodNotAllowed(ctx, allowGetHead)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.Response.SetBodyRaw(openAPIDoc)
}
