// Package helm checks Fabric's Helm chart (deploy/helm/fabric) and the values
// it expects the official NATS chart to run with (deploy/helm/nats-values.yaml).
//
// The package has no Go API; docs/deploy.md ("Kubernetes (Helm)") describes
// the chart. Its tests run `helm lint --strict` and `helm template` on the
// chart with its default values and with every option turned on
// (testdata/full-values.yaml), decode each rendered object strictly into the
// Kubernetes API's Go types (k8s.io/api), so that a misspelt field fails, and
// check that the pieces fit: every container non-root on a read-only root
// filesystem, probes on paths the gateway and the worker serve, flags and
// FABRIC_* variables the fabric binary accepts, a termination grace longer
// than the gateway's drain, autoscalers, disruption budgets, Services and
// NetworkPolicies that select the pods they are for. Another test checks that
// nats-values.yaml gives nats-server the users and settings of deploy/nats.
//
// The chart tests need a helm binary: bin/helm (`make tools` installs the
// pinned version there) or one on PATH. Without one they skip, unless
// FABRIC_REQUIRE_TOOLS=1 (as `make race` sets it), where they fail.
package helm
