// Validates an AsyncAPI document with the official parser (@asyncapi/parser),
// prints every diagnostic, and exits non-zero on any error or warning.
//
//	node check.mjs ../../docs/asyncapi.json
//
// Informational diagnostics and hints are printed but do not fail the check.
// One is expected: "asyncapi-latest-version", because Fabric writes AsyncAPI
// 3.0.0 and the parser knows a later 3.x.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const file = resolve(process.argv[2] ?? "../../docs/asyncapi.json");
const names = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

const source = await readFile(file, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(source, { source: file });

const counts = { error: 0, warning: 0, info: 0, hint: 0 };
for (const d of diagnostics) {
  const severity = names[d.severity] ?? `severity ${d.severity}`;
  counts[severity] = (counts[severity] ?? 0) + 1;
  const where = d.path?.length ? ` at ${d.path.join(".")}` : "";
  const line = d.range ? ` (line ${d.range.start.line + 1})` : "";
  console.log(`${severity}: ${d.code}: ${d.message}${where}${line}`);
}

const failed = counts.error > 0 || counts.warning > 0 || document === undefined;
if (document) {
  console.log(
    `${file}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
      `${document.operations().length} operations, ${document.components().messages().length} component messages`,
  );
}
console.log(
  `${counts.error} errors, ${counts.warning} warnings, ${counts.info} infos, ${counts.hint} hints: ` +
    (failed ? "FAILED" : "ok"),
);
process.exit(failed ? 1 : 0);
