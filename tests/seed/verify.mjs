// The reference's own `verify` function, copied verbatim from the phone.systems API
// reference ("Signature verification"), with a harness that feeds it cases.
import crypto from "node:crypto";

function verify(rawBody, header, secret) {
  const [tPart, sigPart] = header.split(",");
  const t = tPart.split("=")[1];
  const given = sigPart.split("=")[1];
  const expected = crypto
    .createHmac("sha256", secret)
    .update(`${t}.${rawBody}`)
    .digest("hex");
  return crypto.timingSafeEqual(
    Buffer.from(given, "hex"),
    Buffer.from(expected, "hex")
  );
}

// Harness: stdin holds a JSON array of {body, header, secret}; stdout gets a JSON
// array of booleans (false where verify throws, e.g. on a length mismatch).
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(({ body, header, secret }) => {
    try {
      return verify(body, header, secret);
    } catch {
      return false;
    }
  });
  process.stdout.write(JSON.stringify(results));
});
