package configlint

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for name, c := range map[string]struct {
		config string
		warn   int // line of the one warning, 0 for none
	}{
		"aws_s3 listing with the scanner": {`
input:
  aws_s3:
    bucket: b
    scanner:
      braze_currents: {}
`, 3},
		"aws_s3 with sqs": {`
input:
  aws_s3:
    bucket: b
    sqs: { url: "${QUEUE_URL}" }
    scanner: { braze_currents: {} }
`, 0},
		"gcs inside a broker": {`
input:
  broker:
    inputs:
      - gcp_cloud_storage:
          bucket: b
          scanner: { braze_currents: {} }
`, 5},
		"another scanner": {`
input:
  aws_s3:
    bucket: b
    scanner: { lines: {} }
`, 0},
		"the braze_currents input": {`
input:
  braze_currents: { url: "s3://b/currents" }
`, 0},
	} {
		w, err := Check([]byte(c.config))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch {
		case c.warn == 0 && len(w) != 0:
			t.Errorf("%s: warned %v", name, w)
		case c.warn != 0 && (len(w) != 1 || w[0].Line != c.warn || !strings.Contains(w[0].Message, "reads each object once")):
			t.Errorf("%s: warnings %v, want one at line %d", name, w, c.warn)
		}
	}
	if _, err := Check([]byte("input: [")); err == nil {
		t.Error("a config that is not YAML: no error")
	}
}
