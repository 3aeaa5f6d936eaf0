package history

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRecorderConcurrentClients(t *testing.T) {
	rec := NewRecorder()
	const clients, perClient = 16, 200
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				url := fmt.Sprintf("https://e.com/%d/%d", c, i)
				call := rec.Begin(c, CreateInput(url))
				if err := call.End(Created(fmt.Sprintf("c%d-%d", c, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ops := rec.Ops()
	if len(ops) != clients*perClient {
		t.Fatalf("%d ops, want %d", len(ops), clients*perClient)
	}
	last := make(map[int]int64) // client -> return of its previous op
	for i, op := range ops {
		if op.ID != i {
			t.Fatalf("op %d has id %d", i, op.ID)
		}
		if op.Return < op.Invoke {
			t.Fatalf("op %d returns before it is invoked", op.ID)
		}
	}
	// A client's operations do not overlap.
	for _, op := range ops {
		if prev, ok := last[op.Client]; ok && op.Invoke < prev {
			t.Fatalf("client %d: op %d invoked before its previous op returned", op.Client, op.ID)
		}
		last[op.Client] = op.Return
	}
	if err := Validate(ops); err != nil {
		t.Fatal(err)
	}
}

func TestRecorderPendingCallsAreUnknown(t *testing.T) {
	rec := NewRecorder()
	done := rec.Begin(0, AliasInput("abc", "https://e.com/a"))
	pending := rec.Begin(1, CreateInput("https://e.com/b"))
	if err := done.End(Created("abc")); err != nil {
		t.Fatal(err)
	}
	if err := done.End(AliasTaken()); !errors.Is(err, ErrEnded) {
		t.Fatalf("second End: %v", err)
	}
	ops := rec.Ops()
	if len(ops) != 2 || ops[0].Out.Result != ResultOK || ops[1].Out.Result != ResultUnknown {
		t.Fatalf("ops %+v", ops)
	}
	if ops[1].Return < ops[1].Invoke {
		t.Fatal("a pending op returns before it was invoked")
	}
	if err := pending.End(Unknown(errors.New("timeout"))); err != nil {
		t.Fatal(err)
	}
	if ops := rec.Ops(); ops[1].Out.Error != "timeout" {
		t.Fatalf("ended op %+v", ops[1])
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	rec := NewRecorder()
	rec.Begin(0, CreateInput("https://e.com/x?a=1&b=<2>")).End(Created("aaaaaaa"))
	rec.Begin(1, AliasInput("al", "https://e.com/y")).End(AliasTaken())
	rec.Begin(2, ResolveInput("aaaaaaa")).End(Found("https://e.com/x?a=1&b=<2>"))
	rec.Begin(2, ResolveInput("zz")).End(NotFound())
	rec.Begin(3, Input{Kind: KindCreate, URL: "https://e.com/z", Reuse: true}).End(Unknown(errors.New("503")))
	rec.Begin(3, CreateInput("ftp://bad")).End(Rejected(errors.New("400 invalid_url")))
	path := filepath.Join(t.TempDir(), "h.jsonl")
	if err := rec.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rec.Ops()) {
		t.Fatalf("round trip:\n%+v\n%+v", back, rec.Ops())
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("loading a missing file succeeded")
	}
}

func TestDecodeErrors(t *testing.T) {
	good := `{"id":0,"client":0,"invoke":1,"return":2,"in":{"kind":"resolve","code":"c"},"out":{"result":"not_found"}}`
	cases := map[string]string{
		"not json":       "hello\n",
		"unknown field":  `{"id":0,"client":0,"invoke":1,"return":2,"in":{"kind":"resolve","code":"c"},"out":{"result":"not_found"},"extra":1}`,
		"trailing data":  good + ` {}`,
		"invalid op":     strings.Replace(good, `"return":2`, `"return":0`, 1),
		"duplicate ids":  good + "\n" + good,
		"line too long":  strings.Repeat(" ", maxLine+1) + good,
		"wrong type":     `{"id":"zero"}`,
		"bad second row": good + "\n{",
	}
	for name, in := range cases {
		if _, err := Decode(strings.NewReader(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	ops, err := Decode(strings.NewReader("\n" + good + "\n\n"))
	if err != nil || len(ops) != 1 {
		t.Fatalf("blank lines: %v %v", ops, err)
	}
	if _, err := Decode(strings.NewReader(strings.Replace(good, `"return":2`, `"return":0`, 1))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid op: %v", err)
	}
}

func TestOpString(t *testing.T) {
	op := Op{ID: 3, Client: 1, Invoke: 1_500_000, Return: 2_000_000, In: Input{Kind: KindCreate, URL: "u", Reuse: true}, Out: Unknown(errors.New("timeout"))}
	if got, want := op.String(), "op 3 [client 1, 1.500ms .. 2.000ms] create(u, reuse) -> unknown (timeout)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	rec := NewRecorder()
	rec.Begin(0, CreateInput("https://e.com/x")).End(Created("aaaaaaa"))
	rec.Begin(1, AliasInput("al", "https://e.com/y")).End(AliasTaken())
	rec.Begin(2, ResolveInput("aaaaaaa")).End(Found("https://e.com/x"))
	rec.Begin(3, CreateInput("https://e.com/z")).End(Unknown(errors.New("timeout")))
	var buf bytes.Buffer
	if err := Encode(&buf, rec.Ops()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(""))
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"id":0,"in":{"kind":"resolve","code":"c"},"out":{"result":"found","url":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes is valid, re-encodes to the same history, and
		// can be checked without an error.
		var out bytes.Buffer
		if err := Encode(&out, ops); err != nil {
			t.Fatal(err)
		}
		again, err := Decode(&out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(again) != len(ops) || (len(ops) > 0 && !reflect.DeepEqual(again, ops)) {
			t.Fatalf("round trip changed the history")
		}
		if _, err := Check(ops, Options{}); err != nil {
			t.Fatalf("check of a valid history: %v", err)
		}
	})
}
