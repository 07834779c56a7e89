// The flow editor: CodeMirror 6 with YAML, completion/hover/diagnostics from the flow JSON Schema
// (task `type` as the discriminator), completion inside {{ }} expressions, and the server's
// validation merged into the same diagnostics. Kept behind this module: the pre-1.0
// codemirror-json-schema is used nowhere else.
import { EditorView, basicSetup } from "codemirror";
import { keymap, hoverTooltip } from "@codemirror/view";
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
import { linter, lintGutter, forEachDiagnostic } from "@codemirror/lint";
import { yamlSchemaLinter, yamlCompletion, yamlSchemaHover } from "codemirror-json-schema/yaml";
import { stateExtensions, handleRefresh } from "codemirror-json-schema";
import { parse } from "yaml";
import { api } from "../api.js";

/** The server schema dispatches on `type` with if/then; completion needs a oneOf keyed by `type`. */
export function discriminated(schema) {
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
  return copy;
}

/** Completion of `inputs.`, `outputs.<taskId>.`, `vars.`, `trigger.` … inside `{{ }}`. */
function expressionCompletion(context) {
  const line = context.state.doc.lineAt(context.pos);
  const before = line.text.slice(0, context.pos - line.from);
  const open = before.lastIndexOf("{{");
  if (open < 0 || before.lastIndexOf("}}") > open) return null;
  const word = context.matchBefore(/[\w.]*/);
  let flow = {};
  try {
    flow = parse(context.state.doc.toString()) || {};
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

/** Diagnostics from POST /flows/validate (unknown types, duplicate ids, bad expressions). */
function serverLinter(onServer) {
  return async (view) => {
    const text = view.state.doc.toString();
    if (!text.trim()) return [];
    let results;
    try {
      results = await api("/flows/validate", { method: "POST", yaml: text });
    } catch {
      return [];
    }
    if (view.state.doc.toString() !== text) return [];
    const out = [];
    for (const entry of results) {
      for (const e of entry.errors || []) {
        const lineNo = Math.min(Math.max(e.line || 1, 1), view.state.doc.lines);
        const line = view.state.doc.line(lineNo);
        const from = e.line ? Math.min(line.from + Math.max((e.column || 1) - 1, 0), line.to) : line.from;
        out.push({ from, to: e.line ? line.to : from, severity: "error", source: "server",
          message: e.message + (e.suggestion ? ` (${e.suggestion})` : "") });
      }
    }
    onServer && onServer(out);
    return out;
  };
}

/**
 * Mount an editor in *parent*. *onChange(text)* on each edit, *onDiagnostics(list)* when the
 * diagnostics change, *onSave()* on Ctrl-S / Cmd-S.
 */
export function createEditor(parent, { doc, schema, onChange, onDiagnostics, onSave }) {
  const big = doc.split("\n").length > 3000; // keep lint off the typing path of very large flows
  const extensions = [
    basicSetup,
    keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (onSave && onSave(), true) }]),
    yaml(),
    lintGutter(),
    linter(yamlSchemaLinter(), { delay: big ? 600 : 150, needsRefresh: handleRefresh }),
    linter(serverLinter(), { delay: 800 }),
    yamlLanguage.data.of({ autocomplete: yamlCompletion() }),
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
  ];
  const view = new EditorView({ doc, extensions, parent });
  return {
    view,
    setText(text) {
      if (text !== view.state.doc.toString()) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    destroy: () => view.destroy(),
  };
}
