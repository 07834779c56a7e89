import { EditorState } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { stateExtensions } from "codemirror-json-schema";
import { jsonPointerForPosition } from "codemirror-json-schema";
import { readFileSync } from "fs";
import { discriminatedSchema } from "/tmp/disc.mjs";
const schema = discriminatedSchema(JSON.parse(readFileSync("/tmp/schema.json")));
const doc = `id: demo
namespace: company.team
tasks:
  - id: hello
    type: core.Log
    message: "Hello"
    d
  - id: par
    type: core.Sleep
`;
const pos = doc.indexOf("    d\n") + 5;
const state = EditorState.create({ doc, selection: { anchor: pos }, extensions: [yaml(), stateExtensions(schema)] });
console.log("ptr", jsonPointerForPosition(state, pos, -1, "yaml"));
console.log("ptr1", jsonPointerForPosition(state, pos, 1, "yaml"));
