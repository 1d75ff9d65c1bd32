package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/magpiedb/magpie/internal/backup"
	"github.com/magpiedb/magpie/internal/keys"
	"github.com/magpiedb/magpie/internal/restore"
	"github.com/magpiedb/magpie/internal/tasks"
)

// POST /admin/backup/verify (magpie's own route; RavenDB has none): reads,
// decrypts and authenticates a backup on the server's machine or at a URL
// the server reads, as magpie backup verify does. A long-running operation
// whose result is the report.

// verifyRequest is the body of POST /admin/backup/verify.
type verifyRequest struct {
	// Location is a backup file, a chain folder or a folder of chains:
	// an absolute path on the server's machine, or a URL.
	Location string `json:"Location"`
	// Key (base64) opens key- and database-mode backups.
	Key string `json:"Key"`
	// MagpieIdentity is the path of an age identity file on the server's
	// machine, for recipients-mode backups.
	MagpieIdentity string `json:"MagpieIdentity"`
	// SamplePercent reads that share of each chain's files (0 or 100:
	// all of them).
	SamplePercent float64 `json:"SamplePercent"`
}

// verifyResult is a finished verification's operation Result.
type verifyResult struct {
	Message     string            `json:"Message"`
	Chains      []*restore.Report `json:"Chains"`
	Interrupted []string          `json:"Interrupted"`
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.allow(w, r, AccessOperator, ""); !ok {
		return
	}
	var req verifyRequest
	if !readJSON(w, r, maxConfigBody, &req) {
		return
	}
	loc, dec, err := checkVerify(&req)
	if err != nil {
		badRequest(w, err)
		return
	}
	ops := s.extras().ops
	op, err := ops.start("", "Verify "+loc, AccessOperator, func(ctx context.Context, op *operation) (any, error) {
		var read atomic.Int64
		var last atomic.Int64
		v, err := restore.VerifyAll(ctx, loc, restore.VerifyOptions{
			Decryption: dec,
			Sample:     req.SamplePercent / 100,
			Start: func(chain string, bytes int64) (func(int64), func()) {
				base := read.Load()
				progress := func(n int64) {
					read.Store(base + n)
					now := time.Now().UnixNano()
					if prev := last.Load(); now-prev >= int64(progressEvery) && last.CompareAndSwap(prev, now) {
						ops.setProgress(op, map[string]any{"Message": "verifying " + chain, "MagpieBytesRead": read.Load()})
					}
				}
				return progress, func() {}
			},
		})
		if err != nil {
			s.log.Warn("backup verification failed", "location", loc, "operation", op.id, "err", err)
			msg := err.Error()
			if v != nil && len(v.Failed) > 1 {
				// Nothing is listed above an API error: list them here.
				msg = strings.TrimSuffix(v.Failed[0].Error, ".")
				for _, f := range v.Failed[1:] {
					msg += fmt.Sprintf(". Also failed: %s: %s", f.Chain, strings.TrimSuffix(f.Error, "."))
				}
				msg += "."
			}
			return nil, &userFault{msg: apiWording(msg)}
		}
		files := 0
		for _, c := range v.Chains {
			files += len(c.Files)
		}
		s.log.Info("backup verified", "location", loc, "operation", op.id, "chains", len(v.Chains), "files", files)
		return &verifyResult{Message: fmt.Sprintf("verified %d chains, %d files", len(v.Chains), files), Chains: v.Chains, Interrupted: v.Interrupted}, nil
	})
	if err != nil {
		s.operationRefused(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"OperationId": op.id, "OperationNodeTag": NodeTag})
}

// checkVerify checks a verification request before any byte is read.
func checkVerify(req *verifyRequest) (string, *backup.Decryption, error) {
	if strings.TrimSpace(req.Location) == "" {
		return "", nil, errors.New("Location is missing. Give the backup (a file, a chain folder or a folder of chains) on the server's machine, or an s3://, azblob:// or gs:// URL")
	}
	loc, err := tasks.CheckLocation(req.Location)
	if err != nil {
		return "", nil, fmt.Errorf("Location %s", strings.TrimPrefix(err.Error(), "the location "))
	}
	if req.SamplePercent < 0 || req.SamplePercent > 100 {
		return "", nil, fmt.Errorf("SamplePercent %v is not a percentage from 0 to 100. Give e.g. 10, or 0 to read every file", req.SamplePercent)
	}
	dec := &backup.Decryption{}
	if req.Key != "" {
		k, err := keys.Parse(req.Key)
		if err != nil {
			return "", nil, fmt.Errorf("Key: %v", err)
		}
		dec.Key = &k
	}
	if req.MagpieIdentity != "" {
		if !filepath.IsAbs(req.MagpieIdentity) {
			return "", nil, fmt.Errorf("MagpieIdentity %q is not an absolute path. Give the full path of the age identity file on the server's machine", req.MagpieIdentity)
		}
		d, err := backup.LoadDecryption("", req.MagpieIdentity)
		if err != nil {
			return "", nil, err
		}
		dec.Identities = d.Identities
	}
	return loc, dec, nil
}
