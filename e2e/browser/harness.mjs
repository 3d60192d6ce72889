// The browser test's harness: a real `fabric dev` process, a TCP proxy in
// front of it that can cut every connection or point at another process,
// and Debian's Chromium driven by playwright-core.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** The repository's root. */
export const root = fileURLToPath(new URL("../../", import.meta.url));

/** Where screenshots go: $FABRIC_TEST_OUTPUT, or e2e/browser/output. */
export const outputDir = process.env.FABRIC_TEST_OUTPUT ?? join(root, "e2e/browser/output");

/** Builds the fabric binary into a temporary directory; returns its path and a cleanup. */
export function buildFabric() {
  const dir = mkdtempSync(join(tmpdir(), "fabric-browser-test-"));
  const bin = join(dir, "fabric");
  execFileSync("go", ["build", "-o", bin, "./cmd/fabric"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  return { bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts `fabric dev` on a random port and resolves when it listens, with
 * its address (host:port) and a stop function (SIGKILL when kill is true).
 */
export async function startDev(bin, args = []) {
  const proc = spawn(bin, ["dev", "--listen", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fabric dev did not start in 60s:\n${stdout}\n${stderr}`)), 60_000);
    proc.stdout.on("data", (d) => {
      stdout += d;
      const m = /gateway listening on ws:\/\/([^/\s]+)\/ws/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code }) => reject(new Error(`fabric dev exited (${code}):\n${stderr}`)));
  });
  return {
    addr,
    logs: () => stderr,
    async stop(kill = false) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(kill ? "SIGKILL" : "SIGTERM");
      return exited;
    },
  };
}

/**
 * A TCP proxy on a random loopback port in front of target (host:port):
 * the page is loaded through it, so cutting it cuts the page's WebSocket.
 */
export class Proxy {
  #server;
  #sockets = new Set();
  target;

  static async start(target) {
    const p = new Proxy(target);
    await new Promise((resolve) => p.#server.listen(0, "127.0.0.1", resolve));
    return p;
  }

  constructor(target) {
    this.target = target;
    this.#server = net.createServer((client) => {
      const [host, port] = splitHostPort(this.target);
      const upstream = net.connect(port, host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  /** The page's URL through the proxy. */
  get url() {
    return `http://127.0.0.1:${this.#server.address().port}/`;
  }

  /** Drops every connection at once, as a network failure would (no close frame). */
  cut() {
    for (const s of this.#sockets) s.destroy();
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

function splitHostPort(addr) {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

/** Launches Debian's Chromium headless, with no traffic beyond loopback. */
export function launchChromium() {
  mkdirSync(outputDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
