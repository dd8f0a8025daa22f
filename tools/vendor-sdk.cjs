// Cross-checks our webhook signatures against the vendors' own Node SDKs.
// Run with NODE_PATH pointing at a node_modules holding `stripe` and `mercadopago`
// (.ci/run installs them). Exit status 0 means the SDK accepted; 1 that it refused.
//
//   node tools/vendor-sdk.cjs stripe-sign <secret> <payload-file>     prints a Stripe-Signature header
//   node tools/vendor-sdk.cjs stripe-verify <secret> <header> <payload-file>
//   node tools/vendor-sdk.cjs mp-validate <x-signature> <x-request-id> <data.id> <secret>
//   node tools/vendor-sdk.cjs swh-verify <whsec_secret> <webhook-id> <webhook-timestamp> <webhook-signature> <payload-file>
//     (the Standard Webhooks reference package, `standardwebhooks`)
"use strict";
const fs = require("fs");

const [cmd, ...args] = process.argv.slice(2);

function stripeClient() {
  const Stripe = require("stripe");
  return new Stripe("sk_test_unused");
}

try {
  if (cmd === "stripe-sign") {
    const [secret, file] = args;
    const payload = fs.readFileSync(file, "utf8");
    process.stdout.write(stripeClient().webhooks.generateTestHeaderString({ payload, secret }));
  } else if (cmd === "stripe-verify") {
    const [secret, header, file] = args;
    stripeClient().webhooks.constructEvent(fs.readFileSync(file, "utf8"), header, secret);
  } else if (cmd === "mp-validate") {
    const { WebhookSignatureValidator } = require("mercadopago");
    const [xSignature, xRequestId, dataId, secret] = args;
    WebhookSignatureValidator.validate({ xSignature, xRequestId, dataId, secret });
  } else if (cmd === "swh-verify") {
    const { Webhook } = require("standardwebhooks");
    const [secret, id, timestamp, signature, file] = args;
    const headers = { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature };
    new Webhook(secret).verify(fs.readFileSync(file, "utf8"), headers);
  } else {
    console.error(`unknown command ${cmd}`);
    process.exit(2);
  }
} catch (e) {
  console.error(String(e && e.message ? e.message : e));
  process.exit(1);
}
