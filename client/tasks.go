package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// BackupTask is a backup task: RavenDB's PeriodicBackupConfiguration with
// magpie's fields (Magpie*). The server keeps it in the database record,
// so it survives restarts and comes back with a restored database. Paths
// are on the server's machine. Storage credentials are never part of it:
// the server takes them from its environment.
type BackupTask struct {
	// TaskID is 0 for a new task; the server answers its id.
	TaskID   int64  `json:"TaskId"`
	Name     string `json:"Name"`
	Disabled bool   `json:"Disabled"`
	// BackupType is "Backup" (logical, the default) or "Snapshot".
	BackupType string `json:"BackupType"`
	// FullBackupFrequency and IncrementalBackupFrequency are five-field
	// cron expressions ("0 2 * * *") or descriptors ("@daily",
	// "@every 1h"); empty means no such run on a schedule.
	FullBackupFrequency        string               `json:"FullBackupFrequency"`
	IncrementalBackupFrequency string               `json:"IncrementalBackupFrequency"`
	LocalSettings              *LocalSettings       `json:"LocalSettings,omitempty"`
	S3Settings                 *S3Settings          `json:"S3Settings,omitempty"`
	AzureSettings              *AzureSettings       `json:"AzureSettings,omitempty"`
	GoogleCloudSettings        *GoogleCloudSettings `json:"GoogleCloudSettings,omitempty"`
	RetentionPolicy            *RetentionPolicy     `json:"RetentionPolicy,omitempty"`
	BackupEncryptionSettings   *EncryptionSettings  `json:"BackupEncryptionSettings,omitempty"`
	// MagpieDestinations are more destinations: folders or s3://,
	// azblob://, gs:// URLs. Every destination gets the same bytes.
	MagpieDestinations []string `json:"MagpieDestinations,omitempty"`
	// MagpieKeepNewest keeps that many newest chains per destination.
	MagpieKeepNewest int `json:"MagpieKeepNewest,omitempty"`
	// MagpieCompression is "zstd" (default) or "gzip", for logical
	// backups.
	MagpieCompression string `json:"MagpieCompression,omitempty"`
	CreatedAt         string `json:"CreatedAt,omitempty"`
}

// LocalSettings is a folder on the server's machine.
type LocalSettings struct {
	Disabled   bool   `json:"Disabled"`
	FolderPath string `json:"FolderPath"`
}

// S3Settings is an S3 (or S3-compatible) bucket.
type S3Settings struct {
	Disabled         bool   `json:"Disabled"`
	BucketName       string `json:"BucketName"`
	RemoteFolderName string `json:"RemoteFolderName"`
	AwsRegionName    string `json:"AwsRegionName"`
	CustomServerURL  string `json:"CustomServerUrl"`
	ForcePathStyle   bool   `json:"ForcePathStyle"`
}

// AzureSettings is an Azure Blob Storage container.
type AzureSettings struct {
	Disabled         bool   `json:"Disabled"`
	StorageContainer string `json:"StorageContainer"`
	RemoteFolderName string `json:"RemoteFolderName"`
	AccountName      string `json:"AccountName"`
}

// GoogleCloudSettings is a Google Cloud Storage bucket.
type GoogleCloudSettings struct {
	Disabled         bool   `json:"Disabled"`
	BucketName       string `json:"BucketName"`
	RemoteFolderName string `json:"RemoteFolderName"`
}

// RetentionPolicy deletes chains whose newest file is older than
// MinimumBackupAgeToKeep (a .NET TimeSpan such as "30.00:00:00", or a Go
// duration such as "720h").
type RetentionPolicy struct {
	Disabled               bool    `json:"Disabled"`
	MinimumBackupAgeToKeep *string `json:"MinimumBackupAgeToKeep"`
}

// EncryptionSettings is how the task's backups are encrypted.
type EncryptionSettings struct {
	// EncryptionMode is "None", "UseDatabaseKey", "UseProvidedKey" or
	// "MagpieRecipients"; empty picks the database's default.
	EncryptionMode string `json:"EncryptionMode"`
	// Key is the base64 key of UseProvidedKey. It is sent, never read
	// back: the server keeps it in memory only (until it restarts). A
	// MagpieKeyFile survives restarts.
	Key string `json:"Key,omitempty"`
	// MagpieKeyFile is the path, on the server's machine, of the key file
	// of UseProvidedKey, read at every run.
	MagpieKeyFile        string   `json:"MagpieKeyFile,omitempty"`
	MagpieRecipients     []string `json:"MagpieRecipients,omitempty"`
	MagpieKeyFingerprint string   `json:"MagpieKeyFingerprint,omitempty"`
}

// BackupTaskInfo is a task as the server describes it: RavenDB's
// OngoingTaskBackup with the task's configuration and status.
type BackupTaskInfo struct {
	TaskID                int64      `json:"TaskId"`
	TaskName              string     `json:"TaskName"`
	TaskState             string     `json:"TaskState"`
	BackupType            string     `json:"BackupType"`
	LastFullBackup        *time.Time `json:"LastFullBackup"`
	LastIncrementalBackup *time.Time `json:"LastIncrementalBackup"`
	OnGoingBackup         *struct {
		StartTime           time.Time `json:"StartTime"`
		IsFull              bool      `json:"IsFull"`
		RunningBackupTaskID int64     `json:"RunningBackupTaskId"`
	} `json:"OnGoingBackup"`
	NextBackup *struct {
		DateTime time.Time `json:"DateTime"`
		IsFull   bool      `json:"IsFull"`
	} `json:"NextBackup"`
	Error       *string `json:"Error"`
	IsEncrypted bool    `json:"IsEncrypted"`
	// MagpieConfiguration is the task as stored.
	MagpieConfiguration BackupTask `json:"MagpieConfiguration"`
	// MagpieDestinations are the task's destinations as locations.
	MagpieDestinations []string `json:"MagpieDestinations"`
	// MagpieStatus is nil until the task first ran.
	MagpieStatus *BackupTaskStatus `json:"MagpieStatus"`
	// MagpieKeyInMemory is set for a UseProvidedKey task without a key
	// file: whether the server still holds its key.
	MagpieKeyInMemory *bool `json:"MagpieKeyInMemory"`
}

// BackupTaskStatus is a task's status: RavenDB's PeriodicBackupStatus
// (the fields that mean something in magpie) and magpie's.
type BackupTaskStatus struct {
	TaskID                int64      `json:"TaskId"`
	BackupType            string     `json:"BackupType"`
	IsFull                bool       `json:"IsFull"`
	LastFullBackup        *time.Time `json:"LastFullBackup"`
	LastIncrementalBackup *time.Time `json:"LastIncrementalBackup"`
	LocalBackup           *struct {
		BackupDirectory               string `json:"BackupDirectory"`
		FileName                      string `json:"FileName"`
		FullBackupDurationInMs        *int64 `json:"FullBackupDurationInMs"`
		IncrementalBackupDurationInMs *int64 `json:"IncrementalBackupDurationInMs"`
	} `json:"LocalBackup"`
	LastEtag     *uint64 `json:"LastEtag"`
	FolderName   string  `json:"FolderName"`
	DurationInMs int64   `json:"DurationInMs"`
	Error        *struct {
		Exception string    `json:"Exception"`
		At        time.Time `json:"At"`
	} `json:"Error"`
	LastOperationID                 *int64   `json:"LastOperationId"`
	IsEncrypted                     bool     `json:"IsEncrypted"`
	MagpieLastFullBackupSize        *int64   `json:"MagpieLastFullBackupSize"`
	MagpieLastFullBackupFile        *string  `json:"MagpieLastFullBackupFile"`
	MagpieLastIncrementalBackupSize *int64   `json:"MagpieLastIncrementalBackupSize"`
	MagpieLastIncrementalBackupFile *string  `json:"MagpieLastIncrementalBackupFile"`
	MagpieLocations                 []string `json:"MagpieLocations"`
	MagpieFailures                  int      `json:"MagpieFailures"`
	MagpieNeedsFullBackup           bool     `json:"MagpieNeedsFullBackup"`
	MagpieRetention                 *struct {
		At      time.Time `json:"At"`
		Deleted []struct {
			Destination string `json:"Destination"`
			Chain       string `json:"Chain"`
			Files       int    `json:"Files"`
			Bytes       int64  `json:"Bytes"`
			Reason      string `json:"Reason"`
		} `json:"Deleted"`
		Errors []string `json:"Errors"`
	} `json:"MagpieRetention"`
	MagpieNextBackup *struct {
		DateTime time.Time `json:"DateTime"`
		IsFull   bool      `json:"IsFull"`
	} `json:"MagpieNextBackup"`
	MagpieRunningOperationID *int64 `json:"MagpieRunningOperationId"`
}

// PutBackupTask creates a task (TaskID 0) or replaces task TaskID of
// database db, and returns its id (UpdatePeriodicBackupOperation).
func (c *Client) PutBackupTask(ctx context.Context, db string, t BackupTask) (int64, error) {
	var out struct{ TaskId int64 }
	if err := c.call(ctx, "POST", dbPath(db, "/admin/periodic-backup"), nil, t, &out); err != nil {
		return 0, err
	}
	return out.TaskId, nil
}

// BackupTasks lists the backup tasks of database db (GetOngoingTasksOperation).
func (c *Client) BackupTasks(ctx context.Context, db string) ([]BackupTaskInfo, error) {
	var out struct{ OngoingTasks []BackupTaskInfo }
	if err := c.call(ctx, "GET", dbPath(db, "/tasks"), nil, nil, &out); err != nil {
		return nil, err
	}
	return out.OngoingTasks, nil
}

// BackupTask describes task id of database db (GetOngoingTaskInfoOperation).
func (c *Client) BackupTask(ctx context.Context, db string, id int64) (*BackupTaskInfo, error) {
	var out BackupTaskInfo
	q := url.Values{"key": {strconv.FormatInt(id, 10)}, "type": {"Backup"}}
	if err := c.call(ctx, "GET", dbPath(db, "/task"), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteBackupTask deletes task id of database db; a run in progress is
// canceled.
func (c *Client) DeleteBackupTask(ctx context.Context, db string, id int64) error {
	q := url.Values{"id": {strconv.FormatInt(id, 10)}, "type": {"Backup"}}
	return c.call(ctx, "DELETE", dbPath(db, "/admin/tasks"), q, nil, nil)
}

// RunBackupTask runs task id of database db now, full or incremental
// (StartBackupOperation), and waits for it. An incremental run without a
// chain to extend makes a full backup.
func (c *Client) RunBackupTask(ctx context.Context, db string, id int64, full bool) (*BackupResult, error) {
	q := url.Values{"taskId": {strconv.FormatInt(id, 10)}, "isFullBackup": {strconv.FormatBool(full)}}
	var started struct{ OperationId int64 }
	if err := c.call(ctx, "POST", dbPath(db, "/admin/backup/database"), q, nil, &started); err != nil {
		return nil, err
	}
	if started.OperationId == 0 {
		return nil, fmt.Errorf("the server started no operation for task %d", id)
	}
	return c.waitBackup(ctx, db, started.OperationId)
}
