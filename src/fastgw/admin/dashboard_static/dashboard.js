// fastgw dashboard: polls /api/overview and /api/traffic, draws three canvas charts.
// Rates and percentiles come from the difference of two counter snapshots (like Prometheus'
// rate() and histogram_quantile()). window.fastgwDashboard exposes the state (for tests).
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const INTERVAL = Math.max(200, Number(params.get("interval")) || 1000);   // ms
  const POINTS = 120;                                   // samples kept per chart
  // latency histogram upper bounds (ms), as fastgw._core.traffic BUCKET_BOUNDS_MS
  const BOUNDS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000];
  const state = { token: "", series: { rps: [], p50: [], p95: [], p99: [],
                  s2: [], s3: [], s4: [], s5: [] }, last: null, overview: null,
                  polls: 0, error: null };
  window.fastgwDashboard = state;
  const hash = new URLSearchParams(location.hash.slice(1));
  state.token = hash.get("token") || sessionStorage.getItem("fastgw-token") || "";

  async function api(path) {
    const headers = state.token ? { "Kong-Admin-Token": state.token } : {};
    const r = await fetch(path, { headers, cache: "no-store" });
    if (r.status === 401) { throw Object.assign(new Error("token"), { auth: true }); }
    if (!r.ok) { throw new Error(path + ": " + r.status); }
    return r.json();
  }

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) { e.setAttribute(k, v); }
    for (const k of kids) { e.append(k); }
    return e;
  }
  function fill(id, rows) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) =>
      el("td", {}, c)))));
  }
  const list = (v) => (v || []).join(", ");

  function renderOverview(o) {
    const byId = (xs) => Object.fromEntries(xs.map((x) => [x.id, x]));
    const services = byId(o.services), routes = o.routes;
    fill("upstreams", o.upstreams.map((u) => {
      const cell = el("span");
      for (const t of u.targets || []) {
        const cls = t.health === "UNHEALTHY" ? "target unhealthy"
          : t.health === "HEALTHCHECKS_OFF" ? "target off" : "target";
        cell.append(el("span", { class: cls, "data-target": t.target,
                                 "data-health": t.health, title: t.health }, t.target));
      }
      return [u.name, u.algorithm || "", cell];
    }));
    fill("services", o.services.map((s) => [s.name || s.id, s.host + ":" + s.port,
      String(routes.filter((r) => r.service && r.service.id === s.id).length)]));
    fill("routes", routes.map((r) => [r.name || r.id, list(r.paths), list(r.hosts),
      list(r.methods)]));
    fill("consumers", o.consumers.map((c) => [c.username || "", c.custom_id || ""]));
    fill("plugins", o.plugins.map((p) => [p.name,
      p.route ? "route" : p.service ? "service (" + ((services[p.service.id] || {}).name
        || p.service.id) + ")" : p.consumer ? "consumer" : "global", String(p.enabled)]));
    if (o.node) { document.getElementById("node").textContent =
      "v" + o.node.version + " on " + o.node.hostname; }
  }

  function quantile(q, hist, total) {
    if (total <= 0) { return 0; }
    let seen = 0;
    for (let i = 0; i < hist.length; i++) {
      const prev = seen;
      seen += hist[i];
      if (seen >= q * total) {
        const lo = i === 0 ? 0 : BOUNDS[i - 1];
        const hi = i < BOUNDS.length ? BOUNDS[i] : BOUNDS[BOUNDS.length - 1] * 2;
        return lo + (hi - lo) * ((q * total - prev) / Math.max(1, hist[i]));
      }
    }
    return BOUNDS[BOUNDS.length - 1];
  }

  function push(name, v) {
    const s = state.series[name];
    s.push(v);
    if (s.length > POINTS) { s.shift(); }
  }

  function onTraffic(t) {
    const last = state.last;
    state.last = t;
    if (!last) { return; }
    const dt = Math.max(0.001, t.time - last.time);
    push("rps", (t.total - last.total) / dt);
    const hist = t.hist.map((v, i) => v - (last.hist[i] || 0));
    const n = hist.reduce((a, b) => a + b, 0);
    push("p50", quantile(0.5, hist, n));
    push("p95", quantile(0.95, hist, n));
    push("p99", quantile(0.99, hist, n));
    const cls = { s2: 0, s3: 0, s4: 0, s5: 0 };
    for (const [code, v] of Object.entries(t.by_status)) {
      const k = "s" + String(code)[0];
      if (k in cls) { cls[k] += v - (last.by_status[code] || 0); }
    }
    for (const k of Object.keys(cls)) { push(k, cls[k] / dt); }
    document.getElementById("rps-now").textContent =
      state.series.rps[state.series.rps.length - 1].toFixed(1);
    draw("chart-rps", [["rps", "#111827"]]);
    draw("chart-latency", [["p50", css("--p50")], ["p95", css("--p95")], ["p99", css("--p99")]]);
    draw("chart-status", [["s2", css("--s2")], ["s3", css("--s3")], ["s4", css("--s4")],
      ["s5", css("--s5")]]);
  }
  const css = (v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim();

  function draw(id, lines) {
    const c = document.getElementById(id), g = c.getContext("2d");
    const w = c.width, h = c.height, pad = 28;
    g.clearRect(0, 0, w, h);
    let max = 1;
    for (const [name] of lines) { for (const v of state.series[name]) { max = Math.max(max, v); } }
    g.strokeStyle = "#e5e7eb"; g.fillStyle = "#6b7280"; g.font = "10px sans-serif";
    for (let i = 0; i <= 4; i++) {
      const y = pad / 2 + (h - pad) * i / 4;
      g.beginPath(); g.moveTo(pad, y); g.lineTo(w, y); g.stroke();
      g.fillText((max * (4 - i) / 4).toFixed(max < 10 ? 1 : 0), 0, y + 3);
    }
    for (const [name, color] of lines) {
      const s = state.series[name];
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      s.forEach((v, i) => {
        const x = pad + (w - pad) * (i + POINTS - s.length) / (POINTS - 1);
        const y = pad / 2 + (h - pad) * (1 - v / max);
        if (i === 0) { g.moveTo(x, y); } else { g.lineTo(x, y); }
      });
      g.stroke();
    }
  }

  function setState(text, ok) {
    const s = document.getElementById("state");
    s.textContent = text; s.className = "state " + (ok ? "ok" : "bad");
  }

  async function tick() {
    try {
      const [o, t] = await Promise.all([api("/api/overview"), api("/api/traffic")]);
      state.overview = o; state.error = null; state.polls++;
      renderOverview(o); onTraffic(t);
      setState("live", true);
    } catch (e) {
      state.error = String(e);
      if (e.auth) { askToken(); return; }
      setState("unreachable: " + e.message, false);
    }
    setTimeout(tick, INTERVAL);
  }

  function askToken() {
    setState("admin token required", false);
    const f = document.getElementById("login");
    f.hidden = false;
    f.onsubmit = (ev) => {
      ev.preventDefault();
      state.token = document.getElementById("token").value;
      sessionStorage.setItem("fastgw-token", state.token);
      f.hidden = true;
      tick();
    };
  }

  tick();
})();
