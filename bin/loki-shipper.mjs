#!/usr/bin/env node
// Written for any Node.js, so that an old one gets one line instead of a syntax error or a stack trace.
var REQUIRED_MAJOR = 20;
var major = Number(process.versions.node.split(".")[0]);
if (major < REQUIRED_MAJOR) {
  process.stderr.write(
    "error: loki-shipper needs Node.js " +
      REQUIRED_MAJOR +
      " or later; this is Node.js " +
      process.versions.node +
      "\n",
  );
  process.exit(2);
}
import("../dist/cli/main.js").catch((error) => {
  if (
    error &&
    error.code === "ERR_MODULE_NOT_FOUND" &&
    String(error.message).indexOf("dist/cli/main.js") >= 0
  ) {
    process.stderr.write(
      "error: the CLI is not built: run npm run build in this clone, or npm run cli -- <command> to run the sources\n",
    );
    process.exit(2);
  }
  throw error;
});
