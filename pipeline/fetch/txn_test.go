package fetch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/seatflow/seatflow/pipeline/fetch"
	"github.com/seatflow/seatflow/testenv"
)

// TestAbortedTransactionsAreSkipped: a transactional publisher (franz-go's
// client, not ours) commits, aborts, and commits again, with plain writes
// between; a fetch hands over the committed and the plain records only,
// and reads past the aborted ones and the markers.
func TestAbortedTransactionsAreSkipped(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	txn, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.TransactionalID("seatflow-test-txn"), kgo.DefaultProduceTopic(k.Usage))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	plain, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.DefaultProduceTopic(k.Usage))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	var want []string
	transaction := func(name string, n int, commit bool) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			v := fmt.Sprintf("%s-%d", name, i)
			if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if commit {
				want = append(want, v)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	write := func(v string) {
		t.Helper()
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	transaction("committed", 3, true)
	write("plain-1")
	transaction("aborted", 4, false)
	write("plain-2")
	transaction("aborted-again", 2, false)
	transaction("committed-later", 2, true)

	c := dialLeader(t, k)
	var got []string
	for offset := int64(0); ; {
		res, err := c.Fetch(ctx, fetch.Request{Topic: k.Usage, Offset: offset, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond},
			func(r fetch.Record) { got = append(got, string(r.Value)) })
		if err != nil {
			t.Fatal(err)
		}
		if res.Next >= res.HighWatermark {
			break
		}
		offset = res.Next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records fetched:\n%q\nwant the committed and plain ones:\n%q", got, want)
	}
}
