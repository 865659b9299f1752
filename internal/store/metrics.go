package store

import "github.com/prometheus/client_golang/prometheus"

// NewPoolCollector exports db.Stats() as atp_db_pool_* metrics, labelled
// with the engine. It reads the figures at scrape time, so registering it
// once is enough.
func NewPoolCollector(db *DB) prometheus.Collector {
	labels := prometheus.Labels{"engine": db.Engine()}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("atp_db_pool_"+name, help, nil, labels)
	}
	return &poolCollector{
		db:              db,
		maxConns:        desc("max_connections", "Largest number of connections the pool may open."),
		totalConns:      desc("connections", "Connections open now, idle or in use."),
		idleConns:       desc("idle_connections", "Open connections not in use."),
		acquiredConns:   desc("acquired_connections", "Connections in use."),
		acquires:        desc("acquires_total", "Connections taken from the pool."),
		emptyAcquires:   desc("empty_acquires_total", "Acquires that had to wait because no connection was idle."),
		acquireDuration: desc("acquire_duration_seconds_total", "Time spent acquiring connections."),
	}
}

type poolCollector struct {
	db                                             *DB
	maxConns, totalConns, idleConns, acquiredConns *prometheus.Desc
	acquires, emptyAcquires, acquireDuration       *prometheus.Desc
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.maxConns, c.totalConns, c.idleConns, c.acquiredConns,
		c.acquires, c.emptyAcquires, c.acquireDuration} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.maxConns, float64(s.MaxConns))
	gauge(c.totalConns, float64(s.TotalConns))
	gauge(c.idleConns, float64(s.IdleConns))
	gauge(c.acquiredConns, float64(s.AcquiredConns))
	counter(c.acquires, float64(s.AcquireCount))
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount))
	counter(c.acquireDuration, s.AcquireDuration.Seconds())
}
