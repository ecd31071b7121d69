// Command linearizability checks a key-value history for linearizability with Porcupine
// (github.com/anishathalye/porcupine 1.3.0, vendored: ../shared/vendor/porcupine-1.3.0.tar.gz).
//
// Input: JSON lines, one operation each (tools/history.ts writes them):
//
//	{"client":0,"kind":"put","key":7,"value":12,"call":1000,"return":1500,"outcome":"ok"}
//
// call/return are microseconds; outcome is ok, failed (it did not take effect: dropped) or unknown
// (it may or may not have taken effect: a put with an infinite return time, a get dropped). A get's
// value is null when the key was absent. The model is a register per key (initially absent).
//
// Output: one verdict line; exit 0 linearizable, 1 not (the offending keys' visualisation written
// to -html), 2 unknown (the check timed out) or bad input.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op is one line of the history.
type Op struct {
	Client  int    `json:"client"`
	Kind    string `json:"kind"`
	Key     int64  `json:"key"`
	Value   *int64 `json:"value"`
	Call    int64  `json:"call"`
	Return  *int64 `json:"return"`
	Outcome string `json:"outcome"`
}

type kvInput struct {
	put   bool
	key   int64
	value *int64 // put: the value written
}

// kvOutput is a get's result (nil = absent); a put's output is ignored.
type kvOutput struct {
	value *int64
}

func same(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func show(v *int64) string {
	if v == nil {
		return "absent"
	}
	return fmt.Sprint(*v)
}

// Model is a register per key: the state is the key's value (*int64, nil = absent).
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int64][]porcupine.Operation{}
		var keys []int64
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return (*int64)(nil) },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(kvInput)
		if in.put {
			return true, in.value
		}
		return same(state.(*int64), output.(kvOutput).value), state
	},
	Equal: func(a, b interface{}) bool { return same(a.(*int64), b.(*int64)) },
	DescribeOperation: func(input, output interface{}) string {
		in := input.(kvInput)
		if in.put {
			return fmt.Sprintf("put(%d, %s)", in.key, show(in.value))
		}
		return fmt.Sprintf("get(%d) → %s", in.key, show(output.(kvOutput).value))
	},
	DescribeState: func(state interface{}) string { return show(state.(*int64)) },
}

// Stats counts what the history held and what the check used.
type Stats struct {
	Lines, Puts, Gets, Unknown, Dropped int
	Keys                                int
}

// Read parses the history into Porcupine operations (failed ops and unknown gets dropped).
func Read(r io.Reader) ([]porcupine.Operation, Stats, error) {
	var ops []porcupine.Operation
	var st Stats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	keys := map[int64]bool{}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		st.Lines++
		var o Op
		if err := json.Unmarshal(line, &o); err != nil {
			return nil, st, fmt.Errorf("line %d: %v", st.Lines, err)
		}
		if o.Kind != "put" && o.Kind != "get" {
			return nil, st, fmt.Errorf("line %d: kind %q is neither put nor get", st.Lines, o.Kind)
		}
		if o.Outcome == "failed" || (o.Outcome == "unknown" && o.Kind == "get") {
			st.Dropped++
			continue
		}
		ret := int64(math.MaxInt64)
		switch o.Outcome {
		case "ok":
			if o.Return == nil || *o.Return < o.Call {
				return nil, st, fmt.Errorf("line %d: an ok operation needs return >= call", st.Lines)
			}
			ret = *o.Return
		case "unknown":
			st.Unknown++
		default:
			return nil, st, fmt.Errorf("line %d: outcome %q is not ok, failed or unknown", st.Lines, o.Outcome)
		}
		if o.Kind == "put" {
			if o.Value == nil {
				return nil, st, fmt.Errorf("line %d: a put needs a value", st.Lines)
			}
			st.Puts++
		} else {
			st.Gets++
		}
		keys[o.Key] = true
		ops = append(ops, porcupine.Operation{
			ClientId: o.Client,
			Input:    kvInput{put: o.Kind == "put", key: o.Key, value: o.Value},
			Call:     o.Call,
			Output:   kvOutput{value: o.Value},
			Return:   ret,
		})
	}
	st.Keys = len(keys)
	return ops, st, sc.Err()
}

// Check checks every key on its own (Porcupine runs one goroutine per partition: a history of a
// million keys is checked in chunks) and returns the keys whose history is not linearizable and
// whether any check ran out of time.
func Check(ops []porcupine.Operation, perKey time.Duration) (bad []int64, timedOut []int64) {
	for _, part := range Model.Partition(ops) {
		switch porcupine.CheckOperationsTimeout(Model, part, perKey) {
		case porcupine.Illegal:
			bad = append(bad, part[0].Input.(kvInput).key)
		case porcupine.Unknown:
			timedOut = append(timedOut, part[0].Input.(kvInput).key)
		}
	}
	return bad, timedOut
}

func main() {
	in := flag.String("history", "", "the history (JSON lines); - for stdin")
	html := flag.String("html", "linearizability.html", "where to write the visualisation of the keys that fail")
	perKey := flag.Duration("timeout", 10*time.Second, "bound of one key's check")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *in != "" && *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Printf("linearizability: UNKNOWN: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		r = f
	}
	ops, st, err := Read(r)
	if err != nil {
		fmt.Printf("linearizability: UNKNOWN: bad history: %v\n", err)
		os.Exit(2)
	}
	started := time.Now()
	bad, timedOut := Check(ops, *perKey)
	what := fmt.Sprintf("%d operations (%d puts, %d gets, %d puts of unknown outcome) on %d keys; %d failed or unknown gets left out; checked in %.1f s",
		len(ops), st.Puts, st.Gets, st.Unknown, st.Keys, st.Dropped, time.Since(started).Seconds())
	if len(bad) > 0 {
		show := bad
		if len(show) > 20 {
			show = show[:20]
		}
		wanted := map[int64]bool{}
		for _, k := range show {
			wanted[k] = true
		}
		var sub []porcupine.Operation
		for _, op := range ops {
			if wanted[op.Input.(kvInput).key] {
				sub = append(sub, op)
			}
		}
		_, info := porcupine.CheckOperationsVerbose(Model, sub, 0)
		note := ""
		if err := porcupine.VisualizePath(Model, info, *html); err != nil {
			note = fmt.Sprintf(" (visualisation not written: %v)", err)
		} else {
			note = fmt.Sprintf(" (visualisation of the first %d: %s)", len(show), *html)
		}
		fmt.Printf("linearizability: VIOLATED on %d keys, e.g. %v%s; %s\n", len(bad), show, note, what)
		os.Exit(1)
	}
	if len(timedOut) > 0 {
		fmt.Printf("linearizability: UNKNOWN: %d keys not decided within %v, e.g. %d; %s\n", len(timedOut), *perKey, timedOut[0], what)
		os.Exit(2)
	}
	fmt.Printf("linearizability: OK: %s\n", what)
}
