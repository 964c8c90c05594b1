#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Validate Kubernetes manifests (multi-document YAML, e.g. `helm template`
// output) against the Kubernetes OpenAPI schemas, strictly.
//
//   node validate-k8s.js --modules DIR [--json-out FILE] FILE...   ("-" = stdin)
//
// DIR is a node_modules folder holding kubernetes-models, the models of the
// custom resources in CRD_PACKAGES and yaml (installed by
// scripts/install-kube-tools.sh). Each document is checked twice:
//   1. kubernetes-models' generated validator: types, required fields,
//      enums and formats from the upstream schema;
//   2. an unknown-field walk over the model's TypeScript declarations, as
//      `kubectl --validate=strict` would reject them: that validator accepts
//      extra properties, and a mis-indented key is the usual chart bug.
// A document whose apiVersion/kind has no model fails (no silent skips).
// Prints one line per document; exits 1 if any document is invalid.
"use strict";

const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

function usage(msg) {
  if (msg) console.error("validate-k8s: " + msg);
  console.error("usage: validate-k8s.js --modules DIR [--json-out FILE] FILE...");
  process.exit(2);
}

const args = process.argv.slice(2);
let modules = null;
let jsonOut = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--modules") modules = args[++i];
  else if (args[i] === "--json-out") jsonOut = args[++i];
  else files.push(args[i]);
}
if (!modules || files.length === 0) usage();
if (!fs.existsSync(path.join(modules, "kubernetes-models"))) {
  usage(`no kubernetes-models in ${modules}; run scripts/install-kube-tools.sh`);
}
const req = createRequire(path.join(path.resolve(modules), "noop.js"));
const YAML = req("yaml");

// ---- strict unknown-field check from the .d.ts declarations
const dtsCache = new Map();

function resolveDts(spec, fromFile) {
  let base;
  if (spec.startsWith(".")) base = path.resolve(path.dirname(fromFile), spec);
  else base = path.join(modules, spec);
  base = base.replace(/\.js$/, "");
  const file = base + ".d.ts";
  return fs.existsSync(file) ? file : null;
}

// Returns {props: Map(name -> type text), imports: Map(type name -> file)}
// or null when the file declares no interface (a scalar alias such as
// IntOrString, Quantity or Time).
function parseDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  const src = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const imports = new Map();
  for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      const local = name.split(/\s+as\s+/).pop();
      const target = resolveDts(m[2], file);
      if (target) imports.set(local, target);
    }
  }
  const start = src.search(/export interface \w+[^{]*\{/);
  let result = null;
  if (start >= 0) {
    let i = src.indexOf("{", start) + 1;
    let depth = 1;
    const bodyStart = i;
    while (depth > 0 && i < src.length) {
      if (src[i] === "{") depth++;
      else if (src[i] === "}") depth--;
      i++;
    }
    result = { props: parseProps(src.slice(bodyStart, i - 1)), imports };
  }
  dtsCache.set(file, result);
  return result;
}

// Map(name -> type text) of the properties in an interface or inline
// object type body ("a"?: T; "b": { ... };). Models generated from CRDs
// nest their types inline rather than in imported interfaces.
function parseProps(body) {
  const props = new Map();
  const re = /"([^"]+)"\??\s*:\s*/g;
  let m;
  while ((m = re.exec(body)) !== null) {
    // The type runs to the next ';' outside braces/angle brackets.
    let j = re.lastIndex;
    let d = 0;
    while (j < body.length && !(body[j] === ";" && d === 0)) {
      if ("{<(".includes(body[j])) d++;
      else if ("}>)".includes(body[j])) d--;
      j++;
    }
    props.set(m[1], body.slice(re.lastIndex, j).trim());
    re.lastIndex = j + 1;
  }
  return props;
}

function walkType(value, type, imports, where, errors) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/s.exec(type))) {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walkType(v, m[1].trim(), imports, `${where}[${i}]`, errors));
    }
  } else if ((m = /^\{\s*\[key: string\]:\s*(.+?);?\s*\}$/s.exec(type))) {
    if (typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) {
        walkType(v, m[1].trim(), imports, `${where}.${k}`, errors);
      }
    }
  } else if (/^\w+$/.test(type) && imports.has(type)) {
    walkObject(value, imports.get(type), where, errors);
  } else if ((m = /^\{(.*)\}$/s.exec(type)) && /^\s*"/.test(m[1])) {
    // an inline object type with named properties
    if (typeof value === "object" && !Array.isArray(value)) {
      walkProps(value, { props: parseProps(m[1]), imports }, where, errors);
    }
  }
}

function walkObject(value, dtsFile, where, errors) {
  const decl = parseDts(dtsFile);
  if (!decl || typeof value !== "object" || Array.isArray(value)) return;
  walkProps(value, decl, where, errors);
}

// Every key of value must be a property of decl ({props, imports}).
function walkProps(value, decl, where, errors) {
  for (const [k, v] of Object.entries(value)) {
    if (!decl.props.has(k)) {
      errors.push(`${where ? where + "." : ""}${k}: unknown field`);
      continue;
    }
    walkType(v, decl.props.get(k), decl.imports, where ? `${where}.${k}` : k, errors);
  }
}

// ---- schema validation
// Custom resources the charts may render, by API group: the package of
// their models (generated from the CRDs' schemas, installed next to
// kubernetes-models by scripts/install-kube-tools.sh).
const CRD_PACKAGES = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

function modelFor(doc) {
  const av = doc.apiVersion;
  const kind = doc.kind;
  if (typeof av !== "string" || typeof kind !== "string" || !/^\w+$/.test(kind)) {
    return { error: "missing or invalid apiVersion/kind" };
  }
  const group = av.includes("/") ? av.split("/")[0] : "";
  const rel = `${CRD_PACKAGES[group] || "kubernetes-models"}/${av}/${kind}`;
  const dts = path.join(modules, rel + ".d.ts");
  if (!fs.existsSync(dts)) return { error: `no schema for ${av} ${kind}` };
  const mod = req(rel);
  const cls = mod[kind];
  if (!cls) return { error: `kubernetes-models has no class ${kind} in ${rel}` };
  return { cls, dts };
}

function readInput(f) {
  return fs.readFileSync(f === "-" ? 0 : f, "utf8");
}

let failed = 0;
let count = 0;
const all = [];
for (const f of files) {
  const docs = YAML.parseAllDocuments(readInput(f));
  docs.forEach((d, idx) => {
    const label0 = `${f}#${idx}`;
    if (d.errors && d.errors.length) {
      failed++;
      console.log(`FAIL ${label0}: YAML: ${d.errors[0].message}`);
      return;
    }
    const doc = d.toJS();
    if (doc === null || doc === undefined) return; // empty document
    count++;
    all.push(doc);
    const name = doc.metadata && doc.metadata.name;
    const label = `${doc.kind || "?"}/${name || "?"} (${label0})`;
    const errors = [];
    const model = modelFor(doc);
    if (model.error) {
      errors.push(model.error);
    } else {
      try {
        new model.cls(doc).validate();
      } catch (e) {
        errors.push(String(e.message || e).split("\n")[0]);
      }
      walkObject(doc, model.dts, "", errors);
    }
    if (!name) errors.push("metadata.name is missing");
    if (errors.length) {
      failed++;
      console.log(`FAIL ${label}`);
      for (const e of errors) console.log(`     ${e}`);
    } else {
      console.log(`ok   ${label}`);
    }
  });
}
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(all, null, 1) + "\n");
console.log(`validate-k8s: ${count} objects, ${failed} invalid`);
process.exit(failed ? 1 : 0);
