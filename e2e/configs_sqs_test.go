package e2e

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/router"
	"github.com/sirupsen/logrus"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// goawsOnce guards goaws's process-wide state (its environment, its queue
// table and its visibility-timeout ticker): one server per test process.
var goawsOnce struct {
	sync.Mutex
	srv *httptest.Server
}

// startGoaws serves goaws's SQS (in process, on loopback). goaws v0.4.5
// speaks SQS's query protocol (form posts, XML answers); the AWS SDK v2 of
// Benthos v4.27 speaks the JSON protocol (X-Amz-Target). sqsJSONToQuery
// translates the operations the aws_s3 input uses, each to the same
// operation of goaws, whose queue semantics (receipt handles, visibility
// timeout, deletes) answer.
func startGoaws(t *testing.T) *httptest.Server {
	t.Helper()
	goawsOnce.Lock()
	defer goawsOnce.Unlock()
	if goawsOnce.srv != nil {
		return goawsOnce.srv
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	app.CurrentEnvironment = app.Environment{Host: host, Port: port, AccountID: "100010001000",
		QueueAttributeDefaults: app.EnvQueueAttributes{VisibilityTimeout: 30, MaximumMessageSize: 262144}}
	logrus.SetLevel(logrus.WarnLevel) // goaws logs every call at INFO
	goaws := router.New()
	srv := httptest.NewUnstartedServer(sqsJSONToQuery(goaws))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	go gosqs.PeriodicTasks(200*time.Millisecond, make(chan struct{}))
	goawsOnce.srv = srv
	return srv
}

// sqsJSONToQuery passes query-protocol requests to goaws as they are and
// translates JSON-protocol ones.
func sqsJSONToQuery(goaws http.Handler) http.Handler {
	call := func(form url.Values) (int, []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		goaws.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	fail := func(w http.ResponseWriter, status int, body []byte) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": string(body)})
	}
	ok := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_ = json.NewEncoder(w).Encode(v)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		op, isJSON := strings.CutPrefix(target, "AmazonSQS.")
		if !isJSON {
			goaws.ServeHTTP(w, r)
			return
		}
		var in struct {
			QueueUrl            string
			MaxNumberOfMessages int
			WaitTimeSeconds     int
			VisibilityTimeout   *int
			ReceiptHandle       string
			Entries             []struct {
				Id                string
				ReceiptHandle     string
				VisibilityTimeout int
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			fail(w, http.StatusBadRequest, []byte(err.Error()))
			return
		}
		form := url.Values{"Action": {op}, "QueueUrl": {in.QueueUrl}}
		switch op {
		case "ReceiveMessage":
			if in.MaxNumberOfMessages > 0 {
				form.Set("MaxNumberOfMessages", fmt.Sprint(in.MaxNumberOfMessages))
			}
			form.Set("WaitTimeSeconds", fmt.Sprint(in.WaitTimeSeconds))
			form.Set("AttributeName.1", "All")
			status, body := call(form)
			if status != http.StatusOK {
				fail(w, status, body)
				return
			}
			var x struct {
				Messages []struct {
					MessageId, ReceiptHandle, MD5OfBody, Body string
					Attributes                                []struct{ Name, Value string } `xml:"Attribute"`
				} `xml:"ReceiveMessageResult>Message"`
			}
			if err := xml.Unmarshal(body, &x); err != nil {
				fail(w, http.StatusInternalServerError, []byte(err.Error()))
				return
			}
			type msg struct {
				MessageId, ReceiptHandle, MD5OfBody, Body string
				Attributes                                map[string]string `json:",omitempty"`
			}
			out := struct {
				Messages []msg `json:",omitempty"`
			}{}
			for _, m := range x.Messages {
				attrs := map[string]string{}
				for _, a := range m.Attributes {
					attrs[a.Name] = a.Value
				}
				out.Messages = append(out.Messages, msg{m.MessageId, m.ReceiptHandle, m.MD5OfBody, m.Body, attrs})
			}
			ok(w, out)
		case "DeleteMessage", "ChangeMessageVisibility":
			form.Set("ReceiptHandle", in.ReceiptHandle)
			if in.VisibilityTimeout != nil {
				form.Set("VisibilityTimeout", fmt.Sprint(*in.VisibilityTimeout))
			}
			if status, body := call(form); status != http.StatusOK {
				fail(w, status, body)
				return
			}
			ok(w, struct{}{})
		case "ChangeMessageVisibilityBatch": // not in goaws: one call per entry
			type entry struct{ Id string }
			out := struct{ Successful, Failed []entry }{Successful: []entry{}, Failed: []entry{}}
			for _, e := range in.Entries {
				f := url.Values{"Action": {"ChangeMessageVisibility"}, "QueueUrl": {in.QueueUrl},
					"ReceiptHandle": {e.ReceiptHandle}, "VisibilityTimeout": {fmt.Sprint(e.VisibilityTimeout)}}
				if status, _ := call(f); status == http.StatusOK {
					out.Successful = append(out.Successful, entry{e.Id})
				} else {
					out.Failed = append(out.Failed, entry{e.Id})
				}
			}
			ok(w, out)
		default:
			fail(w, http.StatusBadRequest, []byte("operation not translated: "+op))
		}
	})
}

// sqsCall posts a query-protocol action to goaws.
func sqsCall(t *testing.T, srv *httptest.Server, form url.Values) []byte {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s %v", form.Get("Action"), resp.StatusCode, body, err)
	}
	return body
}

// s3Notification is the message S3 sends to SQS when an object is created.
func s3Notification(bucket, key string, size int) string {
	enc := strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
		"eventTime": time.Now().UTC().Format(time.RFC3339Nano), "eventName": "ObjectCreated:Put",
		"s3": map[string]any{
			"s3SchemaVersion": "1.0", "configurationId": "currents-export",
			"bucket": map[string]any{"name": bucket, "arn": "arn:aws:s3:::" + bucket},
			"object": map[string]any{"key": enc, "size": size, "sequencer": fmt.Sprintf("%016X", time.Now().UnixNano())},
		},
	}}})
	return string(b)
}

// TestConfigS3SQS runs three instances of configs/s3-sqs.yaml as competing
// consumers of one queue (goaws) of S3 notifications for objects in gofakes3,
// and SIGKILLs one of them in the middle of an object: once the queue's
// visibility timeout has passed, the others take over its messages, and
// every event arrives (at least once: duplicates are counted).
func TestConfigS3SQS(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 6000, Users: 800, Hours: 2, BlockEvents: 20, FileEvents: 250, Seed: 351,
		EventTypes: []string{"users.messages.email.Send", "users.messages.email.Open", "users.canvas.Entry", "users.messages.pushnotification.Send"}})
	bodies := exp.objectBodies(t)
	s3 := startS3(t, "currents-bucket", bodies, time.Now().Add(-time.Hour))
	sqs := startGoaws(t)
	queue := fmt.Sprintf("currents-%d", time.Now().UnixNano())
	const visibility = 8 * time.Second
	created := sqsCall(t, sqs, url.Values{"Action": {"CreateQueue"}, "QueueName": {queue},
		"Attribute.1.Name": {"VisibilityTimeout"}, "Attribute.1.Value": {fmt.Sprint(int(visibility.Seconds()))}})
	var cq struct {
		URL string `xml:"CreateQueueResult>QueueUrl"`
	}
	if err := xml.Unmarshal(created, &cq); err != nil || cq.URL == "" {
		t.Fatalf("CreateQueue: %s %v", created, err)
	}

	// Each instance signs with credentials of its own, so the emulator tells
	// which instance delivered each batch.
	feeds := map[string]emulator.Credentials{}
	const instances = 3
	for i := 0; i < instances; i++ {
		for _, f := range []string{"ios", "android", "web", "unbound"} {
			feeds[fmt.Sprintf("%s#%d", f, i)] = emulator.Credentials{Key: fmt.Sprintf("%s-key-%d", f, i), Secret: fmt.Sprintf("%s-secret-%d", f, i)}
		}
	}
	// Latency on every request keeps each object in flight long enough to
	// kill an instance in its middle.
	emu, err := emulator.Start("127.0.0.1:0", emulator.Config{Feeds: feeds, BatchesPerSecond: -1, Faults: emulator.Faults{Latency: 150 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)

	cfg := shippedConfig(t, "s3-sqs.yaml")
	var procs []*binProc
	for i := 0; i < instances; i++ {
		env := append(awsTestEnv(t), "MPARTICLE_URL="+emu.URL, "CURRENTS_BUCKET=currents-bucket", "CURRENTS_SQS_URL="+cq.URL,
			"AWS_ENDPOINT_URL_S3="+s3.srv.URL, "AWS_ENDPOINT_URL_SQS="+sqs.URL, "HTTP_ADDRESS="+freeAddr(t))
		for _, f := range []string{"ios", "android", "web", "unbound"} {
			c := feeds[fmt.Sprintf("%s#%d", f, i)]
			env = append(env, "MPARTICLE_"+strings.ToUpper(f)+"_KEY="+c.Key, "MPARTICLE_"+strings.ToUpper(f)+"_SECRET="+c.Secret)
		}
		procs = append(procs, runShipped(t, fmt.Sprintf("s3-sqs.yaml #%d", i), cfg, t.TempDir(), env))
	}
	// What S3 would send for each new object.
	objectOf := map[string]string{} // event id → object key
	for _, o := range exp.manifest.Objects {
		for _, r := range o.Records {
			objectOf[r["id"].(string)] = o.Key
		}
		sqsCall(t, sqs, url.Values{"Action": {"SendMessage"}, "QueueUrl": {cq.URL}, "MessageBody": {s3Notification("currents-bucket", o.Key, len(bodies[o.Key]))}})
	}
	read := exp.decodable()
	anon := anonymous(read)
	wantPerObject := map[string]int{}
	for id := range read {
		if !anon[id] {
			wantPerObject[objectOf[id]]++
		}
	}

	// byInstance: object key → instance → events recorded.
	byInstance := func() map[string]map[int]int {
		out := map[string]map[int]int{}
		for _, rec := range emu.Batches() {
			var inst int
			if _, err := fmt.Sscanf(rec.Feed[strings.IndexByte(rec.Feed, '#')+1:], "%d", &inst); err != nil {
				t.Fatalf("feed %q", rec.Feed)
			}
			var b struct {
				Events []struct {
					Data struct {
						Attrs struct {
							SourceRequestID string `json:"source_request_id"`
						} `json:"custom_attributes"`
					} `json:"data"`
				} `json:"events"`
			}
			if err := json.Unmarshal(rec.Batch, &b); err != nil {
				t.Fatal(err)
			}
			for _, e := range b.Events {
				k := objectOf[e.Data.Attrs.SourceRequestID]
				if out[k] == nil {
					out[k] = map[int]int{}
				}
				out[k][inst]++
			}
		}
		return out
	}

	// Kill the first instance seen in the middle of an object.
	victim, midObject := -1, ""
	poll(t, 2*time.Minute, func() string { return "an instance in the middle of an object" }, func() bool {
		for k, per := range byInstance() {
			for inst, n := range per {
				if n > 0 && n < wantPerObject[k] {
					victim, midObject = inst, k
					return true
				}
			}
		}
		return false
	}, procs...)
	procs[victim].kill(t)
	killedAt := time.Now()
	atKill := byInstance()
	t.Logf("SIGKILLed instance #%d with %d of %d events of %s delivered", victim, atKill[midObject][victim], wantPerObject[midObject], midObject)

	survivors := []*binProc{}
	for i, p := range procs {
		if i != victim {
			survivors = append(survivors, p)
		}
	}
	poll(t, 2*time.Minute, func() string {
		return fmt.Sprintf("every event delivered (%d of %d)", deliveredNow(t, emu), len(read)-len(anon))
	}, func() bool { return deliveredNow(t, emu) >= len(read)-len(anon) }, survivors...)
	complete := time.Since(killedAt)
	for _, p := range survivors {
		p.terminate(t)
	}

	o := collect(t, emu, "")
	_, dupes := countDelivered(o)
	reconcile(t, read, anon, dedup(o))
	per := byInstance()
	objectsBy := make([]int, instances)
	var takenOver []string
	for k, insts := range per {
		var who []int
		for inst := range insts {
			objectsBy[inst]++
			who = append(who, inst)
		}
		sort.Ints(who)
		if len(who) > 1 {
			if insts[victim] == 0 {
				t.Errorf("object %s processed by instances %v, none of them the killed one: competing consumers overlap", k, who)
			}
			takenOver = append(takenOver, k)
		}
	}
	if len(per[midObject]) < 2 {
		t.Errorf("the object killed in the middle (%s) was not completed by another instance: %v", midObject, per[midObject])
	}
	for i, n := range objectsBy {
		if n == 0 && i != victim {
			t.Logf("instance #%d processed no object (the others took every message first)", i)
		}
	}
	if complete < visibility-time.Second {
		t.Errorf("the export completed %v after the kill, before the %v visibility timeout could return the killed instance's messages", complete, visibility)
	}
	delivered, _ := countDelivered(o)
	t.Logf("configs/s3-sqs.yaml, 3 instances, against gofakes3 (S3, %s), goaws v0.4.5 (SQS, %s, visibility timeout %v) and the emulator: %d objects, objects per instance %v (an object counts for each instance that delivered some of its events), instance #%d SIGKILLed in the middle of an object, %d objects taken over after the visibility timeout, all delivered %v after the kill; read %d = delivered %d + dropped %d + dead-lettered 0, duplicates %d",
		s3.srv.URL, sqs.URL, visibility, len(exp.manifest.Objects), objectsBy, victim, len(takenOver), complete.Round(100*time.Millisecond),
		len(read), delivered, len(anon), dupes)
}
