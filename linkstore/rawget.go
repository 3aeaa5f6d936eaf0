package linkstore

// AppendLinkKey appends LinkKey(p, code) to dst and returns the extended
// slice: the key of a link record built without allocating, for the
// resolve path that reads the stored record bytes as they are
// (raftstore.Group.ReadValue) and hands them to DecodeRecord elsewhere.
func AppendLinkKey(dst []byte, p uint32, code []byte) []byte {
	return appendLinkKey(dst, p, code)
}
