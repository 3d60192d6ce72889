// Package grafana holds Fabric's Grafana dashboard, fabric.json: the
// gateways' and the workers' Prometheus metrics (docs/metrics.md) on one
// page. Import it in Grafana (Dashboards → New → Import) or provision it
// from a file; its "datasource" variable picks the Prometheus data source.
//
// The package has no Go API. Its test parses the dashboard and fails when
// a panel's PromQL names a metric or a label that a real gateway and worker
// do not export, or when a gateway or worker metric has no panel, so the
// dashboard changes with the metrics.
package grafana
