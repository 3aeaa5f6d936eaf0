package node

import (
	"encoding/json"
	"fmt"

	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// The encoding of the internal RPC bodies lives here alone, so that it can
// be replaced (the wire contract is shardrpc's) without touching the
// handlers.

const contentTypeJSON = "application/json"

// decodeBody decodes the JSON request body into v. An empty body decodes
// as the zero value (status requests carry `{}` or nothing).
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	body := ctx.PostBody()
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// writeJSON answers status with v as the JSON body.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The bodies are plain structs of strings and numbers: this does
		// not happen.
		panic(fmt.Sprintf("node: encode %T: %v", v, err))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentTypeJSON)
	ctx.SetBody(b)
}

// writeError answers an ErrorBody with the HTTP status of its code.
func writeError(ctx *fasthttp.RequestCtx, body shardrpc.ErrorBody) {
	writeJSON(ctx, body.Code.HTTPStatus(), body)
}
