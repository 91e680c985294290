// Validates a batch of documents against parts of a JSON Schema with Ajv (draft 2020-12),
// whose `pattern` is an ECMA-262 RegExp with the `u` flag, as editors evaluate it.
// stdin:  {"schema": {...}, "probes": [{"pointer": "/$defs/X/properties/y", "documents": [...]}]}
// stdout: [[true, false, ...], ...]  (one verdict per document, per probe)
"use strict";

const Ajv2020 = require("ajv/dist/2020");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const { schema, probes } = JSON.parse(input);
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  ajv.addSchema(schema, "stack");
  const verdicts = probes.map(({ pointer, documents }) => {
    const escaped = pointer
      .split("/")
      .map((part) => encodeURIComponent(part))
      .join("/");
    const validate = ajv.compile({ $ref: `stack#${escaped}` });
    return documents.map((document) => validate(document) === true);
  });
  process.stdout.write(JSON.stringify(verdicts));
});
