package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GenerateSecret asks the server for a new random key: the base64 text of
// 32 bytes.
func (c *Client) GenerateSecret(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, "GET", "/admin/secrets/generate", nil, nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// BackupRequest is a one-time backup.
type BackupRequest struct {
	// Type is "Backup" (logical, the default) or "Snapshot".
	Type string
	// FolderPath is the folder, on the server's machine, that receives
	// the backup's chain folder.
	FolderPath string
	// Destinations are more destinations: folders on the server's machine
	// or s3://, azblob://, gs:// URLs, which receive the same bytes.
	Destinations []string
	// Incremental extends the newest chain in the destinations (a full
	// backup when there is none).
	Incremental bool
	// EncryptionMode is "None", "UseDatabaseKey", "UseProvidedKey" (with
	// Key) or "MagpieRecipients" (with Recipients); empty means the
	// database's key for an encrypted database, else none.
	EncryptionMode string
	// Key is the base64 key for UseProvidedKey.
	Key string
	// Recipients are age or SSH public keys (or files of them on the
	// server's machine) for MagpieRecipients.
	Recipients []string
	// Compression is "zstd" (the default) or "gzip", for logical backups.
	Compression string
}

// BackupResult describes a finished backup.
type BackupResult struct {
	Message string
	// BackupDirectory is the chain folder, FileName the backup file in
	// it (on the server's machine).
	BackupDirectory, FileName          string
	Documents, Tombstones, Attachments int64
	LastEtag                           uint64
	Encrypted                          bool
	// Encryption is the manifest's mode: none, database, key or
	// recipients.
	Encryption string
	Size       int64
	// Kind is the file written: full-backup, incremental-backup or
	// snapshot. Unchanged says an incremental found nothing changed and
	// wrote nothing.
	Kind      string
	Unchanged bool
	// Locations are the chain folder in every destination.
	Locations []string
	// Pruned counts the chains retention deleted after a task's run.
	Pruned int
	// FullReason says why an incremental run made a full backup instead.
	FullReason string
}

// Backup makes a one-time backup of database db and waits for it.
func (c *Client) Backup(ctx context.Context, db string, req BackupRequest) (*BackupResult, error) {
	cfg := map[string]any{"BackupType": req.Type}
	if req.FolderPath != "" {
		cfg["LocalSettings"] = map[string]any{"FolderPath": req.FolderPath}
	}
	if len(req.Destinations) > 0 {
		cfg["MagpieDestinations"] = req.Destinations
	}
	if req.Incremental {
		cfg["MagpieIncremental"] = true
	}
	if req.EncryptionMode != "" || req.Key != "" || len(req.Recipients) > 0 {
		es := map[string]any{"EncryptionMode": req.EncryptionMode}
		if req.Key != "" {
			es["Key"] = req.Key
		}
		if len(req.Recipients) > 0 {
			es["MagpieRecipients"] = req.Recipients
		}
		cfg["BackupEncryptionSettings"] = es
	}
	if req.Compression != "" {
		cfg["MagpieCompression"] = req.Compression
	}
	var started struct{ OperationId int64 }
	if err := c.call(ctx, "POST", dbPath(db, "/admin/backup"), nil, cfg, &started); err != nil {
		return nil, err
	}
	return c.waitBackup(ctx, db, started.OperationId)
}

// waitBackup waits for a backup operation of database db and reads its
// result.
func (c *Client) waitBackup(ctx context.Context, db string, id int64) (*BackupResult, error) {
	var ans struct {
		Message     string
		LocalBackup struct{ BackupDirectory, FileName string }
		Documents   struct{ ReadCount int64 }
		Tombstones  struct{ ReadCount int64 }
		Attachments struct{ ReadCount int64 }
		LastEtag    uint64
		IsEncrypted bool
		// The server's extension fields.
		MagpieEncryption string
		MagpieSize       int64
		MagpieKind       string
		MagpieUnchanged  bool
		MagpieLocations  []string
		MagpieRetention  *struct{ Deleted []struct{} }
		MagpieFullReason string
	}
	if err := c.wait(ctx, dbPath(db, ""), id, &ans); err != nil {
		return nil, err
	}
	out := &BackupResult{
		Message: ans.Message, BackupDirectory: ans.LocalBackup.BackupDirectory, FileName: ans.LocalBackup.FileName,
		Documents: ans.Documents.ReadCount, Tombstones: ans.Tombstones.ReadCount, Attachments: ans.Attachments.ReadCount,
		LastEtag: ans.LastEtag, Encrypted: ans.IsEncrypted, Encryption: ans.MagpieEncryption, Size: ans.MagpieSize,
		Kind: ans.MagpieKind, Unchanged: ans.MagpieUnchanged, Locations: ans.MagpieLocations, FullReason: ans.MagpieFullReason,
	}
	if ans.MagpieRetention != nil {
		out.Pruned = len(ans.MagpieRetention.Deleted)
	}
	return out, nil
}

// RestoreRequest restores a backup as a new database.
type RestoreRequest struct {
	DatabaseName string
	// BackupLocation is a backup file, a chain folder or a folder of
	// chains, on the server's machine, or an s3://, azblob:// or gs://
	// URL of one.
	BackupLocation string
	// DisableOngoingTasks brings the database's backup tasks back
	// disabled (otherwise they run on their schedules again).
	DisableOngoingTasks bool
	// EncryptionKey (base64) opens an encrypted backup and makes the
	// restored database encrypted with that key.
	EncryptionKey string
	// DecryptionKey (base64) only opens the backup.
	DecryptionKey string
	// Identity is the path, on the server's machine, of the age identity
	// file that opens a backup made for age recipients.
	Identity string
	// LastFileNameToRestore stops at that file of the chain.
	LastFileNameToRestore string
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	Message          string
	DatabaseName     string
	BackupDirectory  string
	Files            []string
	IsEncrypted      bool
	KeyFingerprint   string
	CountOfDocuments int64
	// MagpieBackupTasks counts the backup tasks the database came back
	// with; MagpieDisabledTasks those DisableOngoingTasks disabled.
	MagpieBackupTasks   int
	MagpieDisabledTasks int
	// MagpiePassedOver are newer chains the restore passed over because
	// they have no manifest (an interrupted first backup, or a deleted
	// manifest).
	MagpiePassedOver []string
}

// Restore restores a backup as a new database and waits for it. A refused
// restore (a wrong key, a name taken, a damaged backup) leaves no database
// behind and returns the server's reason.
func (c *Client) Restore(ctx context.Context, req RestoreRequest) (*RestoreResult, error) {
	cfg := map[string]any{
		"DatabaseName":          req.DatabaseName,
		"BackupLocation":        req.BackupLocation,
		"LastFileNameToRestore": req.LastFileNameToRestore,
		"Type":                  "Local",
		"DisableOngoingTasks":   req.DisableOngoingTasks,
	}
	if req.EncryptionKey != "" {
		cfg["EncryptionKey"] = req.EncryptionKey
	}
	if req.DecryptionKey != "" {
		cfg["BackupEncryptionSettings"] = map[string]any{"EncryptionMode": "UseProvidedKey", "Key": req.DecryptionKey}
	}
	if req.Identity != "" {
		cfg["MagpieIdentity"] = req.Identity
	}
	var started struct{ OperationId int64 }
	if err := c.call(ctx, "POST", "/admin/restore/database", nil, cfg, &started); err != nil {
		return nil, err
	}
	var out RestoreResult
	if err := c.wait(ctx, "", started.OperationId, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// wait polls an operation's state (under prefix: a database path, or ""
// for server-level operations) until it ends, and decodes a Completed
// result into out. When ctx ends first, the operation is killed.
func (c *Client) wait(ctx context.Context, prefix string, id int64, out any) error {
	q := url.Values{"id": {strconv.FormatInt(id, 10)}}
	tick := time.NewTicker(c.poll)
	defer tick.Stop()
	for {
		var st struct {
			Status string
			Result json.RawMessage
		}
		if err := c.call(ctx, "GET", prefix+"/operations/state", q, nil, &st); err != nil {
			if ctx.Err() != nil {
				kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c.call(kctx, "POST", prefix+"/operations/kill", q, nil, nil)
				cancel()
			}
			return err
		}
		switch st.Status {
		case "Completed":
			if err := json.Unmarshal(st.Result, out); err != nil {
				return fmt.Errorf("the result of operation %d cannot be read: %v", id, err)
			}
			return nil
		case "Faulted":
			var f struct {
				Type, Message, Error string
				StatusCode           int
			}
			json.Unmarshal(st.Result, &f)
			msg := f.Error
			if msg == "" {
				msg = f.Message
			}
			if msg == "" {
				msg = fmt.Sprintf("operation %d failed on the server", id)
			}
			return &Error{Status: f.StatusCode, Type: f.Type, Message: msg}
		case "Canceled":
			return &Error{Status: 0, Type: "OperationCanceledException", Message: fmt.Sprintf("operation %d was canceled on the server", id)}
		}
		select {
		case <-ctx.Done():
			kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.call(kctx, "POST", prefix+"/operations/kill", q, nil, nil)
			cancel()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// BackupChain is a backup chain in a backup folder, as magpie backup ls
// shows it.
type BackupChain struct {
	// Name is the chain folder's name, Dir its location.
	Name     string
	Dir      string
	Complete bool
	// Problem says why an incomplete chain cannot be restored.
	Problem string `json:",omitempty"`
	// Manifest is the chain's manifest (docs/FORMAT.md), nil for an
	// incomplete chain.
	Manifest json.RawMessage
	// Stray are files in the folder that the manifest does not list.
	Stray []string `json:",omitempty"`
	// Damaged says which file the folder lacks (or holds at another
	// size): such a chain is not extended, and restores of it fail.
	Damaged string `json:",omitempty"`
	// Interrupted is set for a chain whose first backup never finished:
	// restores and verify pass it over.
	Interrupted bool `json:",omitempty"`
}

// BackupChains lists the chains of a backup folder on the server's machine
// (an absolute path) or at an s3://, azblob:// or gs:// URL, through the
// server's restore points.
func (c *Client) BackupChains(ctx context.Context, location string) ([]BackupChain, error) {
	var ans struct{ MagpieChains []BackupChain }
	if err := c.call(ctx, "POST", "/admin/restore/points", url.Values{"type": {"Local"}}, map[string]string{"FolderPath": location}, &ans); err != nil {
		return nil, err
	}
	return ans.MagpieChains, nil
}

// VerifyRequest has the server verify a backup it can read.
type VerifyRequest struct {
	// Location is a backup file, a chain folder or a folder of chains on
	// the server's machine (an absolute path), or an s3://, azblob:// or
	// gs:// URL.
	Location string
	// Key (base64) opens key- and database-mode backups.
	Key string
	// Identity is the path of an age identity file on the server's
	// machine, for recipients-mode backups.
	Identity string
	// SamplePercent reads that share of each chain's files; 0 reads all.
	SamplePercent float64
}

// VerifyResult is a verification's report: per chain, the manifest and
// the files read (as magpie backup verify --json prints them).
type VerifyResult struct {
	Message     string
	Chains      []json.RawMessage
	Interrupted []string
}

// VerifyBackup has the server read, decrypt and authenticate a backup,
// and waits for it. A damaged backup is an *Error naming the file and the
// reason.
func (c *Client) VerifyBackup(ctx context.Context, req VerifyRequest) (*VerifyResult, error) {
	body := map[string]any{"Location": req.Location, "Key": req.Key, "MagpieIdentity": req.Identity, "SamplePercent": req.SamplePercent}
	var started struct{ OperationId int64 }
	if err := c.call(ctx, "POST", "/admin/backup/verify", nil, body, &started); err != nil {
		return nil, err
	}
	var out VerifyResult
	if err := c.wait(ctx, "", started.OperationId, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
