package raftstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// snapshotMagic opens every snapshot stream of format version 1.
var snapshotMagic = [8]byte{'L', 'R', 'S', 'N', 'A', 'P', 0, 1}

// snapshotMagicZstd opens a snapshot of format version 2: the rest of the
// stream is one zstd stream whose content is a format 1 stream.
var snapshotMagicZstd = [8]byte{'L', 'R', 'S', 'N', 'A', 'P', 0, 2}

// snapshotMagicV3 opens a snapshot of format version 3: a format 2 stream
// under another magic. Persist writes version 3; Restore reads all three.
// The version says that the state may hold what builds reading only
// versions 1 and 2 would misapply (linkstore's request table of epochs,
// which those builds do not read, so they would apply a retried create
// twice): they refuse it as a bad magic, and a lagging replica of such a
// build waits for its upgrade instead of diverging.
var snapshotMagicV3 = [8]byte{'L', 'R', 'S', 'N', 'A', 'P', 0, 3}

// maxSnapshotWindow bounds the zstd window a snapshot may ask the decoder
// for, so a corrupt header cannot make Restore allocate without bound.
// Persist's encoder uses far less.
const maxSnapshotWindow = 8 << 20

// Limits on one snapshot record, so a corrupt stream cannot make Restore
// allocate without bound.
const (
	maxSnapshotKey   = 1 << 16
	maxSnapshotValue = 1 << 28
)

// ErrBadSnapshot is returned (wrapped) by Restore for a stream that is not a
// well-formed snapshot of the group.
var ErrBadSnapshot = errors.New("raftstore: malformed snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fsmSnapshot is a point-in-time Pebble snapshot of one group.
type fsmSnapshot struct {
	db      *pebble.DB
	snap    *pebble.EventuallyFileOnlySnapshot
	group   uint64
	applied uint64

	releaseOnce sync.Once
}

// Persist streams the group's [0x03, 0x05) range to sink (format in the
// package documentation). It syncs the WAL first: raft may truncate the log
// up to the snapshot once the sink is closed, so the applied state the
// snapshot stands for must be durable in Pebble by then.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: group %d: persist snapshot at %d: %w", s.group, s.applied, err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raftstore: group %d: close snapshot at %d: %w", s.group, s.applied, err)
	}
	return nil
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	return writeCompressedSnapshot(w, s.snap, s.group, s.applied)
}

// writeCompressedSnapshot writes the format 3 stream of group: the magic,
// then writeSnapshot's format 1 stream compressed with zstd (as format 2). Raft keeps the
// latest snapshot of every group on disk beside the same state in Pebble,
// and sends it whole to a follower that needs it: compressed, it takes
// about a third of the bytes (links are URLs and base62 codes;
// docs/BENCHMARKS.md).
func writeCompressedSnapshot(w io.Writer, r pebble.Reader, group, applied uint64) error {
	if _, err := w.Write(snapshotMagicV3[:]); err != nil {
		return err
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(4<<20))
	if err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if err := writeSnapshot(enc, r, group, applied); err != nil {
		_ = enc.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return nil
}

// Release closes the Pebble snapshot. raft calls it once; extra calls are
// harmless.
func (s *fsmSnapshot) Release() {
	s.releaseOnce.Do(func() { _ = s.snap.Close() })
}

// writeSnapshot writes the snapshot stream of group as read from r:
//
//	magic [8] | group u64 | applied u64 |
//	{ len(key) uvarint | key | len(value) uvarint | value }* |
//	0x00 | count u64 | crc32c u32
//
// Keys are relative to the group prefix (they start with the kind byte).
// The checksum covers every byte before it.
func writeSnapshot(w io.Writer, r pebble.Reader, group, applied uint64) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	var hdr [24]byte
	copy(hdr[:8], snapshotMagic[:])
	binary.BigEndian.PutUint64(hdr[8:], group)
	binary.BigEndian.PutUint64(hdr[16:], applied)
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: kindPrefix(group, kindMeta),
		UpperBound: kindPrefix(group, kindData+1),
	})
	if err != nil {
		return fmt.Errorf("iterator: %w", err)
	}
	var count uint64
	var lb [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[groupPrefixLen:]
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("read value: %w", err)
		}
		_, _ = bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(k)))])
		_, _ = bw.Write(k)
		_, _ = bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(v)))])
		if _, err := bw.Write(v); err != nil {
			_ = it.Close()
			return err
		}
		count++
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("iterator: %w", err)
	}
	var tail [9]byte // end marker + count
	binary.BigEndian.PutUint64(tail[1:], count)
	if _, err := bw.Write(tail[:]); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err = w.Write(sum[:])
	return err
}

// snapshotReader reads a snapshot stream record by record and checks it.
type snapshotReader struct {
	r     *bufio.Reader
	crc   hash.Hash32
	group uint64
	dec   *zstd.Decoder // format 2: the decompressor, closed by close

	applied  uint64
	count    uint64
	last     []byte // previous relative key, for the ordering check
	keyBuf   []byte
	valueBuf []byte
	done     bool
}

// newSnapshotReader reads the header of a snapshot stream of either
// format; call close when done with it.
func newSnapshotReader(r io.Reader, group uint64) (*snapshotReader, error) {
	// The checksum is computed over the bytes each record consumes (not on
	// what bufio reads ahead), so it ends exactly before the stored crc.
	sr := &snapshotReader{crc: crc32.New(castagnoli), group: group}
	var magic [8]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadSnapshot, unexpectedEOF(err))
	}
	switch magic {
	case snapshotMagic:
		r = io.MultiReader(bytes.NewReader(magic[:]), r)
	case snapshotMagicZstd, snapshotMagicV3:
		dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxSnapshotWindow),
			zstd.WithDecoderMaxMemory(maxSnapshotValue))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		sr.dec, r = dec, dec
	default:
		return nil, fmt.Errorf("%w: bad magic %x", ErrBadSnapshot, magic)
	}
	sr.r = bufio.NewReaderSize(r, 64<<10)
	var hdr [24]byte
	if err := sr.readFull(hdr[:]); err != nil {
		sr.close()
		return nil, fmt.Errorf("%w: header: %w", ErrBadSnapshot, err)
	}
	if !bytes.Equal(hdr[:8], snapshotMagic[:]) {
		sr.close()
		return nil, fmt.Errorf("%w: bad magic %x", ErrBadSnapshot, hdr[:8])
	}
	if g := binary.BigEndian.Uint64(hdr[8:]); g != group {
		sr.close()
		return nil, fmt.Errorf("%w: snapshot of group %d, want %d", ErrBadSnapshot, g, group)
	}
	sr.applied = binary.BigEndian.Uint64(hdr[16:])
	return sr, nil
}

// close releases the decompressor, if any. It is idempotent.
func (sr *snapshotReader) close() {
	if sr.dec != nil {
		sr.dec.Close()
		sr.dec = nil
	}
}

func (sr *snapshotReader) readFull(p []byte) error {
	if _, err := io.ReadFull(sr.r, p); err != nil {
		return unexpectedEOF(err)
	}
	sr.crc.Write(p)
	return nil
}

func (sr *snapshotReader) readUvarint() (uint64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		c, err := sr.r.ReadByte()
		if err != nil {
			return 0, unexpectedEOF(err)
		}
		buf[i] = c
		if c < 0x80 {
			sr.crc.Write(buf[:i+1])
			v, n := binary.Uvarint(buf[:i+1])
			if n <= 0 {
				return 0, errors.New("bad uvarint")
			}
			return v, nil
		}
	}
	return 0, errors.New("uvarint too long")
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next returns the next record (relative key, value; both valid until the
// next call), or ok=false after the trailer was read and verified.
func (sr *snapshotReader) next() (key, value []byte, ok bool, err error) {
	if sr.done {
		return nil, nil, false, nil
	}
	kl, err := sr.readUvarint()
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: record %d: %w", ErrBadSnapshot, sr.count, err)
	}
	if kl == 0 {
		return nil, nil, false, sr.trailer()
	}
	if kl > maxSnapshotKey {
		return nil, nil, false, fmt.Errorf("%w: record %d: key length %d", ErrBadSnapshot, sr.count, kl)
	}
	sr.keyBuf = grow(sr.keyBuf, int(kl))
	if err := sr.readFull(sr.keyBuf); err != nil {
		return nil, nil, false, fmt.Errorf("%w: record %d: %w", ErrBadSnapshot, sr.count, err)
	}
	if k := sr.keyBuf[0]; k != kindMeta && k != kindData {
		return nil, nil, false, fmt.Errorf("%w: record %d: key outside the snapshot range", ErrBadSnapshot, sr.count)
	}
	if sr.count > 0 && bytes.Compare(sr.last, sr.keyBuf) >= 0 {
		return nil, nil, false, fmt.Errorf("%w: record %d: keys out of order", ErrBadSnapshot, sr.count)
	}
	vl, err := sr.readUvarint()
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: record %d: %w", ErrBadSnapshot, sr.count, err)
	}
	if vl > maxSnapshotValue {
		return nil, nil, false, fmt.Errorf("%w: record %d: value length %d", ErrBadSnapshot, sr.count, vl)
	}
	sr.valueBuf = grow(sr.valueBuf, int(vl))
	if err := sr.readFull(sr.valueBuf); err != nil {
		return nil, nil, false, fmt.Errorf("%w: record %d: %w", ErrBadSnapshot, sr.count, err)
	}
	sr.last = append(sr.last[:0], sr.keyBuf...)
	sr.count++
	return sr.keyBuf, sr.valueBuf, true, nil
}

func (sr *snapshotReader) trailer() error {
	var cnt [8]byte
	if err := sr.readFull(cnt[:]); err != nil {
		return fmt.Errorf("%w: trailer: %w", ErrBadSnapshot, err)
	}
	want := sr.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(sr.r, sum[:]); err != nil {
		return fmt.Errorf("%w: checksum: %w", ErrBadSnapshot, unexpectedEOF(err))
	}
	if n := binary.BigEndian.Uint64(cnt[:]); n != sr.count {
		return fmt.Errorf("%w: trailer counts %d records, read %d", ErrBadSnapshot, n, sr.count)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, computed %08x", ErrBadSnapshot, got, want)
	}
	if _, err := sr.r.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: bytes after the trailer", ErrBadSnapshot)
	}
	sr.done = true
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// restoreEnv is what restoreGroup needs besides the DB.
type restoreEnv struct {
	fs         vfs.FS
	dir        string // directory on fs for the temporary sstable
	writerOpts sstable.WriterOptions
}

// restoreGroup atomically replaces group's [0x03, 0x05) range with the
// snapshot read from r, and returns the snapshot's applied index.
//
// The stream is checked and written to an sstable first; nothing in the DB
// changes until the whole stream has been read and verified. The sstable is
// then ingested with IngestAndExcise over the range: Pebble removes the old
// keys and adds the new ones in one durable version edit, so a crash leaves
// either the old state or the new one.
func restoreGroup(db *pebble.DB, group uint64, env restoreEnv, r io.Reader) (uint64, error) {
	sr, err := newSnapshotReader(r, group)
	if err != nil {
		return 0, err
	}
	defer sr.close()
	if err := env.fs.MkdirAll(env.dir, 0o755); err != nil {
		return 0, fmt.Errorf("create %s: %w", env.dir, err)
	}
	path := env.fs.PathJoin(env.dir, fmt.Sprintf("restore-%d.sst", group))
	_ = env.fs.Remove(path) // a leftover of a crashed restore
	f, err := env.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), env.writerOpts)
	ingested := false
	defer func() {
		if !ingested {
			_ = env.fs.Remove(path)
		}
	}()
	prefix := groupPrefix(group)
	var full []byte
	sawApplied := false
	for {
		k, v, ok, err := sr.next()
		if err != nil {
			_ = w.Close()
			return 0, err
		}
		if !ok {
			break
		}
		if len(k) == 2 && k[0] == kindMeta && k[1] == metaApplied {
			if len(v) != 8 || binary.BigEndian.Uint64(v) != sr.applied {
				_ = w.Close()
				return 0, fmt.Errorf("%w: applied index record disagrees with the header (%d)", ErrBadSnapshot, sr.applied)
			}
			sawApplied = true
		}
		full = append(append(full[:0], prefix...), k...)
		if err := w.Set(full, v); err != nil {
			_ = w.Close()
			return 0, fmt.Errorf("write sstable: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("write sstable: %w", err)
	}
	if !sawApplied && sr.applied != 0 {
		return 0, fmt.Errorf("%w: no applied index record for index %d", ErrBadSnapshot, sr.applied)
	}
	span := pebble.KeyRange{Start: kindPrefix(group, kindMeta), End: kindPrefix(group, kindData+1)}
	if sr.count == 0 {
		// Nothing to ingest: one synced batch empties the range.
		b := db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange(span.Start, span.End, nil); err != nil {
			return 0, fmt.Errorf("clear range: %w", err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return 0, fmt.Errorf("clear range: %w", err)
		}
		return sr.applied, nil
	}
	if _, err := db.IngestAndExcise(context.Background(), []string{path}, nil, nil, span); err != nil {
		return 0, fmt.Errorf("ingest: %w", err)
	}
	ingested = true // Pebble removed (linked away) the file
	return sr.applied, nil
}
