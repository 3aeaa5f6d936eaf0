package linkstore

// ChangedCodes calls fn with every code whose redirect answer the command
// cmd may change when applied: the code of a Delete or an Edit, each item of
// a Purge. Creates never change the answer of a code a router may have
// cached (a code is issued once and never reissued, a create over an
// existing code or tombstone is refused), and clicks never do. A command
// that does not decode names no code (Apply refuses it without a change).
//
// It reads only cmd, so every replica reports the same codes for the same
// entry: the change feed's event hook (package node) calls it next to Apply
// and it has no effect on what Apply stores. The types that cannot change
// an answer are rejected on their type byte, without decoding.
func ChangedCodes(cmd []byte, fn func(code string)) {
	if len(cmd) < 2 || cmd[0] != commandVersion {
		return
	}
	switch CommandType(cmd[1]) {
	case TypeDelete, TypeEdit, TypePurge:
	default:
		return
	}
	c, err := DecodeCommand(cmd)
	if err != nil {
		return
	}
	switch c := c.(type) {
	case Delete:
		fn(c.Code)
	case Edit:
		fn(c.Code)
	case Purge:
		for _, it := range c.Items {
			fn(it.Code)
		}
	}
}
