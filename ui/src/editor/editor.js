// The flow editor: CodeMirror 6 with YAML, completion/hover/diagnostics from the flow JSON Schema
// (task `type` as the discriminator), completion inside {{ }} expressions, and the server's
// validation merged into the same diagnostics. Kept behind this module: the pre-1.0
// codemirror-json-schema is used nowhere else.
import { EditorView, basicSetup } from "codemirror";
import { keymap, hoverTooltip, ViewPlugin } from "@codemirror/view";
import { EditorState, StateEffect, StateField } from "@codemirror/state";
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
import { linter, lintGutter, forEachDiagnostic } from "@codemirror/lint";
import { yamlSchemaHover, parseYAMLDocumentState } from "codemirror-json-schema/yaml";
import { stateExtensions, handleRefresh, getJSONSchema, JSONCompletion } from "codemirror-json-schema";
import { isMap, isScalar, parse, parseDocument } from "yaml";
import { Draft04 } from "json-schema-library";
import { api } from "../api.js";

/** The server schema dispatches on `type` with if/then; completion needs a oneOf keyed by `type`. */
export function discriminated(schema, compile = true) {
  const copy = structuredClone(schema);
  for (const kind of ["task", "trigger"]) {
    const def = copy.definitions && copy.definitions[kind];
    if (!def || !Array.isArray(def.allOf)) continue;
    copy.definitions[kind] = {
      type: "object",
      description: def.description,
      oneOfProperty: "type",
      oneOf: def.allOf.map((branch) => branch.then),
    };
  }
  // Compiled once here: codemirror-json-schema builds a validator per lint, hover and completion (of the
  // root or of a sub-schema), and compiling takes ~300-700 ms. A schema marked compiled is used as it is,
  // so every sub-schema is marked too, resolving its $refs (all `#/definitions/…`) through the root.
  if (!compile) return copy;
  const root = new Draft04(copy).rootSchema;
  const mark = (node) => {
    if (Array.isArray(node)) node.forEach(mark);
    else if (node && typeof node === "object") {
      if (node !== root && !Object.prototype.hasOwnProperty.call(node, "__compiled")) {
        Object.defineProperty(node, "__compiled", { enumerable: false, value: true });
        Object.defineProperty(node, "getRef", { enumerable: false, value: root.getRef });
      }
      Object.values(node).forEach(mark);
    }
  };
  Object.values(root).forEach(mark);
  return root;
}

/** Lines from which a flow counts as large (about 100 tasks). */
const LARGE = 400;

/**
 * Property and value completion from the schema. codemirror-json-schema 0.8 re-derives (and
 * recompiles, ~700 ms) a "lax" copy of the whole schema on every request; this uses the compiled
 * schema only, so completing never stalls typing.
 */
class SchemaCompletion extends JSONCompletion {
  doComplete(ctx) {
    this.schema = getJSONSchema(ctx.state);
    return this.schema ? this.doCompleteForSchema(ctx, this.schema) : [];
  }
}

/**
 * The document for completion while a key is half typed (`    d` does not parse): read as `d: x`,
 * so the task around it still has its `type` and only that type's properties are offered.
 */
function lenientParser(state) {
  const result = parseYAMLDocumentState(state);
  if (result.data != null) return result;
  const line = state.doc.lineAt(state.selection.main.head);
  if (!/^\s*(- )?[\w.-]+\s*$/.test(line.text)) return result;
  try {
    return { ...result, data: parse(state.doc.sliceString(0, line.to) + ": x" + state.doc.sliceString(line.to)) };
  } catch {
    return result;
  }
}

/**
 * Inside a task or trigger the `type` decides: its keys offer only that type's properties (with
 * their descriptions), and the `type:` value every registered type. Elsewhere the schema completes.
 */
function schemaCompletion() {
  const completion = new SchemaCompletion({ mode: "yaml", jsonParser: lenientParser });
  // each request reads the whole document: on a large flow only Ctrl-Space asks, typing stays light
  return (ctx) => (!ctx.explicit && ctx.state.doc.lines > LARGE ? null : componentCompletion(ctx) || completion.doComplete(ctx));
}

function componentCompletion(ctx) {
  const schema = getJSONSchema(ctx.state);
  const defs = (schema && schema.definitions) || {};
  const line = ctx.state.doc.lineAt(ctx.pos);
  const before = line.text.slice(0, ctx.pos - line.from);
  const typed = /^\s*(?:- )?type:\s*([\w.]*)$/.exec(before);
  const kind = (data) => (isMap(data) && isScalar(data.get("type", true)) ? String(data.get("type")) : null);
  const component = () => {
    const text = ctx.state.doc.sliceString(0, line.to) + (/:/.test(line.text) ? "" : ": x") + ctx.state.doc.sliceString(line.to);
    const doc = parseDocument(text);
    let found = null;
    const visit = (node) => {
      if (!node || !node.range || ctx.pos < node.range[0] || ctx.pos > node.range[2]) return;
      if (isMap(node) && kind(node) !== null) found = node;
      for (const item of node.items || []) visit(isMap(node) ? item.value : item);
    };
    visit(doc.contents);
    return found;
  };
  if (typed) {
    const map = component();
    if (!map) return null;
    const names = Object.entries(defs).filter(([, d]) => d && d.properties && d.properties.type && d.properties.type.enum)
      .map(([name, d]) => ({ label: name, type: "type", detail: (d.description || "").split("\n")[0].slice(0, 60) }));
    return { from: ctx.pos - typed[1].length, options: names, validFor: /^[\w.]*$/ };
  }
  const key = /^\s*(?:- )?(\w*)$/.exec(before);
  if (!key) return null;
  const map = component();
  const def = map && definitionOf(defs, kind(map));
  if (!def) return null;
  const present = new Set(map.items.map((pair) => String(pair.key && pair.key.value)));
  const options = Object.entries(def.properties || {}).filter(([name]) => !present.has(name) || name === key[1])
    .map(([name, p]) => ({ label: name, type: "property", info: p.description, apply: `${name}: ` }));
  return { from: ctx.pos - key[1].length, options, validFor: /^\w*$/ };
}

function definitionOf(defs, type) {
  if (!type) return null;
  return defs[type] || Object.values(defs).find((d) => d && d.properties && d.properties.type
    && (d.properties.type.enum || []).includes(type)) || null;
}

/** Completion of `inputs.`, `outputs.<taskId>.`, `vars.`, `trigger.` … inside `{{ }}`. */
function expressionCompletion(context) {
  const line = context.state.doc.lineAt(context.pos);
  const before = line.text.slice(0, context.pos - line.from);
  const open = before.lastIndexOf("{{");
  if (open < 0 || before.lastIndexOf("}}") > open) return null;
  const word = context.matchBefore(/[\w.]*/);
  let flow = {};
  try { // without the line being typed: an unclosed quote there must not hide the rest
    const doc = context.state.doc;
    flow = parse(doc.sliceString(0, line.from) + doc.sliceString(Math.min(line.to + 1, doc.length)), { uniqueKeys: false }) || {};
  } catch {
    flow = {};
  }
  const taskIds = [];
  const walk = (value) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      if (typeof value.id === "string" && typeof value.type === "string") taskIds.push(value.id);
      Object.values(value).forEach(walk);
    }
  };
  walk([flow.tasks, flow.errors, flow.finally]);
  const options = [
    ...(flow.inputs || []).filter((i) => i && i.id).map((i) => ({ label: `inputs.${i.id}`, type: "variable", detail: i.type })),
    ...taskIds.map((id) => ({ label: `outputs.${id}`, type: "variable", detail: "task outputs" })),
    ...Object.keys(flow.variables || {}).map((k) => ({ label: `vars.${k}`, type: "variable" })),
    ...["trigger.date", "trigger.body", "flow.id", "flow.namespace", "execution.id", "execution.startDate", "taskrun.value"]
      .map((label) => ({ label, type: "property" })),
  ];
  return { from: word ? word.from : context.pos, options, validFor: /^[\w.]*$/ };
}

/** The server's diagnostics (unknown types, duplicate ids, bad expressions), kept in step with edits. */
const setServer = StateEffect.define();
const serverDiagnostics = StateField.define({
  create: () => [],
  update(value, tr) {
    for (const e of tr.effects) if (e.is(setServer)) return e.value;
    if (!tr.docChanged || !value.length) return value;
    // an edit where the server saw a problem drops it until the server has looked again
    return value.filter((d) => !tr.changes.touchesRange(d.from, Math.max(d.to, d.from + 1)))
      .map((d) => ({ ...d, from: tr.changes.mapPos(d.from), to: tr.changes.mapPos(d.to) }));
  },
});

/** POST /flows/validate ~500 ms after the last edit; its errors join the schema's in one lint pass. */
function serverValidation() {
  let timer;
  const run = async (view) => {
    const text = view.state.doc.toString();
    let results = [];
    try {
      results = text.trim() ? await api("/flows/validate", { method: "POST", yaml: text }) : [];
    } catch {
      return;
    }
    if (view.state.doc.toString() !== text) return;
    const out = [];
    for (const entry of results) {
      for (const e of entry.errors || []) {
        const line = view.state.doc.line(Math.min(Math.max(e.line || 1, 1), view.state.doc.lines));
        const from = e.line ? Math.min(line.from + Math.max((e.column || 1) - 1, 0), line.to) : line.from;
        out.push({ from, to: e.line ? line.to : from, severity: "error", source: "server",
          message: e.message + (e.suggestion ? ` (${e.suggestion})` : "") });
      }
    }
    view.dispatch({ effects: setServer.of(out) });
  };
  return [
    serverDiagnostics,
    ViewPlugin.define((view) => {
      timer = setTimeout(() => run(view), 0);
      return {
        update(update) {
          if (!update.docChanged) return;
          clearTimeout(timer);
          timer = setTimeout(() => run(update.view), 500);
        },
        destroy: () => clearTimeout(timer),
      };
    }),
  ];
}

/** Schema diagnostics from the lint worker (off the main thread), with the server's merged in. */
function schemaLinter(worker, onReady) {
  let asked = 0;
  const waiting = new Map();
  worker.onmessage = ({ data }) => {
    const resolve = waiting.get(data.id);
    waiting.delete(data.id);
    if (onReady) onReady();
    onReady = null;
    resolve && resolve(data.diagnostics);
  };
  return async (view) => {
    const text = view.state.doc.toString();
    const id = ++asked;
    const found = await new Promise((resolve) => {
      waiting.set(id, resolve);
      worker.postMessage({ id, text });
    });
    const length = view.state.doc.length;
    return found.filter((d) => d.to <= length).concat(view.state.field(serverDiagnostics));
  };
}

const serverChanged = (update) => update.transactions.some((tr) => tr.effects.some((e) => e.is(setServer)));

/**
 * Mount an editor in *parent*. *onChange(text)* on each edit, *onDiagnostics(list)* when the
 * diagnostics change, *onSave()* on Ctrl-S / Cmd-S, *onReady()* once the schema has checked the flow;
 * *readOnly* for a user whose role may not change the flow.
 */
export function createEditor(parent, { doc, schema, readOnly = false, onChange, onDiagnostics, onSave, onReady }) {
  const worker = new Worker(new URL("./lint.worker.js", import.meta.url), { type: "module" });
  worker.postMessage({ schema: discriminated(schema, false) });
  const lines = doc.split("\n").length; // the longer the flow, the longer lint waits for a pause in typing
  const extensions = [
    basicSetup,
    keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (onSave && onSave(), true) }]),
    yaml(),
    lintGutter(),
    serverValidation(),
    linter(schemaLinter(worker, onReady), { delay: lines > 3 * LARGE ? 800 : lines > LARGE ? 400 : 150, needsRefresh: (u) => handleRefresh(u) || serverChanged(u) }),
    yamlLanguage.data.of({ autocomplete: schemaCompletion() }),
    yamlLanguage.data.of({ autocomplete: expressionCompletion }),
    hoverTooltip(yamlSchemaHover()),
    stateExtensions(discriminated(schema)),
    EditorView.updateListener.of((update) => {
      if (update.docChanged && onChange) onChange(update.state.doc.toString());
      if (onDiagnostics) {
        const list = [];
        forEachDiagnostic(update.state, (d) => list.push({ ...d, line: update.state.doc.lineAt(d.from).number }));
        onDiagnostics(list);
      }
    }),
    EditorView.theme({ "&": { height: "100%" }, ".cm-scroller": { overflow: "auto" } }),
    EditorState.readOnly.of(readOnly),
  ];
  const view = new EditorView({ doc, extensions, parent });
  return {
    view,
    setText(text) {
      if (text !== view.state.doc.toString()) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    destroy: () => {
      view.destroy();
      worker.terminate();
    },
  };
}
