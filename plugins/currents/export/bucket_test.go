package export

import "testing"

func TestSplitURL(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix string }{
		{"s3://b/currents?region=us-east-1", "s3://b?region=us-east-1", "currents/"},
		{"s3://b/currents/", "s3://b", "currents/"},
		{"gs://b", "gs://b", ""},
		{"file:///data/currents", "file:///data/currents", ""},
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
