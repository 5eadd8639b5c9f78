package currents

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	s3v2 "github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// bciOpenBucket opens a bucket url with gocloud's default URL mux, plus one
// parameter gocloud v0.37 lacks: `use_path_style=true` on an s3:// url opens
// the bucket with AWS SDK v2 and path-style addressing. SDK v2 otherwise puts
// the bucket in the host name, which S3-compatible stores on a custom
// `endpoint` (MinIO, Ceph, a loopback test server) do not resolve; the
// default SDK v1 takes `s3ForcePathStyle=true` instead.
func bciOpenBucket(ctx context.Context, raw string) (*blob.Bucket, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if u.Scheme != s3blob.Scheme || !q.Has("use_path_style") {
		return blob.OpenBucket(ctx, raw)
	}
	pathStyle, err := strconv.ParseBool(q.Get("use_path_style"))
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: use_path_style=%q: %w", u.Host, q.Get("use_path_style"), err)
	}
	q.Del("use_path_style")
	q.Del("awssdk")
	cfg, err := aws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", u.Host, err)
	}
	client := s3v2.NewFromConfig(cfg, func(o *s3v2.Options) { o.UsePathStyle = pathStyle })
	return s3blob.OpenBucketV2(ctx, client, u.Host, nil)
}
