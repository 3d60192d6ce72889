// Package compose checks Fabric's container deployment where no Docker
// engine runs: docker-compose.yml, loaded with the Compose specification's
// own Go loader (github.com/compose-spec/compose-go/v2, which `docker
// compose` uses too), the Dockerfile and .dockerignore, and the files the
// services mount from deploy/: the NATS configuration (deploy/nats), the
// load balancer's (deploy/nginx), Prometheus's (deploy/prometheus) and
// Grafana's provisioning (deploy/grafana/provisioning).
//
// The package has no Go API; docs/deploy.md describes the deployment. Its
// tests fail when the pieces stop fitting together: a NATS node that does
// not route to the others, a fabric service that does not export traces to
// Jaeger, a service that connects to NATS as a user the NATS configuration
// does not give it, gateways with different resume secrets, a load
// balancer that misses a gateway or drops the WebSocket upgrade, a scrape
// target that is not where a process serves /metrics, a flag the fabric
// binary does not know. One test starts the three NATS nodes in-process from
// deploy/nats/nats.conf (on free ports) and a durable gateway on them, as
// docker-compose.yml runs it.
package compose
