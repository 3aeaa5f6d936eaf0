package node_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's worker pool cleaner is not waited for by
		// Server.Shutdown: it notices the stop after its current sleep
		// (MaxIdleWorkerDuration) and ends on its own.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

// rpc calls the internal RPC of a node: one fasthttp request written on
// its own TCP connection, so the test leaves no client goroutines behind.
type rpc struct {
	t      *testing.T
	secret string // sent when not empty
}

// answer is one RPC response.
type answer struct {
	status int
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

// errorBody decodes a as an ErrorBody.
func (a answer) errorBody(t *testing.T) shardrpc.ErrorBody {
	t.Helper()
	var e shardrpc.ErrorBody
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e
}

// link decodes a as a Link.
func (a answer) link(t *testing.T) shardrpc.Link {
	t.Helper()
	var l shardrpc.Link
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatalf("link body %q: %v", a.body, err)
	}
	return l
}

// do sends method path with the shard header (when shard > 0) and the JSON
// of body (raw bytes are sent as they are).
func (r rpc) do(addr, method, path string, shard uint64, body any) (answer, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return answer{}, err
		}
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + addr + path)
	req.Header.SetContentType("application/json")
	if shard > 0 {
		req.Header.Set(shardrpc.HeaderShard, strconv.FormatUint(shard, 10))
	}
	if r.secret != "" {
		req.Header.Set(shardrpc.HeaderSecret, r.secret)
	}
	req.SetBody(raw)

	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		return answer{}, err
	}
	w := bufio.NewWriter(conn)
	if err := req.Write(w); err != nil {
		return answer{}, err
	}
	if err := w.Flush(); err != nil {
		return answer{}, err
	}
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode(), body: append([]byte(nil), resp.Body()...)}, nil
}

// call is do with POST, failing the test on a transport error.
func (r rpc) call(addr, path string, shard uint64, body any) answer {
	r.t.Helper()
	a, err := r.do(addr, fasthttp.MethodPost, path, shard, body)
	if err != nil {
		r.t.Fatalf("POST %s%s: %v", addr, path, err)
	}
	return a
}

// atLeader sends body to path at whoever leads shard, following leader
// changes (421) and retrying unavailable answers (503) and transport errors
// until an answer is final or 20s passed. It is safe from any goroutine;
// a create body should carry a RequestID so that retries are idempotent.
func (r rpc) atLeader(c *nodetest.Cluster, shard uint64, path string, body any) (answer, error) {
	a, err := r.untilAnswer(c, shard, fasthttp.MethodPost, path, shard, body, func(a answer) bool {
		return a.status == fasthttp.StatusMisdirectedRequest || a.status == fasthttp.StatusServiceUnavailable
	})
	if err != nil {
		return a, fmt.Errorf("%s at the leader of shard %d: %w", path, shard, err)
	}
	return a, nil
}

// doAtLeader sends method path with the shard header sh at whoever leads
// shard, following leader changes and retrying unavailable answers and
// transport errors until 20s passed. Unlike atLeader it retries a 421 only
// when it says not_leader: a wrong_shard 421 is an answer.
func (r rpc) doAtLeader(c *nodetest.Cluster, shard uint64, method, path string, sh uint64, body any) (answer, error) {
	a, err := r.untilAnswer(c, shard, method, path, sh, body, leaderMoved)
	if err != nil {
		return a, fmt.Errorf("%s %s at the leader of shard %d: %w", method, path, shard, err)
	}
	return a, nil
}

// untilAnswer sends method path (shard header sh) at whoever leads shard
// now, again every 20 ms while there is no leader, the request fails, or
// retry says the answer is no verdict, until 20s passed; it returns the
// first other answer, or the last error.
func (r rpc) untilAnswer(c *nodetest.Cluster, shard uint64, method, path string, sh uint64, body any, retry func(answer) bool) (answer, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var a answer
		var err error
		if leader := c.Leader(shard); leader == "" {
			err = fmt.Errorf("no leader of shard %d", shard)
		} else if a, err = r.do(c.RPCAddr(leader), method, path, sh, body); err == nil && !retry(a) {
			return a, nil
		} else if err == nil {
			err = fmt.Errorf("answer %s", a)
		}
		if time.Now().After(deadline) {
			return a, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderMoved reports whether a is a not_leader or unavailable answer:
// the node asked no longer leads, or the shard has no leader right now.
func leaderMoved(a answer) bool {
	var e shardrpc.ErrorBody
	switch a.status {
	case fasthttp.StatusServiceUnavailable:
		return true
	case fasthttp.StatusMisdirectedRequest:
		return json.Unmarshal(a.body, &e) == nil && e.Code == shardrpc.ErrCodeNotLeader
	}
	return false
}

// createAtLeader creates a link at whoever leads shard, following
// not_leader answers and retrying unavailable ones with the same request
// ID, until it gets a final answer.
func (r rpc) createAtLeader(c *nodetest.Cluster, shard uint64, req shardrpc.CreateRequest) answer {
	r.t.Helper()
	var last answer
	c.Eventually(fmt.Sprintf("a final answer to a create in shard %d", shard), func() error {
		leader := c.Leader(shard)
		if leader == "" {
			return fmt.Errorf("no leader")
		}
		a, err := r.do(c.RPCAddr(leader), fasthttp.MethodPost, shardrpc.PathCreate, shard, req)
		if err != nil {
			return err
		}
		last = a
		if a.status == fasthttp.StatusMisdirectedRequest || a.status == fasthttp.StatusServiceUnavailable {
			return fmt.Errorf("answer %s", a)
		}
		return nil
	})
	return last
}
