package testenv

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// CorruptBatch damages the record batch holding offset of the topic's
// partition where the embedded broker keeps it on disk (a flipped bit in
// its last record, as a failing disk leaves it), so that its CRC fails
// on every fetch from now on. It returns the batch's offsets and its
// bytes as they now read. The Kafka must have been started with OnDisk.
func (k *Kafka) CorruptBatch(t testing.TB, topic string, partition int, offset int64) (first, last int64, raw []byte) {
	t.Helper()
	if k.dataDir == "" {
		t.Fatal("CorruptBatch needs a Kafka started with KafkaOptions.OnDisk")
	}
	// kfake's layout: partitions/<topic>-<p>/<base offset>.dat, each a
	// run of record batches as the protocol sends them
	dir := filepath.Join(k.dataDir, "partitions", fmt.Sprintf("%s-%d", url.PathEscape(topic), partition))
	segments, err := filepath.Glob(filepath.Join(dir, "*.dat"))
	if err != nil || len(segments) == 0 {
		t.Fatalf("no log segments of %s/%d in %s (%v)", topic, partition, dir, err)
	}
	for _, path := range segments {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for pos := 0; pos+61 <= len(data); {
			base := int64(binary.BigEndian.Uint64(data[pos:]))
			end := pos + 12 + int(binary.BigEndian.Uint32(data[pos+8:]))
			lastOffset := base + int64(binary.BigEndian.Uint32(data[pos+23:]))
			if base <= offset && offset <= lastOffset {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte{data[end-1] ^ 0x01}, int64(end-1)); err != nil {
					t.Fatal(err)
				}
				raw = append([]byte(nil), data[pos:end]...)
				raw[len(raw)-1] ^= 0x01
				return base, lastOffset, raw
			}
			pos = end
		}
	}
	t.Fatalf("no record batch of %s/%d holds offset %d", topic, partition, offset)
	return 0, 0, nil
}
