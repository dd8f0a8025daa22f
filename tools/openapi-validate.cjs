// Validates an OpenAPI document (a file path) with @apidevtools/swagger-parser, a validator
// the project did not write: the OpenAPI schema for the document's version plus its own
// checks (refs resolve, path parameters declared, unique operation ids).
// Usage: NODE_PATH=<node_modules> node tools/openapi-validate.cjs openapi.json
"use strict";
const SwaggerParser = require("@apidevtools/swagger-parser");

const file = process.argv[2];
SwaggerParser.validate(file)
  .then((api) => {
    console.log(`valid OpenAPI ${api.openapi}: ${api.info.title} ${api.info.version}`);
  })
  .catch((err) => {
    console.error(`invalid: ${err.message}`);
    process.exit(1);
  });
