package export

import (
	"context"
	"testing"
)

func TestSplitURL(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix string }{
		{"s3://bkt/currents?region=us-east-1", "s3://bkt?region=us-east-1", "currents/"},
		{"s3://bkt/a/b/", "s3://bkt", "a/b/"},
		{"s3://bkt", "s3://bkt", ""},
		{"gs://bkt/currents", "gs://bkt", "currents/"},
		{"azblob://container/currents?storage_account=acct", "azblob://container?storage_account=acct", "currents/"},
		{"file:///data/currents", "file:///data/currents", ""},
		{"mem:///currents", "mem:", "currents/"},
	} {
		b, p, err := SplitURL(c.in)
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("SplitURL(%q) = %q, %q, %v; want %q, %q", c.in, b, p, err, c.bucket, c.prefix)
		}
	}
	for _, bad := range []string{"/data/currents", "file://", "%zz"} {
		if _, _, err := SplitURL(bad); err == nil {
			t.Errorf("SplitURL(%q): no error", bad)
		}
	}
}

func TestOpenBucketOpensWhatSplitURLGives(t *testing.T) {
	_, prefix, err := SplitURL("mem:///currents")
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenBucket(context.Background(), "mem:")
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	if prefix != "currents/" {
		t.Fatalf("prefix %q", prefix)
	}
}

// Logs name a bucket url without its query: its parameters are the
// operator's (an endpoint, a profile, a SAS token).
func TestWhereDropsTheQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"s3://b/currents?region=us-east-1&endpoint=http://minio:9000": "s3://b/currents",
		"azblob://c/p?sas_token=secret":                               "azblob://c/p",
		"file:///data/currents":                                       "file:///data/currents",
	} {
		if got := Where(raw); got != want {
			t.Errorf("Where(%q) = %q, want %q", raw, got, want)
		}
	}
}
