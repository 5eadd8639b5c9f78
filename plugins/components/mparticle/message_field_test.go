package mparticle

import (
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"
)

func TestMessageFieldReadsAsTheInterpolationDoes(t *testing.T) {
	spec := service.NewConfigSpec().Field(service.NewInterpolatedStringField("f"))
	msg := service.NewMessage([]byte(`{"feed":"web"}`))
	msg.MetaSetMut("mparticle_feed", "ios")
	msg.MetaSetMut("count", int64(3))
	for _, tc := range []struct {
		raw      string
		metaOnly bool
	}{
		{`${! @mparticle_feed }`, true},
		{`${!@mparticle_feed}`, true},
		{`${! meta("mparticle_feed") }`, true},
		{`${! @count }`, true},
		{`${! @missing }`, true},
		{`${! @mparticle_feed.uppercase() }`, false},
		{`${! json("feed") }`, false},
		{`unbound`, false},
		{`x-${! @mparticle_feed }`, false},
	} {
		conf, err := spec.ParseYAML("f: '"+tc.raw+"'", nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := newMessageField(conf, "f")
		if err != nil {
			t.Fatal(err)
		}
		if (f.metaKey != "") != tc.metaOnly {
			t.Errorf("%s: read as metadata only = %v, want %v", tc.raw, f.metaKey != "", tc.metaOnly)
		}
		got, err := f.get(msg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := service.MessageBatch{msg}.TryInterpolatedString(0, f.interp)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: got %q, the interpolation gives %q", tc.raw, got, want)
		}
	}
}
