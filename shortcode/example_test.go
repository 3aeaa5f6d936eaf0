package shortcode_test

import (
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/shortcode"
)

func Example() {
	// The development key (empty secret): fine for a laptop, not for production.
	c, err := shortcode.New(7, 1024, nil)
	if err != nil {
		panic(err)
	}
	lo, hi := c.Range(5) // partition 5's IDs
	code := c.Encode(lo)
	id, _ := c.Decode(code)
	p, _ := c.PartitionOfCode(code)
	fmt.Println(hi-lo, id == lo, p)
	// Output: 3439076763 true 5
}

func ExampleValidateAlias() {
	for _, a := range []string{"spring-sale", "ab", "a/b", "Admin"} {
		err := shortcode.ValidateAlias(a)
		switch {
		case err == nil:
			fmt.Println(a, "ok")
		case errors.Is(err, shortcode.ErrAliasLength):
			fmt.Println(a, "length")
		case errors.Is(err, shortcode.ErrAliasCharset):
			fmt.Println(a, "charset")
		case errors.Is(err, shortcode.ErrAliasReserved):
			fmt.Println(a, "reserved")
		}
	}
	// Output:
	// spring-sale ok
	// ab length
	// a/b charset
	// Admin reserved
}
