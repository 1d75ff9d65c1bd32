package server

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backupMetrics are the Prometheus metrics of backup tasks, labelled by
// database and task id (names and ids only: never a document, a path or a
// key). magpie serve registers them in its registry (GET /metrics).
type backupMetrics struct {
	runs          *prometheus.CounterVec
	duration      *prometheus.GaugeVec
	size          *prometheus.GaugeVec
	failuresInRow *prometheus.GaugeVec
	prunedChains  *prometheus.CounterVec
	prunedBytes   *prometheus.CounterVec
}

func newBackupMetrics() *backupMetrics {
	return &backupMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magpie_backup_task_runs_total",
			Help: "Runs of backup tasks, by database, task id, kind (full or incremental) and result (success, unchanged, failure, canceled).",
		}, []string{"database", "task", "kind", "result"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "magpie_backup_task_last_duration_seconds",
			Help: "How long the last successful run of a backup task took, by kind (retention included).",
		}, []string{"database", "task", "kind"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "magpie_backup_task_last_size_bytes",
			Help: "Size of the file the last successful run of a backup task wrote, by kind.",
		}, []string{"database", "task", "kind"}),
		failuresInRow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "magpie_backup_task_failures_in_row",
			Help: "Runs of a backup task that failed in a row (0 after a success): alert on it.",
		}, []string{"database", "task"}),
		prunedChains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magpie_backup_task_pruned_chains_total",
			Help: "Backup chains retention deleted after runs of a backup task, over all its destinations.",
		}, []string{"database", "task"}),
		prunedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magpie_backup_task_pruned_bytes_total",
			Help: "Bytes retention deleted after runs of a backup task, over all its destinations.",
		}, []string{"database", "task"}),
	}
}

func kindLabel(full bool) string {
	if full {
		return "full"
	}
	return "incremental"
}

func (m *backupMetrics) run(db string, task int64, full bool, result string) {
	m.runs.WithLabelValues(lower(db), strconv.FormatInt(task, 10), kindLabel(full), result).Inc()
}

func (m *backupMetrics) last(db string, task int64, full bool, took time.Duration, size int64) {
	labels := []string{lower(db), strconv.FormatInt(task, 10), kindLabel(full)}
	m.duration.WithLabelValues(labels...).Set(took.Seconds())
	m.size.WithLabelValues(labels...).Set(float64(size))
}

func (m *backupMetrics) failures(db string, task int64, n int) {
	m.failuresInRow.WithLabelValues(lower(db), strconv.FormatInt(task, 10)).Set(float64(n))
}

func (m *backupMetrics) pruned(db string, task int64, r *retentionStatus) {
	var bytes int64
	for _, d := range r.Deleted {
		bytes += d.Bytes
	}
	labels := []string{lower(db), strconv.FormatInt(task, 10)}
	m.prunedChains.WithLabelValues(labels...).Add(float64(len(r.Deleted)))
	m.prunedBytes.WithLabelValues(labels...).Add(float64(bytes))
}

// forget drops the series of a deleted task (task 0: every task of the
// database).
func (m *backupMetrics) forget(db string, task int64) {
	labels := prometheus.Labels{"database": lower(db)}
	if task != 0 {
		labels["task"] = strconv.FormatInt(task, 10)
	}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.runs, m.duration, m.size, m.failuresInRow, m.prunedChains, m.prunedBytes} {
		v.DeletePartialMatch(labels)
	}
}

// RegisterMetrics registers the backup task metrics in r (magpie serve's
// registry).
func (s *Server) RegisterMetrics(r prometheus.Registerer) error {
	m := s.extras().metrics
	var errs []error
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.size, m.failuresInRow, m.prunedChains, m.prunedBytes} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
