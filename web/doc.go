// Package web is the multi-agent demo's page, which `fabric dev` serves at /:
// a question form and, for each question, agent/ask's four steps (plan, SQL,
// analysis, chart) as they stream, written in TypeScript on the client in
// clients/typescript.
//
// The page is built by web/build.mjs (`make web`, which needs npm) into
// web/dist, and dist is embedded in the binary, so running fabric needs no
// npm. dist/manifest.json records the sha256 of every file the build reads;
// a test fails when one has changed since, so the embedded page cannot
// silently fall behind its source.
//
// It also holds the request inspector's page, which `fabric dev` serves at
// /inspector: the fabric's recent requests and their events, live, read
// from the API of internal/inspector.
//
// [Handler] serves the demo page, [InspectorHandler] the inspector's. They
// are safe for concurrent use.
package web
