// Schema diagnostics computed off the main thread (a 1000-task flow takes a long time to check):
// YAML syntax errors, then the flow schema, and each task or trigger against its own type's schema
// (the `type` decides; json-schema-library's oneOf alone misses errors inside the chosen branch).
import { isMap, isScalar, isSeq, parseDocument } from "yaml";
import { Draft04 } from "json-schema-library";

let draft = null;
let defs = {};
const KEY_ERRORS = new Set(["NoAdditionalPropertiesError", "RequiredPropertyError", "InvalidPropertyNameError",
  "ForbiddenPropertyError", "UndefinedValueError"]);

self.onmessage = ({ data }) => {
  if (data.schema) {
    draft = new Draft04(data.schema);
    defs = data.schema.definitions || {};
    return;
  }
  self.postMessage({ id: data.id, diagnostics: check(data.text) });
};

function check(text) {
  if (!text.trim()) return [];
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length) {
    return doc.errors.map((e) => ({ from: e.pos[0], to: Math.max(e.pos[1], e.pos[0] + 1), severity: "error",
      source: "YAML", message: e.message.split("\n")[0] }));
  }
  if (!draft) return [];
  const out = [];
  const report = (errors, base) => {
    for (const e of errors) {
      const pointer = String((e.data && e.data.pointer) || "#").replace(/^#/, "");
      const path = [...base, ...pointer.split("/").slice(1).map(unescape)];
      const key = KEY_ERRORS.has(e.name) && e.data && e.data.property;
      const range = locate(doc, key ? [...path, e.data.property] : path, Boolean(key));
      const message = e.message.replaceAll("in `#` ", "").replaceAll(" at `#`", "").replace(/`#\/?/g, "`")
        .replace(/ in `[^`]*` is not allowed/, " is not allowed");
      out.push({ from: range[0], to: range[1], severity: "error", source: "schema", message });
    }
  };
  const data = doc.toJS();
  report(draft.validate(data).filter((e) => e.name !== "OneOfPropertyError" && e.name !== "OneOfError"), []);
  // each component against its type's schema
  walk(doc.contents, [], (node, path) => {
    const type = isScalar(node.get("type", true)) ? String(node.get("type")) : null;
    if (!type || !isComponentPath(path)) return;
    const def = definition(type);
    if (!def) {
      const range = locate(doc, [...path, "type"], false);
      out.push({ from: range[0], to: range[1], severity: "error", source: "schema",
        message: `unknown type \`${type}\`` });
      return;
    }
    report(draft.validate(node.toJSON(), def), path);
  });
  return dedupe(out);
}

const BLOCKS = new Set(["tasks", "errors", "finally", "afterExecution", "triggers", "then", "else", "defaults"]);

/** Whether *path* holds a task or trigger: an item of a task block (tasks/0, tasks/2/then/1,
 * tasks/4/cases/x/0) or a Dag node's `task` — not an input, an output or a plugin default. */
function isComponentPath(path) {
  if (!["tasks", "errors", "finally", "afterExecution", "triggers"].includes(path[0])) return false;
  const last = path[path.length - 1];
  if (last === "task") return true;
  return typeof last === "number" && (BLOCKS.has(path[path.length - 2]) || path[path.length - 3] === "cases");
}

function definition(type) {
  return defs[type] || Object.values(defs).find((d) => d && d.properties && d.properties.type
    && (d.properties.type.enum || []).includes(type));
}

function walk(node, path, visit) {
  if (isMap(node)) {
    visit(node, path);
    for (const pair of node.items) walk(pair.value, [...path, isScalar(pair.key) ? String(pair.key.value) : "?"], visit);
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walk(item, [...path, i], visit));
  }
}

/** The text range of the node at *path* (its key when *asKey*), else of the nearest parent found. */
function locate(doc, path, asKey) {
  let node = doc.contents;
  let range = node && node.range ? [node.range[0], node.range[1]] : [0, 0];
  for (let i = 0; i < path.length; i++) {
    const part = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
      if (!pair) break;
      if (asKey && i === path.length - 1) return [pair.key.range[0], pair.key.range[1]];
      node = pair.value;
      range = node && node.range ? [node.range[0], node.range[1]] : [pair.key.range[0], pair.key.range[1]];
    } else if (isSeq(node) && typeof part === "number" || isSeq(node) && /^\d+$/.test(part)) {
      node = node.items[Number(part)];
      if (!node) break;
      range = [node.range[0], node.range[1]];
    } else break;
  }
  return range;
}

function unescape(s) {
  return /^\d+$/.test(s) ? Number(s) : s.replaceAll("~1", "/").replaceAll("~0", "~");
}

function dedupe(list) {
  const seen = new Set();
  return list.filter((d) => {
    const k = `${d.from}:${d.message}`;
    return !seen.has(k) && seen.add(k);
  });
}
