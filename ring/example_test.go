package ring_test

import (
	"fmt"

	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shortcode"
)

func Example() {
	codec, err := shortcode.New(7, 1024, nil)
	if err != nil {
		panic(err)
	}
	r, err := ring.New([]uint64{3, 1, 2}, 1024, codec)
	if err != nil {
		panic(err)
	}
	// A new link for a URL is allocated in the URL's partition...
	p := r.PartitionOfURL("https://example.com/")
	lo, _ := codec.Range(p)
	code := codec.Encode(lo)
	// ...and every router finds that partition again from the code alone.
	fmt.Println(r.PartitionOfCode(code) == p, r.ShardOfCode(code) == r.ShardOf(p))
	// An alias is placed by hashing.
	fmt.Println(r.PartitionOfCode("spring-sale") < 1024)
	// Output:
	// true true
	// true
}
