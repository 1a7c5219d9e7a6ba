// The hand-written types (src/index.d.ts) stay true to the API: every
// property of an interface marked "Schema NAME" must be a property of that
// schema in api/openapi.json, with a compatible type.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import ts from "typescript";
import { ROOT } from "./devnet.mjs";

const doc = JSON.parse(readFileSync(`${ROOT}/api/openapi.json`, "utf8"));
const source = ts.createSourceFile("index.d.ts", readFileSync(new URL("../src/index.d.ts", import.meta.url), "utf8"), ts.ScriptTarget.ES2022, true);

function jsonTypes(schema) {
  if (schema.$ref) return ["object"];
  const t = schema.type ?? [];
  return Array.isArray(t) ? t : [t];
}

function tsTypes(node) {
  const text = node.getText(source);
  const out = new Set();
  if (/\bstring\b|"[^"]*"|JobState/.test(text)) out.add("string");
  if (/\bnumber\b/.test(text)) out.add("integer").add("number");
  if (/\bboolean\b/.test(text)) out.add("boolean");
  if (/\[\]|unknown\[\]/.test(text)) out.add("array");
  if (/Record<|\{|^[A-Z]\w*$/.test(text.replace(/\s*\|\s*null/, "")) && !/JobState/.test(text)) out.add("object");
  if (/\bnull\b/.test(text)) out.add("null");
  return out;
}

test("index.d.ts matches api/openapi.json", () => {
  let checked = 0;
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    const docComment = ts.getJSDocCommentsAndTags(node).map((d) => d.getText(source)).join(" ");
    const m = /Schema (\w+)/.exec(docComment);
    if (!m) return;
    const schema = doc.components.schemas[m[1]];
    assert.ok(schema, `${node.name.text}: api/openapi.json has no schema ${m[1]}`);
    for (const member of node.members) {
      const name = member.name.getText(source);
      const prop = schema.properties[name];
      assert.ok(prop, `${node.name.text}.${name}: schema ${m[1]} has no property ${name}`);
      const want = jsonTypes(prop).filter((t) => t !== "null");
      const have = tsTypes(member.type);
      for (const t of want) assert.ok(have.has(t), `${node.name.text}.${name}: the schema says ${want}, the type is ${member.type.getText(source)}`);
      if (jsonTypes(prop).includes("null")) assert.ok(have.has("null"), `${node.name.text}.${name} may be null (Go's nil slice or map): add | null`);
      checked++;
    }
  });
  assert.ok(checked > 40, `only ${checked} properties checked`);
});
