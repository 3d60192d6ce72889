// Builds the demo page into dist/: index.html, app.js (src/app.ts and the
// TypeScript client it imports from source, bundled), app.css; the request
// inspector's page: inspector.html, inspector.js, inspector.css; and
// manifest.json, the sha256 of every input file. The Go binary embeds dist/
// (embed.go), and a Go test fails when an input no longer matches the
// manifest, so that the embedded page cannot silently fall behind its
// source. The build is deterministic: the same inputs and esbuild give the
// same bytes (test/bundle.test.mjs checks dist/ against a fresh build).
//
//   node build.mjs            rebuilds web/dist
//   import { build } …         build(outdir) builds elsewhere

import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

/** web/. */
export const webDir = path.dirname(fileURLToPath(import.meta.url));
/** The repository's root. */
export const repoDir = path.dirname(webDir);
/** The committed build. */
export const distDir = path.join(webDir, "dist");

/**
 * What the build reads, by repo-relative path: a directory means every file
 * under it. Besides the sources, the files that decide how they are built:
 * this script, the tsconfig esbuild follows, and the lockfile that pins
 * esbuild. embed_test.go walks the same list.
 */
export const INPUTS = [
  "clients/typescript/src",
  "web/build.mjs",
  "web/index.html",
  "web/inspector.html",
  "web/package-lock.json",
  "web/src",
  "web/tsconfig.json",
];

/** The files build writes, and so all that dist/ holds. */
export const OUTPUTS = ["app.css", "app.js", "index.html", "inspector.css", "inspector.html", "inspector.js", "manifest.json"];

/**
 * Builds the page into outdir, which it creates if need be; it writes only
 * OUTPUTS. Returns the manifest it wrote.
 */
export async function build(outdir) {
  const result = await esbuild.build({
    absWorkingDir: webDir,
    entryPoints: [
      { in: "src/app.ts", out: "app" },
      { in: "src/styles.css", out: "app" },
      { in: "src/inspector.ts", out: "inspector" },
      { in: "src/inspector.css", out: "inspector" },
    ],
    outdir,
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome111", "firefox113", "safari16.4"],
    // Only web/tsconfig.json: not the client's own, which esbuild would
    // otherwise find beside its sources.
    tsconfig: "tsconfig.json",
    minify: true,
    legalComments: "none",
    charset: "utf8",
    sourcemap: false,
    logLevel: "warning",
  });
  const files = new Map();
  for (const f of result.outputFiles) files.set(path.basename(f.path), Buffer.from(f.contents));
  for (const page of ["index.html", "inspector.html"]) files.set(page, await readFile(path.join(webDir, page)));
  const manifest = {
    comment: "Written by web/build.mjs (make web). web/embed_test.go hashes the files under roots and compares them with inputs.",
    roots: INPUTS,
    inputs: await hashInputs(),
    outputs: Object.fromEntries([...files.keys()].sort().map((name) => [name, sha256(files.get(name))])),
  };
  files.set("manifest.json", Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
  const names = [...files.keys()].sort();
  if (names.join() !== OUTPUTS.join()) throw new Error(`build: wrote ${names.join(", ")}, want ${OUTPUTS.join(", ")}`);
  await mkdir(outdir, { recursive: true });
  for (const name of names) await writeFile(path.join(outdir, name), files.get(name));
  return manifest;
}

/** The sha256 of every input file, by repo-relative path with forward slashes, sorted. */
export async function hashInputs() {
  const paths = [];
  for (const input of INPUTS) paths.push(...(await filesUnder(input)));
  paths.sort();
  const out = {};
  for (const p of paths) out[p] = sha256(await readFile(path.join(repoDir, p)));
  return out;
}

/** rel itself if it is a file, or every file under it. */
async function filesUnder(rel) {
  const abs = path.join(repoDir, rel);
  let entries;
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch (err) {
    if (err.code === "ENOTDIR") return [rel];
    throw err;
  }
  const out = [];
  for (const e of entries) {
    const child = `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await filesUnder(child)));
    else if (e.isFile()) out.push(child);
  }
  return out;
}

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await rm(distDir, { recursive: true, force: true });
  const manifest = await build(distDir);
  console.log(`web/dist: ${OUTPUTS.join(", ")} from ${Object.keys(manifest.inputs).length} input files`);
}
