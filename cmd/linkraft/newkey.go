package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/linkraft/linkraft/config"
)

// runNewKey prints a fresh random API key and the api_keys entry that
// holds its hash. The key itself is printed once and stored nowhere.
func runNewKey(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin new-key --id ID [--admin]",
		"Prints a fresh random API key (256 bits from crypto/rand) and the line to add to\n"+
			"cluster.yaml's api_keys list. Only the key's SHA-256 goes into the file: give\n"+
			"the key to its user, it cannot be recovered later.", stderr)
	id := fs.String("id", "", "the key's ID, recorded as the owner of the links it creates (required)")
	admin := fs.Bool("admin", false, "an admin key: may read, edit, list and delete every link")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k := config.APIKey{ID: *id, Admin: *admin}
	key := config.NewAPIKey()
	k.Hash = config.HashAPIKey(key)
	c := config.Default()
	c.APIKeys = []config.APIKey{k}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(stderr, "linkraft admin new-key: --id: %v\n", unwrapField(err))
		fs.Usage()
		return errUsage
	}
	fmt.Fprintf(stdout, "key: %s\n", key)
	fmt.Fprintf(stdout, "# add under api_keys: in cluster.yaml, then restart the routers:\n")
	fmt.Fprintf(stdout, "  - {id: %s, hash: %q, admin: %s}\n", strconv.Quote(k.ID), k.Hash, strconv.FormatBool(k.Admin))
	return nil
}

// unwrapField returns the problem of the first field error of err.
func unwrapField(err error) string {
	var fe *config.FieldError
	if errors.As(err, &fe) {
		return fe.Problem
	}
	return err.Error()
}
