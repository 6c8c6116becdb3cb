// Parse each Mermaid text given as a JSON array with the real Mermaid parser; print one JSON line each.
// Mermaid sanitises with DOMPurify, which needs a DOM: jsdom provides it under Node.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

for (const text of JSON.parse(process.argv[2])) {
  try {
    const parsed = await mermaid.parse(text);
    console.log(JSON.stringify({ ok: true, type: parsed.diagramType }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: String(err.message || err).slice(0, 500) }));
  }
}
