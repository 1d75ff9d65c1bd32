package store

import (
	"sort"

	"github.com/cockroachdb/pebble/v2"
)

// Stats uses RavenDB's field names so that scripts written against RavenDB's
// statistics read magpie's as well.
type Stats struct {
	DatabaseName             string           `json:"DatabaseName"`
	DatabaseID               string           `json:"DatabaseId"`
	Encrypted                bool             `json:"IsEncrypted"`
	CountOfDocuments         int64            `json:"CountOfDocuments"`
	CountOfTombstones        int64            `json:"CountOfTombstones"`
	CountOfAttachments       int64            `json:"CountOfAttachments"`
	CountOfUniqueAttachments int64            `json:"CountOfUniqueAttachments"`
	CountOfIndexes           int64            `json:"CountOfIndexes"`
	LastDocEtag              uint64           `json:"LastDocEtag"`
	Collections              map[string]int64 `json:"Collections"`
}

// CollectionNames returns the collections in name order.
func (s *Stats) CollectionNames() []string {
	names := make([]string, 0, len(s.Collections))
	for n := range s.Collections {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stats reports the database's counters.
func (db *DB) Stats() (*Stats, error) {
	db.mu.Lock()
	s, snap := db.statsLocked()
	db.mu.Unlock()
	defer snap.Close()
	return s, db.countFrom(s, snap)
}

// statsLocked copies the counters and takes a snapshot that matches them.
// Called with mu held.
func (db *DB) statsLocked() (*Stats, *pebble.Snapshot) {
	s := &Stats{
		DatabaseName:       db.name,
		DatabaseID:         db.dbID,
		Encrypted:          db.rec.Encrypted,
		CountOfDocuments:   db.state.docs,
		CountOfTombstones:  db.state.tombstones,
		CountOfAttachments: db.state.attachments,
		LastDocEtag:        db.state.lastEtag,
		Collections:        map[string]int64{},
	}
	for _, c := range db.state.collections {
		if c.count > 0 {
			s.Collections[c.name] = c.count
		}
	}
	return s, db.pdb.NewSnapshot()
}

// countFrom fills in the counts that are not kept as counters.
func (db *DB) countFrom(s *Stats, snap *pebble.Snapshot) error {
	if err := scan(snap, []byte{prefixIndex}, func(k, v []byte) error { s.CountOfIndexes++; return nil }); err != nil {
		return err
	}
	return scan(snap, []byte{prefixHash}, func(k, v []byte) error { s.CountOfUniqueAttachments++; return nil })
}
