// The committed web/dist must be exactly what a fresh build writes: this
// catches a dist built from other inputs, and esbuild versions (or platforms)
// whose output differs. The Go tests (web/embed_test.go) check the inputs'
// hashes without npm; this checks the bytes.

import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { OUTPUTS, build, distDir } from "../build.mjs";

test("web/dist is what the build writes", async (t) => {
  const out = await mkdtemp(path.join(tmpdir(), "fabric-web-"));
  t.after(() => rm(out, { recursive: true, force: true }));
  await build(out);
  assert.deepEqual((await readdir(out)).sort(), OUTPUTS);
  assert.deepEqual((await readdir(distDir)).sort(), OUTPUTS, "web/dist holds other files: run `make web`");
  for (const name of OUTPUTS) {
    const fresh = await readFile(path.join(out, name));
    const committed = await readFile(path.join(distDir, name));
    assert.ok(fresh.equals(committed), `web/dist/${name} differs from a fresh build: run \`make web\``);
  }
});

test("the build is deterministic", async (t) => {
  const a = await mkdtemp(path.join(tmpdir(), "fabric-web-"));
  const b = await mkdtemp(path.join(tmpdir(), "fabric-web-"));
  t.after(() => Promise.all([a, b].map((d) => rm(d, { recursive: true, force: true }))));
  await build(a);
  await build(b);
  for (const name of OUTPUTS) {
    assert.ok((await readFile(path.join(a, name))).equals(await readFile(path.join(b, name))), `${name} differs between two builds`);
  }
});
