package testservers

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// AzuriteAccount and AzuriteKey are Azurite's well-known development
// account, published in Azure's documentation (not a secret).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azure starts Azurite and returns the location of an empty container on
// it: azblob://magpie-test?domain=127.0.0.1:PORT&localemu=true&protocol=http,
// with AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY set.
func Azure(t testing.TB) string {
	t.Helper()
	return StartAzure(t).Location("")
}

// StartAzure starts Azurite's blob service (the npm package pinned in
// tests/servers; run npm ci there) with its data in a temporary folder,
// creates the container "magpie-test" and sets the environment to the
// development account.
func StartAzure(t testing.TB) *Server {
	t.Helper()
	node, ok := findBinary("node")
	if !ok {
		missing(t, "node is not installed; Azurite needs Node.js 20 or later")
	}
	main := filepath.Join(RepoRoot(t), "tests", "servers", "node_modules", "azurite", "dist", "src", "blob", "main.js")
	if _, err := os.Stat(main); err != nil {
		missing(t, "Azurite is not installed: run npm ci in tests/servers")
	}
	t.Setenv("AZURE_STORAGE_ACCOUNT", AzuriteAccount)
	t.Setenv("AZURE_STORAGE_KEY", AzuriteKey)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGEBLOB_CONNECTIONSTRING", "")
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", "")
	t.Setenv("AZURE_STORAGE_DOMAIN", "")
	t.Setenv("AZURE_STORAGE_PROTOCOL", "")
	t.Setenv("AZURE_STORAGE_IS_LOCAL_EMULATOR", "")
	t.Setenv("AZURE_STORAGE_IS_CDN", "")

	dir := t.TempDir()
	addr := start(t, launch{
		what: "Azurite",
		cmd: func(addr string) *exec.Cmd {
			host, port, _ := net.SplitHostPort(addr)
			// No telemetry: the tests reach nothing beyond loopback.
			return exec.Command(node, main, "--blobHost", host, "--blobPort", port,
				"--location", dir, "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry")
		},
		ready: func(ctx context.Context, addr string) error {
			if err := dialable(addr); err != nil {
				return err
			}
			return createContainer(ctx, addr, "magpie-test")
		},
	})
	return &Server{
		Scheme: "azblob",
		Addr:   addr,
		Bucket: "magpie-test",
		create: createContainer,
		location: func(addr, bucket, prefix string) string {
			q := url.Values{"domain": {addr}, "protocol": {"http"}, "localemu": {"true"}}
			return (&url.URL{Scheme: "azblob", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}).String()
		},
	}
}

func createContainer(ctx context.Context, addr, name string) error {
	cred, err := azblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		return err
	}
	opts := &container.ClientOptions{}
	opts.Retry.MaxRetries = -1 // the caller polls
	c, err := container.NewClientWithSharedKeyCredential(httpURL(addr)+"/"+AzuriteAccount+"/"+name, cred, opts)
	if err != nil {
		return err
	}
	_, err = c.Create(ctx, nil)
	if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	return err
}
