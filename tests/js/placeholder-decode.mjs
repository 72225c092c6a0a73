// Placeholders decoded by the reference implementations (evanw/thumbhash, woltapp/blurhash),
// for tests/test_previews.py: reads [{kind, text, width, height}] as JSON on stdin and prints
// [{width, height, rgba}] (rgba: the pixels as base64).
import { thumbHashToRGBA } from "thumbhash";
import { decode } from "blurhash";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const asks = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = asks.map(({ kind, text, width, height }) => {
  if (kind === "thumbhash") {
    const { w, h, rgba } = thumbHashToRGBA(Buffer.from(text, "base64"));
    return { width: w, height: h, rgba: Buffer.from(rgba).toString("base64") };
  }
  const rgba = decode(text, width, height);
  return { width, height, rgba: Buffer.from(rgba).toString("base64") };
});
process.stdout.write(JSON.stringify(out));
