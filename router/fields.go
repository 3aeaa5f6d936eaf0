package router

import (
	"fmt"

	"github.com/linkraft/linkraft/linkstore"
)

// Error codes of the per-link fields of a create (400).
const (
	codeInvalidTitle          = "invalid_title"
	codeInvalidTags           = "invalid_tags"
	codeInvalidRedirectStatus = "invalid_redirect_status"
)

// createFieldList names the fields a create body may hold, for the
// unknown-field error.
const createFieldList = "url, alias, reuse, expires_at, ttl, max_clicks, title, tags, redirect_status"

// createFields checks the title, tags and redirect status of a create
// against the limits the shard applies (package linkstore), so that a bad
// value is a 400 from the router and never reaches a shard. It returns the
// error code and message, or "" when the fields are valid.
func createFields(req createRequest) (code, msg string) {
	if err := linkstore.ValidateTitle(req.Title); err != nil {
		return codeInvalidTitle, err.Error()
	}
	if err := linkstore.ValidateTags(req.Tags); err != nil {
		return codeInvalidTags, err.Error()
	}
	if req.HasRedirectStatus && (req.RedirectStatus == 0 || !linkstore.ValidRedirectStatus(req.RedirectStatus)) {
		return codeInvalidRedirectStatus, fmt.Sprintf("redirect_status %d must be 301, 302, 307 or 308", req.RedirectStatus)
	}
	return "", ""
}
