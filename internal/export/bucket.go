package export

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	s3v2 "github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// SplitURL splits a braze_currents `url` (or `quarantine`) into the url
// gocloud opens as a bucket and the key prefix inside it. For cloud schemes
// the path is the prefix (opening the whole url would make the drivers
// reject or ignore it); for file:// the path is the folder fileblob opens,
// so there is no prefix. A non-empty prefix ends in "/".
func SplitURL(raw string) (bucketURL, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "":
		return "", "", fmt.Errorf("%q has no scheme: want s3://, gs://, azblob://, file:// or mem://", raw)
	case "file":
		if u.Path == "" && u.Host == "" {
			return "", "", fmt.Errorf("%q names no folder", raw)
		}
		return raw, "", nil
	}
	prefix = strings.TrimPrefix(u.Path, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	u.Path, u.RawPath = "", ""
	return u.String(), prefix, nil
}

// Where names a braze_currents `url` (or `quarantine`) for logs and errors:
// the scheme, bucket and prefix, without the query, whose parameters (an
// endpoint, a profile, a SAS token) are the operator's and can be secret.
func Where(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable url)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// OpenBucket opens a bucket url (the first result of SplitURL) with
// gocloud's default URL mux, whose drivers the caller imports, plus one
// parameter gocloud v0.37 lacks: `use_path_style=true` on an s3:// url opens
// the bucket with AWS SDK v2 and path-style addressing, for S3-compatible
// stores on a custom `endpoint` (MinIO, Ceph, a loopback test server),
// which do not resolve the bucket in the host name, as SDK v2 puts it
// otherwise; the default SDK v1 takes `s3ForcePathStyle=true` instead.
func OpenBucket(ctx context.Context, raw string) (*blob.Bucket, error) {
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

// OpenPrefixed opens a braze_currents url as the input reads it: the bucket,
// narrowed to the url's prefix, and that prefix (see Lister.Prefix).
func OpenPrefixed(ctx context.Context, raw string) (*blob.Bucket, string, error) {
	bucketURL, prefix, err := SplitURL(raw)
	if err != nil {
		return nil, "", err
	}
	b, err := OpenBucket(ctx, bucketURL)
	if err != nil {
		return nil, "", err
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix)
	}
	return b, prefix, nil
}
