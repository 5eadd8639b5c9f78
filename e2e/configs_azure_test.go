package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// Azurite's well-known development account.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startAzurite starts azurite-blob (the npm package azurite) on a free
// loopback port with a temporary folder, and returns its host:port.
func startAzurite(t *testing.T) string {
	t.Helper()
	path := needTool(t, "azurite-blob", "npm package azurite")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	var logs syncBuffer
	cmd := exec.Command(path, "--blobHost", "127.0.0.1", "--blobPort", port, "--location", dir,
		"--silent", "--skipApiVersionCheck", "--disableProductStyleUrl")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// Its own process group: azurite-blob is a node script that may start children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Any HTTP answer (400 for an anonymous request) means it listens.
		if resp, err := http.Get("http://" + addr + "/" + azuriteAccount + "?comp=list"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("azurite-blob exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("azurite-blob does not answer on %s:\n%s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr
}

// TestConfigAzure runs configs/azure.yaml as shipped against Azurite with
// each way of giving credentials that the config documents — the account
// name with a key, with a SAS token, with a connection string — each with
// a redis-server of its own and the emulator refusing 2 % of batches; each
// run again sends nothing.
func TestConfigAzure(t *testing.T) {
	addr := startAzurite(t)
	exp := newExport(t, gen.Config{Events: 1500, Users: 250, Hours: 2, BlockEvents: 50, Connection: "AzureBlob", Seed: 341})

	cred, err := azblob.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	svc := "http://" + addr + "/" + azuriteAccount
	client, err := azblob.NewClientWithSharedKeyCredential(svc, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.CreateContainer(ctx, "currents-export", nil); err != nil {
		t.Fatal(err)
	}
	for key, body := range exp.objectBodies(t) {
		if _, err := client.UploadStream(ctx, "currents-export", key, bytes.NewReader(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	// In watch mode the input leaves objects modified within min_object_age
	// (30 s) for a later pass, as files Braze may still be writing, and
	// Azurite stamps uploads with the current time: let them settle, as a
	// real export's files have, so the first pass reads them.
	settled := time.Now().Add(31 * time.Second)
	sasQuery, err := sas.AccountSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().Add(time.Hour),
		Permissions:   (&sas.AccountPermissions{Read: true, List: true, Create: true, Write: true, Add: true}).String(),
		ResourceTypes: (&sas.AccountResourceTypes{Service: true, Container: true, Object: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	connString := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", azuriteAccount, azuriteKey, svc)

	time.Sleep(time.Until(settled))
	for _, c := range []struct {
		name string
		env  []string
	}{
		{"account_key", []string{"AZURE_STORAGE_ACCOUNT=" + azuriteAccount, "AZURE_STORAGE_KEY=" + azuriteKey}},
		{"sas_token", []string{"AZURE_STORAGE_ACCOUNT=" + azuriteAccount, "AZURE_STORAGE_SAS_TOKEN=" + sasQuery.Encode()}},
		{"connection_string", []string{"AZURE_STORAGE_ACCOUNT=" + azuriteAccount, "AZURE_STORAGE_CONNECTION_STRING=" + connString}},
	} {
		t.Run(c.name, func(t *testing.T) {
			redis := startRedis(t)
			emu := startEmulator(t, -1, emulator.Faults{Seed: 6, BatchErrorRate: 0.02})
			dlqDir := filepath.Join(t.TempDir(), "dead-letter")
			httpAddr := freeAddr(t)
			env := append(emulatorEnv(emu), c.env...)
			env = append(env, "AZURE_STORAGE_DOMAIN="+addr, "AZURE_STORAGE_PROTOCOL=http",
				"CURRENTS_CONTAINER=currents-export", "CURRENTS_PREFIX=currents",
				"CHECKPOINT_REDIS_URL="+redis, "DEAD_LETTER_DIR="+dlqDir, "HTTP_ADDRESS="+httpAddr)
			watchedTwice(t, "azure.yaml", "Azurite "+azuriteVersion()+" (blob, "+addr+", credentials: "+c.name+")", env, exp, emu, dlqDir, httpAddr, redis)
		})
	}
}

func azuriteVersion() string {
	p, err := exec.LookPath("azurite-blob")
	if err != nil {
		return ""
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}
