// tracklite's page: experiments, runs table, charts, compare, run page.
// Every string from the store goes into the DOM as text (textContent / text nodes), never as
// markup. The report embeds its data; the live page asks the server it came from.
(function () {
  "use strict";

  const NONCE = document.currentScript ? document.currentScript.nonce : "";
  const CONFIG = JSON.parse(byId("tracklite-config").textContent);
  const LIVE = CONFIG.mode === "live";
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const ROW_H = 26;
  const PAGE = 200;
  const GROUP_SAMPLE = CONFIG.group_sample || 100;  // runs per group whose curves a group chart averages
  const STATS = ["n", "mean", "median", "min", "max", "std"];
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];

  // ------------------------------------------------------------------ small helpers

  function byId(id) { return document.getElementById(id); }

  function h(tag, props, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "style") node.style.cssText = v;
      else if (k === "checked" || k === "value" || k === "selected") node[k] = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function num(v) { return typeof v === "string" ? Number(v) : (v == null ? undefined : v); }

  function fmt(v) {
    v = num(v);
    if (v === undefined) return "";
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    return (a !== 0 && (a < 1e-4 || a >= 1e6)) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
  }

  function fmtTime(ms) {
    if (ms == null) return "";
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  }

  function fmtDuration(row) {
    if (row.start == null) return "";
    const end = row.end != null ? row.end : (row.status === "RUNNING" ? Date.now() : null);
    if (end == null) return "";
    let s = Math.max(0, Math.round((end - row.start) / 1000));
    const hrs = Math.floor(s / 3600); s -= hrs * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return hrs ? `${hrs}h${String(m).padStart(2, "0")}m` : (m ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`);
  }

  function fmtSize(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }

  // plotly reads a few tags (<b>, <br>, <a href>...) in trace names and labels; entities make
  // a store string show as the text it is.
  function plotlyText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function quote(key) { return "`" + key + "`"; }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type: type || "text/csv" }));
    const a = h("a", { href: url, download: name });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function bytesOf(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(b64) {
    const stream = new Blob([bytesOf(b64)]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }

  async function loadPlotly() {
    if (window.Plotly) return;
    const holder = byId("tracklite-plotly");
    const text = new TextDecoder().decode(await gunzip(holder.textContent.trim()));
    const script = document.createElement("script");
    script.nonce = NONCE;
    script.textContent = text;
    document.head.append(script);
  }

  // ------------------------------------------------------------------ view state (URL hash)

  const state = {
    exps: [], view: "runs", run: null, filter: "", quick: {}, cols: null, sort: ["start", "desc"],
    sel: [], base: null, x: "step", smooth: 0, logx: [], logy: [], group: "", agg: "mean",
    band: "minmax",
  };

  function loadHash() {
    if (location.hash.length < 2) return;
    try { Object.assign(state, JSON.parse(decodeURIComponent(location.hash.slice(1)))); } catch (e) { /* a mangled link: defaults */ }
  }

  function saveHash() {
    try { history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(state))); } catch (e) { /* srcdoc frames */ }
  }

  // ------------------------------------------------------------------ data sources

  // A list of runs, read by position: rowAt(i) is the row or null while its page loads.
  function localList(rows, keys) {
    return { total: rows.length, keys, metrics: null, rowAt: (i) => rows[i] || null, sortable: () => true,
      groups: async (by, metrics, curveKeys) => groupRows(rows, by, metrics, curveKeys) };
  }

  // `rows` grouped by param `by` in the order they come (runs without it: "(none)"): per group
  // its number of runs, the stats of each metric key's last values, and per curve key the runs
  // having it (`of`) and the first GROUP_SAMPLE of them (`sample`). The server's /api/groups
  // gives the same for a live table (see liveSource).
  function groupRows(rows, by, metrics, curveKeys) {
    const at = new Map();
    for (const r of rows) {
      const value = r.p[by] === undefined ? "(none)" : r.p[by];
      if (!at.has(value)) at.set(value, []);
      at.get(value).push(r);
    }
    const groups = [...at].map(([value, members]) => ({ value, runs: members.length,
      stats: Object.fromEntries(metrics.map((k) => [k, stats(members.map((r) => num(r.m[k])))])),
      curves: Object.fromEntries(curveKeys.map((k) => {
        const have = members.filter((r) => k in r.m);
        return [k, { of: have.length, sample: have.slice(0, GROUP_SAMPLE) }];
      })) }));
    return { total: rows.length, groups };
  }

  function sortValue(row, col, summaries) {
    const [kind, key, part] = splitCol(col);
    if (kind === "name") return row.name.toLowerCase();
    if (kind === "status") return row.status;
    if (kind === "start") return row.start;
    if (kind === "end") return row.end;
    if (kind === "dur") return row.start != null && row.end != null ? row.end - row.start : null;
    if (kind === "exp") return expName(row.exp);
    if (kind === "p") return row.p[key];
    if (kind === "t") return row.t[key];
    if (kind === "m") {
      if (part === "last") return num(row.m[key]);
      const s = summaries && summaries[row.id] && summaries[row.id][key];
      return s ? num(s[part === "best" ? "best_step" : part]) : undefined;
    }
    return undefined;
  }

  function quickMatch(text, value) {
    if (!text) return true;
    const m = /^\s*(<=|>=|!=|<|>|=)?\s*(-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*$/i.exec(text);
    if (m && (typeof value === "number" || value === undefined)) {
      if (value === undefined || Number.isNaN(value)) return false;
      const n = Number(m[2]);
      switch (m[1] || "=") {
        case "<": return value < n;
        case "<=": return value <= n;
        case ">": return value > n;
        case ">=": return value >= n;
        case "!=": return value !== n;
        default: return value === n;
      }
    }
    const shown = typeof value === "number" ? fmt(value) : (value == null ? "" : String(value));
    return shown.toLowerCase().includes(text.trim().toLowerCase());
  }

  function reportSource(data) {
    let decoded = null;
    const byRun = new Map(data.runs.map((r, i) => [r.id, i]));
    const keyNames = data.keys.metrics;

    async function curves() {
      if (decoded) return decoded;
      const [step, value, time] = await Promise.all(["step", "value", "time"].map(async (n) => {
        const [dtype, delta, packed] = data.series[n];
        const width = dtype === "f4" ? 4 : 8;
        const bytes = new Uint8Array(await gunzip(packed));
        const rows = bytes.length / width;
        const plain = new Uint8Array(bytes.length);  // undo the byte shuffle
        for (let b = 0; b < width; b++) {
          const from = b * rows;
          for (let i = 0; i < rows; i++) plain[i * width + b] = bytes[from + i];
        }
        const column = width === 4 ? new Float64Array(new Float32Array(plain.buffer)) : new Float64Array(plain.buffer);
        if (delta) for (let i = 1; i < column.length; i++) column[i] += column[i - 1];
        return column;
      }));
      const index = new Map();
      let offset = 0;
      for (const [run, key, count, total] of data.series.index) {
        const k = keyNames[key];
        if (!index.has(k)) index.set(k, new Map());
        index.get(k).set(run, { offset, count, total });
        offset += count;
      }
      decoded = { step, value, time, index };
      return decoded;
    }

    const self = {
      filterNote: data.filter,
      experiments: async () => data.experiments,
      list: async (q) => {
        const wanted = new Set(q.exps.length ? q.exps : data.experiments.map((e) => e.id));
        let rows = data.runs.filter((r) => wanted.has(r.exp));
        for (const [col, text] of Object.entries(q.quick || {})) {
          if (text) rows = rows.filter((r) => quickMatch(text, sortValue(r, col, data.summaries)));
        }
        const [col, dir] = q.sort;
        const sign = dir === "desc" ? -1 : 1;
        const keyed = rows.map((r) => [sortValue(r, col, data.summaries), r]);
        keyed.sort((a, b) => {
          const x = a[0], y = b[0];
          const xm = x === undefined || x === null || Number.isNaN(x);
          const ym = y === undefined || y === null || Number.isNaN(y);
          if (xm || ym) return xm === ym ? 0 : (xm ? 1 : -1);  // missing values last
          return x < y ? -sign : (x > y ? sign : 0);
        });
        return localList(keyed.map((p) => p[1]), keysOf(data.runs.filter((r) => wanted.has(r.exp))));
      },
      // Every key of the rows, as the server's answer for runs with few keys (see pickRows).
      rowsById: async (ids) => {
        const rows = ids.filter((id) => byRun.has(id)).map((id) => data.runs[byRun.get(id)]);
        return { rows, keys: keysOf(rows), metrics: null };
      },
      summaries: async (ids) => Object.fromEntries(ids.map((id) => [id, data.summaries[id] || {}])),
      series: async (rows, key) => {
        const d = await curves();
        const perRun = d.index.get(key) || new Map();
        return rows.map((row) => {
          const at = perRun.get(byRun.get(row.id));
          if (!at) return { id: row.id, total: 0, step: [], value: [], time: [] };
          const end = at.offset + at.count;
          return {
            id: row.id, total: at.total, step: d.step.subarray(at.offset, end),
            value: d.value.subarray(at.offset, end), time: d.time.subarray(at.offset, end),
          };
        });
      },
      csv: async (rows, key) => {
        const curvesOf = await self.series(rows, key);
        const lines = ["run_id,key,step,value,timestamp"];
        for (const c of curvesOf) {
          for (let i = 0; i < c.step.length; i++) {
            lines.push([c.id, csvCell(key), c.step[i], c.value[i], new Date(c.time[i]).toISOString()].join(","));
          }
        }
        download(key.replace(/[^A-Za-z0-9]+/g, "_") + "-report-points.csv", lines.join("\n") + "\n");
      },
      run: async (id) => {
        const row = data.runs[byRun.get(id)];
        const d = data.details[id];
        return { info: d.info, params: row.p, tags: row.t, metrics: data.summaries[id] || {},
          artifacts: d.artifacts, qlib: d.qlib };
      },
      preview: async (id, path) => {
        const p = data.details[id].previews[path];
        return p || { path, kind: "missing" };
      },
    };
    return self;
  }

  function keysOf(rows) {
    const union = (part) => [...new Set(rows.flatMap((r) => Object.keys(r[part])))].sort();
    return { metrics: union("m"), params: union("p"), tags: union("t") };
  }

  function csvCell(text) { return /[",\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text; }

  async function api(path, params) {
    const url = path + "?" + new URLSearchParams(params || {}).toString();
    const response = await fetch(url, { headers: { "X-Tracklite-Token": TOKEN }, cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function runRef(row) { return row.id + ":" + row.exp; }

  function orderClause(col, dir) {
    const [kind, key, part] = splitCol(col);
    const d = dir === "desc" ? " DESC" : " ASC";
    if (kind === "name") return "attributes.run_name" + d;
    if (kind === "status") return "attributes.status" + d;
    if (kind === "start") return "start_time" + d;
    if (kind === "end") return "end_time" + d;
    if (key && key.includes("`")) return null;
    if (kind === "m" && part === "last") return "metrics." + quote(key) + d;
    if (kind === "p") return "params." + quote(key) + d;
    if (kind === "t") return "tags." + quote(key) + d;
    return null;
  }

  // The server's `stat` for a metric's min, max or best-step column (its points, not the
  // search, order those): "min:asc:loss"; "" for every other column.
  function statParam(col, dir) {
    const [kind, key, part] = splitCol(col);
    if (kind !== "m" || part === "last") return "";
    return `${part === "best" ? "best_step" : part}:${dir === "desc" ? "desc" : "asc"}:${key}`;
  }

  function liveSource() {
    const summaryCache = new Map();
    return {
      filterNote: null,
      experiments: async () => (await api("api/experiments")).experiments,
      list: async (q, fresh) => {
        const order = orderClause(q.sort[0], q.sort[1]);
        // Rows carry the metric keys the page shows (a run may have 100,000); the key lists
        // come with the first page only.
        const params = { exps: q.exps.join(","), filter: q.filter || "", order: order || "", stat: statParam(q.sort[0], q.sort[1]),
          limit: PAGE, metrics: q.metrics.join("\n") };
        const first = await api("api/runs", { ...params, offset: 0, fresh: fresh ? "1" : "0" });
        params.keys = "0";
        const pages = new Map([[0, first.rows]]);
        const loading = new Set();
        const list = {
          total: first.total, keys: first.keys, metrics: first.metrics, onload: null,
          sortable: (col) => orderClause(col, "asc") !== null || statParam(col, "asc") !== "",
          rowAt(i) {
            const page = Math.floor(i / PAGE);
            const rows = pages.get(page);
            if (rows) return rows[i - page * PAGE] || null;
            if (!loading.has(page)) {
              loading.add(page);
              api("api/runs", { ...params, offset: page * PAGE }).then((body) => {
                pages.set(page, body.rows);
                if (list.onload) list.onload();
              }).catch(showError);
            }
            return null;
          },
          // The groups of groupRows, computed by the server from its search: never every row.
          async groups(by, metrics, curveKeys) {
            const body = await api("api/groups", { exps: params.exps, filter: params.filter, order: params.order, stat: params.stat, by,
              metrics: metrics.join("\n"), curves: curveKeys.join("\n") });
            const runs = body.runs.map(([id, exp]) => ({ id, exp }));
            const groups = body.values.map((value, i) => ({ value, runs: body.counts[i],
              stats: Object.fromEntries(metrics.map((k) => {
                const s = body.stats[k];
                return [k, s.n[i] ? Object.fromEntries(STATS.map((name) => [name, num(s[name][i])])) : null];
              })),
              curves: Object.fromEntries(curveKeys.map((k) => {
                const c = body.curves[k];
                return [k, { of: c.of[i], sample: c.sample[i].map((j) => runs[j]) }];
              })) }));
            return { total: body.total, groups };
          },
        };
        return list;
      },
      // Past 200 metric keys in these runs, the rows carry the keys `metrics` only (a run may
      // have 100,000); the key lists of these runs come along unless `lists` is false.
      rowsById: async (ids, metrics, lists) => ids.length
        ? api("api/rows", { ids: ids.join(","), metrics: metrics.join("\n"), keys: lists === false ? "0" : "1" })
        : { rows: [], keys: keysOf([]), metrics: null },
      // Only the keys asked for: a run may have 100,000 metric keys.
      summaries: async (ids, rows, keys) => {
        const lacks = (r) => !summaryCache.has(r.id) || keys.some((k) => k in r.m && !(k in summaryCache.get(r.id)));
        const missing = rows.filter(lacks);
        if (missing.length) {
          const body = await api("api/summary", { runs: missing.map(runRef).join(","), keys: keys.join("\n") });
          for (const r of missing) {
            // A key asked for and not answered (no points yet) is remembered as null: not asked again.
            const got = { ...Object.fromEntries(keys.map((k) => [k, null])), ...(body.summaries[r.id] || {}) };
            summaryCache.set(r.id, { ...(summaryCache.get(r.id) || {}), ...got });
          }
        }
        return Object.fromEntries(ids.map((id) => [id, summaryCache.get(id) || {}]));
      },
      dropSummaries: (ids) => ids.forEach((id) => summaryCache.delete(id)),
      series: async (rows, key, buckets) => {
        if (!rows.length) return [];
        const body = await api("api/series", { runs: rows.map(runRef).join(","), key, buckets: buckets || 500 });
        return body.series.map((c) => ({ ...c, value: c.value.map(num) }));
      },
      csvHref: (rows, key) => "api/csv?" + new URLSearchParams({ runs: rows.map(runRef).join(","), key, token: TOKEN }),
      run: async (id) => api("api/run", { id }),
      preview: async (id, path) => api("api/preview", { id, path }),
    };
  }

  const REPORT = LIVE ? null : JSON.parse(byId("tracklite-data").textContent);
  const source = LIVE ? liveSource() : reportSource(REPORT);

  // ------------------------------------------------------------------ app state

  let experiments = [];
  let list = null;
  let summaries = {};
  let errorBox = null;

  function expName(id) { const e = experiments.find((x) => x.id === id); return e ? e.name : id; }

  function showError(err) {
    if (errorBox) errorBox.textContent = String(err && err.message ? err.message : err);
  }

  function splitCol(col) {
    const first = col.indexOf(":");
    if (first < 0) return [col, null, null];
    const kind = col.slice(0, first);
    if (kind === "m") {
      const last = col.lastIndexOf(":");
      return [kind, col.slice(first + 1, last), col.slice(last + 1)];
    }
    return [kind, col.slice(first + 1), null];
  }

  function colLabel(col) {
    const [kind, key, part] = splitCol(col);
    const base = { name: "name", status: "status", start: "start", end: "end", dur: "duration", exp: "experiment" };
    if (base[kind]) return base[kind];
    if (kind === "m") return part === "last" ? key : `${key} (${part === "best" ? "best step" : part})`;
    return (kind === "p" ? "params." : "tags.") + key;
  }

  function colWidth(col) {
    const kind = splitCol(col)[0];
    return { sel: 28, pin: 28, name: 220, status: 80, start: 150, end: 150, dur: 80, exp: 140 }[kind] || 120;
  }

  function defaultCols(keys) {
    // Command-line provenance params are long and alike: chosen on demand, not by default.
    const params = keys.params.filter((k) => k !== "cmd-sys.argv" && !k.startsWith("_QLIB_"));
    return [...keys.metrics.slice(0, 6).map((k) => `m:${k}:last`), ...params.slice(0, 4).map((k) => `p:${k}`)];
  }

  function tableCols() {
    const cols = ["sel", "pin", "name"];
    if (state.exps.length !== 1) cols.push("exp");
    cols.push("status", "start", "dur");
    return cols.concat(state.cols || []);
  }

  function cellValue(row, col) {
    const [kind, key, part] = splitCol(col);
    if (kind === "start") return fmtTime(row.start);
    if (kind === "dur") return fmtDuration(row);
    if (kind === "m" && part !== "last") {
      const s = summaries[row.id] && summaries[row.id][key];
      if (!s) return "";
      return fmt(s[part === "best" ? "best_step" : part]);
    }
    const v = sortValue(row, col, summaries);
    return typeof v === "number" ? fmt(v) : (v == null ? "" : String(v));
  }

  // ------------------------------------------------------------------ layout

  function renderTabs() {
    const tabs = clear(byId("tabs"));
    const views = [["runs", "Runs"], ["charts", "Charts"], ["compare", "Compare"]];
    if (state.run) views.push(["run", "Run"]);
    for (const [id, label] of views) {
      tabs.append(h("button", { class: state.view === id ? "on" : "", "data-view": id,
        onclick: () => go(id) }, label));
    }
    byId("where").textContent = LIVE ? "live" : `report, ${CONFIG.version ? "tracklite " + CONFIG.version : ""}`;
  }

  function renderExperiments() {
    const box = clear(byId("experiments"));
    box.append(h("h4", { text: "Experiments" }));
    for (const e of experiments) {
      const on = state.exps.includes(e.id);
      box.append(h("label", { "data-exp": e.id },
        h("input", { type: "checkbox", checked: on, onchange: (ev) => {
          state.exps = ev.target.checked ? [...state.exps, e.id] : state.exps.filter((x) => x !== e.id);
          reload();
        } }),
        h("span", { class: "link", text: e.name, title: e.name, onclick: (ev) => { ev.preventDefault(); state.exps = [e.id]; reload(); } }),
        h("span", { class: "count", text: String(e.runs) })));
    }
  }

  function go(view) { state.view = view; saveHash(); render(); }

  function listQuery() {
    return { exps: state.exps, filter: state.filter, quick: state.quick, sort: state.sort, metrics: shownMetrics() };
  }

  // The metric keys of the table's columns and of its sort: those its rows must carry.
  function shownMetrics() {
    const cols = [...(state.cols || []), state.sort[0]].filter((c) => c && c.startsWith("m:"));
    return [...new Set(cols.map((c) => splitCol(c)[1]))];
  }

  // Whether the rows of `list` carry every metric key the table shows (null: every key).
  function carriesShown() {
    return !list || list.metrics === null || shownMetrics().every((k) => list.metrics.includes(k));
  }

  async function reload(fresh) {
    saveHash();
    try {
      list = await source.list(listQuery(), fresh);
      list.sort = state.sort;
      if (state.cols === null) {
        state.cols = defaultCols(list.keys);
        if (!carriesShown()) list = await source.list(listQuery(), false);
        list.sort = state.sort;
      }
    } catch (err) {
      // A refused order (the server's bound on sorting by points) keeps the rows shown: their
      // sort comes back with them, so the headers say what the table shows.
      if (list && list.sort) { state.sort = list.sort; saveHash(); }
      list = list || localList([], { metrics: [], params: [], tags: [] });
      render();
      showError(err);
      return;
    }
    renderExperiments();
    render();
  }

  function render() {
    renderTabs();
    // A view of its own per render: an earlier render that resumes after an await (a slow
    // answer) then draws into its own detached view, never beside this one.
    const main = h("div", { class: "view" });
    clear(byId("main")).append(main);
    errorBox = h("span", { class: "error", id: "error" });
    if (state.view === "charts") return renderCharts(main);
    if (state.view === "compare") return renderCompare(main);
    if (state.view === "run" && state.run) return renderRun(main);
    return renderRuns(main);
  }

  // ------------------------------------------------------------------ runs table

  let drawRows = null;

  function renderRuns(main) {
    const bar = h("div", { class: "toolbar" });
    if (LIVE) {
      const box = h("input", { type: "search", id: "filter", placeholder: "metrics.loss < 0.1 and params.lr = '0.01'", value: state.filter,
        onkeydown: (ev) => { if (ev.key === "Enter") { state.filter = box.value; reload(); } } });
      bar.append(box, h("button", { onclick: () => { state.filter = box.value; reload(); } }, "Filter"));
    } else {
      if (source.filterNote) bar.append(h("span", { class: "note", text: `report filtered with: ${source.filterNote}` }));
      bar.append(h("button", { onclick: () => { state.quick = {}; reload(); } }, "Clear quick filters"));
    }
    bar.append(h("span", { id: "count", text: `${list ? list.total : 0} runs` }),
      h("span", { text: `${state.sel.length} selected` }),
      h("button", { onclick: () => go("charts") }, "Charts"),
      h("button", { onclick: () => go("compare") }, "Compare"),
      h("button", { onclick: () => { state.sel = []; saveHash(); render(); } }, "Clear selection"),
      h("button", { id: "columns-button", onclick: () => { panel.hidden = !panel.hidden; } }, "Columns"),
      errorBox);
    const panel = columnsPanel();
    panel.hidden = true;
    main.append(bar, panel);
    if (!list) return;

    const cols = tableCols();
    const width = cols.reduce((s, c) => s + colWidth(c), 0);
    const head = h("div", { class: "trow" });
    for (const c of cols) {
      const sortable = !["sel", "pin"].includes(c) && list.sortable(c);
      const arrow = state.sort[0] === c ? (state.sort[1] === "asc" ? " ▲" : " ▼") : "";
      head.append(h("div", {
        class: "cell hcell" + (sortable ? "" : " nosort"), "data-col": c,
        style: `width:${colWidth(c)}px`, title: sortable ? "sort" : (c === "sel" || c === "pin" ? "" : "not sortable here"),
        onclick: sortable ? () => {
          state.sort = [c, state.sort[0] === c && state.sort[1] === "asc" ? "desc" : "asc"];
          reload();
        } : null,
      }, c === "sel" ? "✓" : (c === "pin" ? "★" : colLabel(c)) + arrow));
    }
    const thead = h("div", { class: "thead", style: `width:${width}px` }, head);
    if (!LIVE) {
      const quick = h("div", { class: "trow quick" });
      for (const c of cols) {
        quick.append(h("div", { class: "cell", style: `width:${colWidth(c)}px` },
          ["sel", "pin"].includes(c) ? null : h("input", {
            "data-col": c, value: state.quick[c] || "", placeholder: "filter",
            onchange: (ev) => { state.quick[c] = ev.target.value; reload(); },
          })));
      }
      thead.append(quick);
    }
    const rowsBox = h("div", { class: "rows", id: "runs-rows", style: `height:${list.total * ROW_H}px;width:${width}px` });
    const scroller = h("div", { class: "scroller", id: "runs-table" }, thead, rowsBox);
    main.append(scroller);

    let pending = false;
    drawRows = () => {
      pending = false;
      const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - 5);
      const last = Math.min(list.total, first + Math.ceil(scroller.clientHeight / ROW_H) + 10);
      clear(rowsBox);
      const shown = [];
      for (let i = first; i < last; i++) {
        const row = list.rowAt(i);
        if (row) shown.push(row);
        rowsBox.append(row ? rowNode(row, cols, i) : h("div", { class: "trow", style: `top:${i * ROW_H}px` }, "…"));
      }
      onScreen = shown;
      fillSummaries(shown, cols);
    };
    list.onload = () => drawRows && drawRows();
    scroller.addEventListener("scroll", () => { if (!pending) { pending = true; requestAnimationFrame(drawRows); } });
    drawRows();
    // Live: new rows in place, so the filter being typed and the scroll position stay.
    refreshRows = async () => {
      const fresh = await source.list(listQuery(), true);
      if (!rowsBox.isConnected) return;
      list = fresh;
      list.sort = state.sort;
      list.onload = () => drawRows && drawRows();
      rowsBox.style.height = `${list.total * ROW_H}px`;
      const count = byId("count");
      if (count) count.textContent = `${list.total} runs`;
      drawRows();
    };
  }

  let onScreen = [];
  let refreshRows = null;

  function fillSummaries(rows, cols) {
    const keys = [...new Set(cols.filter((c) => c.startsWith("m:") && !c.endsWith(":last")).map((c) => splitCol(c)[1]))];
    if (!LIVE || !keys.length) return;
    const missing = rows.filter((r) => !(r.id in summaries) || keys.some((k) => k in r.m && !(k in summaries[r.id])));
    if (!missing.length) return;
    source.summaries(missing.map((r) => r.id), missing, keys).then((got) => {
      Object.assign(summaries, got);
      if (drawRows) drawRows();
    }).catch(showError);
  }

  function rowNode(row, cols, i) {
    const node = h("div", { class: "trow" + (state.base === row.id ? " baseline" : ""), "data-id": row.id, style: `top:${i * ROW_H}px` });
    for (const c of cols) {
      const w = `width:${colWidth(c)}px`;
      if (c === "sel") {
        node.append(h("div", { class: "cell", style: w }, h("input", {
          type: "checkbox", class: "select", checked: state.sel.includes(row.id),
          onchange: (ev) => {
            state.sel = ev.target.checked ? [...state.sel, row.id] : state.sel.filter((x) => x !== row.id);
            saveHash(); render();
          },
        })));
      } else if (c === "pin") {
        node.append(h("div", { class: "cell", style: w }, h("button", {
          class: "link pin", title: "pin as baseline",
          onclick: () => { state.base = state.base === row.id ? null : row.id; saveHash(); if (drawRows) drawRows(); },
        }, state.base === row.id ? "★" : "☆")));
      } else if (c === "name") {
        node.append(h("div", { class: "cell", style: w, title: row.name }, h("button", {
          class: "link run-link", text: row.name || row.id.slice(0, 12), onclick: () => openRun(row.id),
        })));
      } else if (c === "status") {
        node.append(h("div", { class: "cell status status-" + row.status, style: w, text: row.status }));
      } else {
        const text = cellValue(row, c);
        const kind = splitCol(c)[0];
        node.append(h("div", { class: "cell" + (kind === "m" ? " num" : ""), style: w, title: text, "data-col": c, text }));
      }
    }
    return node;
  }

  const PANEL_KEYS = 200;  // metric keys a list on the page shows at once
  const panelFind = { text: "" };  // the text of the columns panel's find box, kept across renders
  const runFind = { text: "" };  // and of the run page's
  const compareFind = { text: "" };  // and of the comparison's

  // A list of metric keys, which may be 100,000 long: `box` gets draw(key) of PANEL_KEYS of
  // them, those whose name holds the text of a find box (`find`, made past PANEL_KEYS keys);
  // `more` says when there are others.
  // With `load`, the keys found are drawn once load(keys) has fetched what draw needs of them.
  function findable(keys, box, kept, name, draw, load) {
    const more = h("p", { class: "note", id: `${name}-more`, text: `more metric keys than these ${PANEL_KEYS}: type part of a name to find it` });
    let turn = 0;
    const fill = () => {
      const mine = ++turn;
      const wanted = kept.text.toLowerCase();
      const found = [];
      for (const k of keys) {
        if (wanted && !k.toLowerCase().includes(wanted)) continue;
        found.push(k);
        if (found.length > PANEL_KEYS) break;
      }
      const shown = found.slice(0, PANEL_KEYS);
      const put = () => {
        if (mine !== turn) return;  // typed on while these loaded: the newer find draws
        clear(box);
        for (const k of shown) box.append(draw(k));
        more.hidden = found.length <= PANEL_KEYS;
      };
      if (load) load(shown).then(put, showError); else put();
    };
    const find = keys.length <= PANEL_KEYS ? null : h("input", { type: "search", id: `${name}-find`, value: kept.text,
      placeholder: `find among ${keys.length} metric keys`, oninput: (ev) => { kept.text = ev.target.value; fill(); } });
    fill();
    return { find, more };
  }

  // Past PANEL_KEYS metric keys (a run may have 100,000), a view made of one part per key
  // shows the keys of the table's metric columns instead (none chosen: the first `fallback`).
  function viewKeys(keys, fallback) {
    if (keys.length <= PANEL_KEYS) return keys;
    const present = new Set(keys);
    const shown = chosenKeys().filter((k) => present.has(k));
    return shown.length ? shown : keys.slice(0, fallback);
  }

  // `keys` in the order Compare lists them: past PANEL_KEYS keys, those of the table's metric
  // columns first, then the others by name.
  function chosenFirst(keys) {
    if (keys.length <= PANEL_KEYS) return keys;
    const present = new Set(keys);
    return [...new Set([...chosenKeys().filter((k) => present.has(k)), ...keys])];
  }

  function chosenKeys() { return [...new Set((state.cols || []).filter((c) => c.startsWith("m:")).map((c) => splitCol(c)[1]))]; }

  function tableKeys() { return list ? list.keys.metrics : []; }

  // The rows of runs `ids` carrying the metric keys `want` at least (a report's: every key),
  // `every` metric key of these runs, and carry(keys), which fetches the values of keys not
  // carried yet (found by name) into the same rows.
  async function pickRows(ids, want) {
    const first = await source.rowsById(ids, want);
    const carried = first.metrics === null ? null : new Set(first.metrics);
    const carry = async (keys) => {
      const missing = carried === null ? [] : keys.filter((k) => !carried.has(k));
      if (!missing.length) return;
      const more = await source.rowsById(ids, missing, false);  // the values only: no key lists again
      const at = new Map(more.rows.map((r) => [r.id, r]));
      for (const r of first.rows) if (at.has(r.id)) Object.assign(r.m, at.get(r.id).m);
      for (const k of missing) carried.add(k);
    };
    return { rows: first.rows, every: first.keys.metrics, carry };
  }

  function columnsPanel() {
    const panel = h("div", { class: "columns-panel", id: "columns-panel" });
    if (!list) return panel;
    const toggle = (col) => h("label", {}, h("input", {
      type: "checkbox", "data-col": col, checked: (state.cols || []).includes(col),
      onchange: (ev) => {
        state.cols = ev.target.checked ? [...state.cols, col] : state.cols.filter((x) => x !== col);
        // A metric the rows do not carry yet: ask for the rows again, with it.
        const shown = carriesShown() ? (saveHash(), render(), Promise.resolve()) : reload();
        shown.then(() => { const panel = byId("columns-panel"); if (panel) panel.hidden = false; });
      },
    }), " " + colLabel(col));
    panel.append(h("h4", { text: "Metrics: last, min, max, best step" }));
    const metrics = h("div", { id: "columns-metrics" });
    const { find, more } = findable(list.keys.metrics, metrics, panelFind, "columns",
      (k) => h("div", {}, ...["last", "min", "max", "best"].map((p) => toggle(`m:${k}:${p}`))));
    if (find) panel.append(find);
    panel.append(metrics, more);
    panel.append(h("h4", { text: "Params" }));
    for (const k of list.keys.params) panel.append(toggle(`p:${k}`));
    panel.append(h("h4", { text: "Tags" }));
    for (const k of list.keys.tags) panel.append(toggle(`t:${k}`));
    return panel;
  }

  function openRun(id) { state.run = id; state.view = "run"; saveHash(); render(); }

  // ------------------------------------------------------------------ charts

  function ema(values, weight) {
    const out = new Array(values.length);
    let last = 0, count = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) { out[i] = v; continue; }
      last = last * weight + (1 - weight) * v;
      count++;
      out[i] = last / (1 - Math.pow(weight, count));  // debiased: the first points are not pulled to 0
    }
    return out;
  }

  function xOf(curve, row) {
    if (state.x === "wall") return Array.from(curve.time, (t) => new Date(t).toISOString());
    if (state.x === "rel") {
      const t0 = row && row.start != null ? row.start : (curve.time.length ? curve.time[0] : 0);
      return Array.from(curve.time, (t) => (t - t0) / 1000);
    }
    return Array.from(curve.step);
  }

  async function chartRuns() {
    const keysOfRows = (rows) => [...new Set(rows.flatMap((r) => Object.keys(r.m)))].sort();
    // The selected runs carry the keys charted (as viewKeys picks them among the table's).
    if (state.sel.length) { const { rows, every } = await pickRows(state.sel, viewKeys(tableKeys(), 24)); return { rows, every, note: "" }; }
    const rows = [];
    for (let i = 0; i < Math.min(10, list ? list.total : 0); i++) { const r = list.rowAt(i); if (r) rows.push(r); }
    // Rows carrying only the table's keys: the table's key list says which others there are.
    const every = list && list.metrics !== null ? list.keys.metrics : keysOfRows(rows);
    return { rows, every, note: "No runs selected: the first runs of the table are shown." };
  }

  let liveRefresh = null;

  async function renderCharts(main) {
    await loadPlotly();
    const bar = h("div", { class: "toolbar" },
      h("label", {}, "x axis ", h("select", { id: "x-axis", onchange: (ev) => { state.x = ev.target.value; saveHash(); render(); } },
        h("option", { value: "step", selected: state.x === "step" }, "step"),
        h("option", { value: "wall", selected: state.x === "wall" }, "wall time"),
        h("option", { value: "rel", selected: state.x === "rel" }, "time since start"))),
      h("label", {}, "smoothing ", h("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: state.smooth,
        onchange: (ev) => { state.smooth = Number(ev.target.value); saveHash(); render(); } }), " " + state.smooth),
      errorBox);
    main.append(bar);
    const { rows, every, note } = await chartRuns();
    if (note) main.append(h("p", { class: "note", text: note }));
    const keys = viewKeys(every, 24);
    if (keys.length < every.length) {
      main.append(h("p", { class: "note", id: "charts-some", text: `${keys.length} of ${every.length} metric keys: those of the table's columns (choose them under Columns)` }));
    }
    const grid = h("div", { class: "charts", id: "charts" });
    main.append(grid);
    const drawers = [];
    for (const key of keys) {
      const box = h("div", { class: "chart", "data-key": key });
      const plot = h("div", { class: "plot" });
      const counts = h("span", { class: "points-note note" });
      const logx = h("input", { type: "checkbox", class: "logx", checked: state.logx.includes(key), disabled: state.x === "wall",
        onchange: (ev) => { state.logx = toggled(state.logx, key, ev.target.checked); saveHash(); draw(); } });
      const logy = h("input", { type: "checkbox", class: "logy", checked: state.logy.includes(key),
        onchange: (ev) => { state.logy = toggled(state.logy, key, ev.target.checked); saveHash(); draw(); } });
      const csv = LIVE
        ? h("a", { class: "link csv", href: source.csvHref(rows, key), download: "" }, "raw CSV")
        : h("button", { class: "link csv", onclick: () => source.csv(rows, key) }, "CSV of these points");
      box.append(h("header", {}, h("h3", { text: key }), h("label", {}, logx, " log x"), h("label", {}, logy, " log y"), counts, csv), plot);
      grid.append(box);
      const draw = async () => {
        const width = Math.max(200, plot.clientWidth || 600);
        const curves = await source.series(rows, key, width);
        const traces = [];
        let shown = 0, total = 0;
        curves.forEach((curve, i) => {
          const row = rows[i];
          const color = COLORS[i % COLORS.length];
          const x = xOf(curve, row);
          const y = Array.from(curve.value, num);
          const base = state.base === row.id;
          shown += curve.step.length; total += curve.total;
          const label = plotlyText(row.name || row.id.slice(0, 12)) + (base ? " (baseline)" : "");
          traces.push({ x, y, type: "scatter", mode: curve.step.length === 1 ? "markers" : "lines", name: label,
            legendgroup: row.id, showlegend: !(state.smooth > 0), hoverinfo: "x+y+name",
            opacity: state.smooth > 0 ? 0.25 : 1, line: { color, width: base ? 3 : 1.5, dash: base ? "dash" : "solid" } });
          if (state.smooth > 0) {
            traces.push({ x, y: ema(y, state.smooth), type: "scatter", mode: "lines", name: label, legendgroup: row.id,
              line: { color, width: base ? 3 : 2, dash: base ? "dash" : "solid" } });
          }
        });
        counts.textContent = `${shown} of ${total} points shown`;
        box.dataset.curves = String(curves.filter((c) => c.step.length).length);
        box.dataset.shown = String(shown);
        const layout = {
          margin: { l: 50, r: 10, t: 10, b: 40 }, showlegend: true, legend: { orientation: "h" },
          uirevision: key,
          xaxis: { type: state.x === "wall" ? "date" : (state.logx.includes(key) ? "log" : "linear"),
            title: { text: { step: "step", wall: "time", rel: "seconds since start" }[state.x] } },
          yaxis: { type: state.logy.includes(key) ? "log" : "linear" },
        };
        await Plotly.react(plot, traces, layout, { displaylogo: false, responsive: true });
      };
      drawers.push({ draw, rows });
      draw().catch(showError);
    }
    if (!keys.length) main.append(h("p", { class: "note", text: "These runs have no metrics." }));
    liveRefresh = () => Promise.all(drawers.map((d) => d.draw()));
    liveRefresh.running = () => rows.some((r) => r.status === "RUNNING");
    liveRefresh.view = "charts";
  }

  function toggled(arr, key, on) { return on ? [...new Set([...arr, key])] : arr.filter((k) => k !== key); }

  // ------------------------------------------------------------------ compare

  function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  // The STATS of the finite values of `xs` (null if none); std is the population's. The
  // server's last_value_stats (data.py) computes the same for a live table.
  function stats(xs) {
    const vals = xs.filter((v) => Number.isFinite(v));
    if (!vals.length) return null;
    let sum = 0, min = Infinity, max = -Infinity;
    for (const v of vals) { sum += v; if (v < min) min = v; if (v > max) max = v; }  // not Math.min(...vals): 100,000 arguments overflow the stack
    const mean = sum / vals.length;
    // Equal values have no spread, whatever rounding their mean leaves (the server agrees).
    const std = min === max ? 0 : Math.sqrt(vals.reduce((a, b) => a + (b - mean) * (b - mean), 0) / vals.length);
    return { n: vals.length, mean, median: median(vals), min, max, std };
  }

  async function renderCompare(main) {
    const ids = state.base && !state.sel.includes(state.base) ? [...state.sel, state.base] : state.sel;
    // The rows carry the keys listed first; carry() fetches those found by name.
    const { rows, every, carry } = await pickRows(ids, chosenFirst(tableKeys()).slice(0, PANEL_KEYS));
    rows.sort((a, b) => (b.id === state.base) - (a.id === state.base));
    main.append(h("div", { class: "toolbar" }, h("span", { text: `${rows.length} runs compared` }), errorBox));
    if (!rows.length) {
      main.append(h("p", { class: "note", text: "Select runs in the runs table (and pin a baseline) to compare them." }));
    } else {
      const table = h("table", { class: "grid", id: "compare-table" });
      table.append(h("tr", {}, h("th", { text: "" }), ...rows.map((r) => h("th", {},
        h("button", { class: "link", text: (r.name || r.id.slice(0, 12)) + (r.id === state.base ? " ★" : ""), onclick: () => openRun(r.id) }),
        h("div", { class: "note", text: expName(r.exp) })))));
      const section = (title) => table.append(h("tr", {}, h("th", { colspan: rows.length + 1, text: title })));
      section("params");
      for (const key of [...new Set(rows.flatMap((r) => Object.keys(r.p)))].sort()) {
        const values = rows.map((r) => r.p[key]);
        const differs = new Set(values.map((v) => v === undefined ? "\u0000" : v)).size > 1;
        table.append(h("tr", { class: differs ? "diff" : "", "data-key": key },
          h("td", { text: (differs ? "≠ " : "") + key }), ...values.map((v) => h("td", { text: v === undefined ? "—" : v }))));
      }
      section("metrics (last value; Δ against the baseline)");
      const base = rows.find((r) => r.id === state.base);
      // PANEL_KEYS rows of metrics at most (runs may have 100,000 keys), the others found by name.
      const metricRows = h("tbody", { id: "compare-metrics" });
      table.append(metricRows);
      const { find, more } = findable(chosenFirst(every), metricRows, compareFind, "compare",
        (key) => h("tr", { "data-key": key }, h("td", { text: key }), ...rows.map((r) => {
          const v = num(r.m[key]);
          const cell = h("td", { class: "num", text: v === undefined ? "—" : fmt(v) });
          if (base && r !== base && v !== undefined && num(base.m[key]) !== undefined) {
            const d = v - num(base.m[key]);
            cell.append(h("span", { class: "delta", text: (d >= 0 ? "+" : "") + fmt(d) }));
          }
          return cell;
        })), carry);
      if (find) main.append(find);
      main.append(table, more);
    }
    await renderGroups(main);
  }

  async function renderGroups(main) {
    const keys = list ? list.keys : { params: [], metrics: [] };
    const controls = h("div", { class: "toolbar" },
      h("label", {}, "group all runs of the table by ", h("select", { id: "group-by", onchange: (ev) => { state.group = ev.target.value; saveHash(); render(); } },
        h("option", { value: "", text: "(no grouping)" }), ...keys.params.map((k) => h("option", { value: k, selected: state.group === k, text: "params." + k })))),
      h("select", { id: "group-agg", onchange: (ev) => { state.agg = ev.target.value; saveHash(); render(); } },
        h("option", { value: "mean", selected: state.agg === "mean" }, "mean"), h("option", { value: "median", selected: state.agg === "median" }, "median")),
      h("select", { id: "group-band", onchange: (ev) => { state.band = ev.target.value; saveHash(); render(); } },
        h("option", { value: "minmax", selected: state.band === "minmax" }, "min-max band"), h("option", { value: "std", selected: state.band === "std" }, "±1 std band")));
    main.append(h("h2", { text: "Groups" }), controls);
    if (!state.group || !list) return;
    const shown = viewKeys(keys.metrics, PANEL_KEYS);
    const charted = viewKeys(keys.metrics, 24).slice(0, 24);
    const { total, groups } = await list.groups(state.group, shown, charted);
    const table = h("table", { class: "grid", id: "group-table" });
    table.append(h("tr", {}, h("th", { text: "params." + state.group }), h("th", { text: "runs" }), ...shown.map((k) => h("th", { text: k }))));
    for (const g of groups) {
      table.append(h("tr", {}, h("td", { text: g.value }), h("td", { class: "num", text: String(g.runs) }), ...shown.map((k) => {
        const s = g.stats[k];
        if (!s) return h("td", { text: "—" });
        const band = state.band === "std" ? `± ${fmt(s.std)}` : `[${fmt(s.min)}, ${fmt(s.max)}]`;
        return h("td", { class: "num", text: `${fmt(s[state.agg])} ${band}` });
      })));
    }
    main.append(h("p", { class: "note", text: `over all ${total} runs of the table; last values` }), table);
    await loadPlotly();
    const grid = h("div", { class: "charts", id: "group-charts" });
    main.append(grid);
    for (const key of charted) {
      const plot = h("div", { class: "plot" });
      const note = h("span", { class: "sample-note note" });
      const box = h("div", { class: "chart", "data-key": key }, h("header", {}, h("h3", { text: key }), note), plot);
      grid.append(box);
      groupChart(box, plot, note, key, groups).catch(showError);
    }
  }

  // Per group, the curves of its first GROUP_SAMPLE runs having `key`: the server reads
  // groups x GROUP_SAMPLE runs per key, whatever the size of the table.
  async function groupChart(box, plot, note, key, groups) {
    const BINS = 100;
    const sampled = groups.flatMap((g) => g.curves[key].sample);
    const of = groups.reduce((a, g) => a + g.curves[key].of, 0);
    box.dataset.sampled = String(sampled.length);
    if (sampled.length < of) note.textContent = `curves from ${sampled.length.toLocaleString("en-US")} of ${of.toLocaleString("en-US")} runs: the first ${GROUP_SAMPLE} per group`;
    const curves = await source.series(sampled, key, BINS);
    const byId = new Map(curves.map((c) => [c.id, c]));
    let lo = Infinity, hi = -Infinity;
    for (const c of curves) if (c.step.length) { lo = Math.min(lo, c.step[0], ...[c.step[c.step.length - 1]]); hi = Math.max(hi, c.step[c.step.length - 1]); }
    if (!Number.isFinite(lo)) return;
    const span = hi > lo ? hi - lo : 1;
    const traces = [];
    let i = 0;
    for (const g of groups) {
      // Per run, the mean of its points in each of BINS step bins; then the group's statistic.
      const perBin = Array.from({ length: BINS }, () => []);
      for (const r of g.curves[key].sample) {
        const c = byId.get(r.id);
        if (!c) continue;
        const sums = new Float64Array(BINS), ns = new Uint32Array(BINS);
        for (let j = 0; j < c.step.length; j++) {
          const v = num(c.value[j]);
          if (!Number.isFinite(v)) continue;
          const b = Math.min(BINS - 1, Math.floor((c.step[j] - lo) / span * BINS));
          sums[b] += v; ns[b]++;
        }
        for (let b = 0; b < BINS; b++) if (ns[b]) perBin[b].push(sums[b] / ns[b]);
      }
      const xs = [], mid = [], low = [], high = [];
      perBin.forEach((vals, b) => {
        const s = stats(vals);
        if (!s) return;
        xs.push(lo + (b + 0.5) * span / BINS);
        mid.push(s[state.agg]);
        low.push(state.band === "std" ? s.mean - s.std : s.min);
        high.push(state.band === "std" ? s.mean + s.std : s.max);
      });
      const color = COLORS[i++ % COLORS.length];
      traces.push({ x: xs.concat([...xs].reverse()), y: high.concat([...low].reverse()), type: "scatter", fill: "toself",
        line: { width: 0 }, fillcolor: color + "33", hoverinfo: "skip", showlegend: false, legendgroup: g.value });
      traces.push({ x: xs, y: mid, type: "scatter", mode: "lines", name: `${plotlyText(g.value)} (${g.runs})`, line: { color }, legendgroup: g.value });
    }
    await Plotly.react(plot, traces, { margin: { l: 50, r: 10, t: 10, b: 40 }, legend: { orientation: "h" }, xaxis: { title: { text: "step" } } },
      { displaylogo: false, responsive: true });
  }

  // ------------------------------------------------------------------ one run

  function kvTable(obj, id) {
    const table = h("table", { class: "grid", id });
    const keys = Object.keys(obj || {}).sort();
    for (const k of keys) table.append(h("tr", {}, h("th", { text: k }), h("td", { text: obj[k] == null ? "" : String(obj[k]) })));
    if (!keys.length) table.append(h("tr", {}, h("td", { class: "note", text: "none" })));
    return table;
  }

  async function renderRun(main) {
    const id = state.run;
    main.append(errorBox);
    let run;
    try { run = await source.run(id); } catch (err) { showError(err); return; }
    const page = h("div", { id: "run-page" });
    main.append(page);
    page.append(h("h2", { text: `${run.info.name || id}` }),
      h("section", {}, h("h2", { text: "Info" }), kvTable(run.info, "run-info")),
      h("section", {}, h("h2", { text: "Params" }), kvTable(run.params, "run-params")),
      h("section", {}, h("h2", { text: "Tags" }), kvTable(run.tags, "run-tags")));
    const summaryOf = run.metrics || {};
    const body = h("tbody", {});
    const metrics = h("table", { class: "grid", id: "run-metrics" },
      h("thead", {}, h("tr", {}, ...["metric", "last", "min", "max", "best step", "points"].map((t) => h("th", { text: t })))), body);
    const { find, more } = findable(Object.keys(summaryOf).sort(), body, runFind, "run-metrics",
      (k) => h("tr", {}, h("td", { text: k }), ...["last", "min", "max", "best_step", "points"].map((p) => h("td", { class: "num", text: fmt(summaryOf[k][p]) }))));
    page.append(h("section", {}, h("h2", { text: "Metrics" }), find, metrics, more));
    const arts = h("table", { class: "grid", id: "run-artifacts" }, h("tr", {}, ...["artifact", "size", "kind", ""].map((t) => h("th", { text: t }))));
    const previewBox = h("div", { id: "preview" });
    for (const a of run.artifacts || []) {
      const can = !["pickle", "file"].includes(a.kind);
      arts.append(h("tr", { "data-path": a.path }, h("td", { text: a.path }), h("td", { class: "num", text: fmtSize(a.size) }),
        h("td", { text: a.kind === "pickle" ? "pickle (not opened)" : a.kind }),
        h("td", {}, can ? h("button", { class: "link preview-button", onclick: () => showPreview(id, a.path, previewBox) }, "preview") : null)));
    }
    page.append(h("section", {}, h("h2", { text: "Artifacts" }), arts, previewBox));
    if (run.qlib) await renderQlib(page, run.qlib);
    let redrawn = Date.now();
    liveRefresh = async () => {
      // The whole run page is redrawn: every two seconds is enough for a person reading it.
      if (state.view === "run" && Date.now() - redrawn > 2000) { redrawn = Date.now(); render(); }
    };
    liveRefresh.running = () => run.info.status === "RUNNING";
    liveRefresh.view = "run";
  }

  async function showPreview(id, path, box) {
    clear(box);
    let p;
    try { p = await source.preview(id, path); } catch (err) { box.append(h("p", { class: "error", text: String(err.message || err) })); return; }
    box.append(h("h3", { text: path }));
    if (p.kind === "missing") box.append(h("p", { class: "note", text: "This report does not hold a preview of this file (too large for the report's preview budget)." }));
    else if (p.text !== undefined) box.append(h("pre", { class: "preview", text: p.text + (p.truncated ? "\n…" : "") }));
    else if (p.rows) {
      const t = h("table", { class: "grid preview-table" }, h("tr", {}, ...p.columns.map((c) => h("th", { text: c }))));
      for (const r of p.rows) t.append(h("tr", {}, ...r.map((c) => h("td", { text: c }))));
      box.append(t);
      if (p.total_rows !== undefined) box.append(h("p", { class: "note", text: `first ${p.rows.length} of ${p.total_rows} rows` }));
    } else if (p.data && /^image\/(png|jpeg|gif|webp)$/.test(p.mime)) {
      box.append(h("img", { class: "preview", alt: path, src: `data:${p.mime};base64,${p.data}` }));
    } else box.append(h("p", { class: "note", text: "No preview for this file." }));
  }

  async function renderQlib(page, q) {
    await loadPlotly();
    const section = h("section", { id: "qlib" }, h("h2", { text: "qlib analysis" }));
    page.append(section);
    const plot = async (traces, title) => {
      const div = h("div", { class: "plot qlib-plot", "data-title": title });
      section.append(h("h3", { text: title }), div);
      await Plotly.react(div, traces, { margin: { l: 50, r: 10, t: 10, b: 40 }, legend: { orientation: "h" } }, { displaylogo: false, responsive: true });
    };
    if (q.ic) {
      const tr = [];
      const x = q.ic.x.map(plotlyText);
      if (q.ic.ic) tr.push({ x, y: q.ic.ic.map(num), type: "scatter", mode: "lines", name: "IC" });
      if (q.ic.ric) tr.push({ x, y: q.ic.ric.map(num), type: "scatter", mode: "lines", name: "Rank IC" });
      await plot(tr, "IC and Rank IC");
    }
    for (const r of q.returns || []) {
      const x = r.x.map(plotlyText);
      await plot([{ x, y: r.without_cost.map(num), type: "scatter", mode: "lines", name: "without cost" },
        { x, y: r.with_cost.map(num), type: "scatter", mode: "lines", name: "with cost" }], `Cumulative excess return (${r.freq})`);
    }
    for (const d of q.drawdowns || []) {
      const t = h("table", { class: "grid", id: "qlib-drawdowns" }, h("tr", {}, ...["curve", "max drawdown", "peak", "trough", "recovery"].map((x) => h("th", { text: x }))));
      for (const r of d.rows) t.append(h("tr", {}, h("td", { text: r.curve }), h("td", { class: "num", text: fmt(r.max_drawdown) }), h("td", { text: r.peak }), h("td", { text: r.trough }), h("td", { text: r.recovery || "not recovered" })));
      section.append(h("h3", { text: `Drawdowns (${d.freq})` }), t);
    }
    for (const r of q.risk || []) {
      const t = h("table", { class: "grid" }, h("tr", {}, ...r.columns.map((c) => h("th", { text: c }))));
      for (const row of r.rows) t.append(h("tr", {}, ...row.map((c) => h("td", { text: c }))));
      section.append(h("h3", { text: `Risk analysis (${r.freq})` }), t);
    }
  }

  // ------------------------------------------------------------------ live updates

  function visibleRunning() { return onScreen.some((r) => r.status === "RUNNING"); }

  let busy = false;
  async function poll() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      if ((state.view === "charts" || state.view === "run") && liveRefresh && liveRefresh.view === state.view && liveRefresh.running()) {
        await liveRefresh();
      } else if (state.view === "runs" && visibleRunning() && refreshRows) {
        const running = onScreen.filter((r) => r.status === "RUNNING").map((r) => r.id);
        if (source.dropSummaries) source.dropSummaries(running);
        for (const id of running) delete summaries[id];
        await refreshRows();
      }
    } catch (err) { showError(err); } finally { busy = false; }
  }

  // ------------------------------------------------------------------ start

  async function start() {
    loadHash();
    try { experiments = await source.experiments(); } catch (err) {
      clear(byId("main")).append(h("p", { class: "error", text: String(err.message || err) }));
      return;
    }
    state.exps = state.exps.filter((id) => experiments.some((e) => e.id === id));
    if (!LIVE) summaries = REPORT.summaries;
    await reload();
    document.body.dataset.ready = "1";
    // A link pasted into this tab changes only the hash: show the view it describes.
    window.addEventListener("hashchange", () => { loadHash(); reload(); });
    if (LIVE) setInterval(poll, 500);
  }

  start();
})();
