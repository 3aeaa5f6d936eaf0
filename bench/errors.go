package bench

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Error kinds, the keys of the error counts of a Result. A status the
// target should not have answered is counted as "status_" + the code, e.g.
// "status_404" or "status_503".
const (
	// ErrKindConnect: the connection could not be made (refused, dial
	// timeout, unreachable).
	ErrKindConnect = "connect"
	// ErrKindTimeout: no complete answer within Config.Timeout.
	ErrKindTimeout = "timeout"
	// ErrKindClosed: the server closed or reset the connection.
	ErrKindClosed = "conn_closed"
	// ErrKindTransport: any other transport error.
	ErrKindTransport = "transport"
	// ErrKindBadRedirect: a redirect request got a non-error answer that
	// is not a 301/302/307/308 with a Location header.
	ErrKindBadRedirect = "bad_redirect"
	// ErrKindBadResponse: a shorten got a non-error answer that is not a
	// 201 with a code in its body.
	ErrKindBadResponse = "bad_response"
	// ErrKindInFlightLimit: open loop only; the request was not sent
	// because the due and unanswered requests were at Config.MaxInFlight.
	ErrKindInFlightLimit = "inflight_limit"
)

// errKind is an error kind as a small integer, so that workers count errors
// in a fixed array. Status codes are counted apart, by code.
type errKind uint8

const (
	ekNone errKind = iota
	ekConnect
	ekTimeout
	ekClosed
	ekTransport
	ekBadRedirect
	ekBadResponse
	ekInFlightLimit
	ekStatus // a 4xx or 5xx; the code is counted apart
	numErrKinds
)

var errKindNames = [numErrKinds]string{
	ekNone:          "",
	ekConnect:       ErrKindConnect,
	ekTimeout:       ErrKindTimeout,
	ekClosed:        ErrKindClosed,
	ekTransport:     ErrKindTransport,
	ekBadRedirect:   ErrKindBadRedirect,
	ekBadResponse:   ErrKindBadResponse,
	ekInFlightLimit: ErrKindInFlightLimit,
	ekStatus:        "status",
}

// statusKind returns the error-kind name of an unexpected HTTP status.
func statusKind(code int) string { return "status_" + strconv.Itoa(code) }

// classifyErr maps an error of fasthttp's client to an error kind.
func classifyErr(err error) errKind {
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &opErr) && opErr.Op == "dial":
		return ekConnect
	case errors.Is(err, fasthttp.ErrTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return ekTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return ekClosed
	default:
		return ekTransport
	}
}

// isRedirect reports whether status is one of the redirects linkraft answers.
func isRedirect(status int) bool {
	switch status {
	case fasthttp.StatusMovedPermanently, fasthttp.StatusFound,
		fasthttp.StatusTemporaryRedirect, fasthttp.StatusPermanentRedirect:
		return true
	}
	return false
}
