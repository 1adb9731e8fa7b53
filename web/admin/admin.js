// Herald admin dashboard: polls /api/stats, /api/nodes, /api/channels and /metrics once a second
// and plots connections by transport, messages per second and delivery latency over the last
// minutes. Connection, subscription and message figures are the totals over every node of the
// cluster (/api/nodes), so they do not depend on which worker or node answers.
const $ = (id) => document.getElementById(id);
// No key here: the browser sends the HttpOnly admin session cookie with these same-origin reads.
const headers = {};
const HISTORY = 180;
const COLORS = ['#818cf8', '#34d399', '#fbbf24', '#f87171', '#38bdf8', '#e879f9'];
const series = { connections: new Map(), published: [], delivered: [], im: [], latency: [] };
let prevIm;
let prevLatency;
/** Per node: its last counters, when they were taken, and the rates between its last two reports. */
const nodeRates = new Map();
window.heraldAdmin = { series };

async function getJson(path) {
  const res = await fetch(path, { headers, cache: 'no-store' });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

/** Sum and count of the delivery latency histogram from the Prometheus text. */
function latencyTotals(text) {
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('herald_delivery_latency_seconds_sum')) sum += Number(line.split(' ').pop());
    else if (line.startsWith('herald_delivery_latency_seconds_count')) count += Number(line.split(' ').pop());
  }
  return { sum, count };
}

/**
 * IM traffic from the Prometheus text: publications on user inboxes (messages, edits, recalls,
 * receipts, typing and presence, one per recipient), `herald_messages_published_total{source="im"}`.
 */
function imTotal(text) {
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('herald_messages_published_total{') && line.includes('source="im"')) n += Number(line.split(' ').pop());
  return n;
}

const push = (arr, v) => {
  arr.push(v);
  if (arr.length > HISTORY) arr.shift();
};
const fmtBytes = (n) => (n > 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GB` : `${(n / (1 << 20)).toFixed(0)} MB`);
const fmtDuration = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ${s % 60}s`;
};
const fmtUptime = (ms) => `up ${fmtDuration(ms)}`;

/**
 * Messages per second over the cluster: each node's rate between its last two reports, summed.
 * Registry figures change only at each node's heartbeat, so a node's rate is measured between
 * its own reports (taken `ageMs` ago), not between two polls.
 */
function clusterRates(nodes, now) {
  const seen = new Set();
  let published = 0;
  let delivered = 0;
  for (const n of nodes) {
    seen.add(n.id);
    const at = now - (n.ageMs || 0);
    const p = nodeRates.get(n.id);
    if (!p) nodeRates.set(n.id, { at, published: n.published || 0, delivered: n.delivered || 0, pub: 0, del: 0 });
    else if (at - p.at >= 500) {
      const dt = (at - p.at) / 1000;
      p.pub = Math.max(0, ((n.published || 0) - p.published) / dt);
      p.del = Math.max(0, ((n.delivered || 0) - p.delivered) / dt);
      Object.assign(p, { at, published: n.published || 0, delivered: n.delivered || 0 });
    }
    const r = nodeRates.get(n.id);
    published += r.pub;
    delivered += r.del;
  }
  for (const id of nodeRates.keys()) if (!seen.has(id)) nodeRates.delete(id);
  return { published, delivered };
}

/** The nodes table: one row per node of the cluster, this node marked. */
function renderNodes(answer) {
  const cell = (v) => Object.assign(document.createElement('td'), { textContent: v === undefined ? '–' : String(v) });
  $('nodes').replaceChildren(
    ...answer.nodes.map((n) => {
      const tr = document.createElement('tr');
      tr.dataset.node = n.id;
      tr.classList.toggle('self', n.self);
      tr.classList.toggle('draining', n.draining);
      const load = n.load || {};
      const status = n.draining ? 'draining' : n.ageMs > 0 ? `live · ${(n.ageMs / 1000).toFixed(1)} s ago` : 'live';
      tr.append(
        cell(n.self ? `${n.id} (this node)` : n.id),
        cell(n.url),
        cell(n.host === undefined ? undefined : `${n.host} · ${n.pid}`),
        cell(n.version),
        cell(n.uptimeMs === undefined ? undefined : fmtDuration(n.uptimeMs)),
        cell(n.connections),
        cell(n.subscriptions),
        cell(load.cpu === undefined ? undefined : `${(load.cpu * 100).toFixed(0)} %`),
        cell(load.eventLoopDelayMs === undefined ? undefined : `${load.eventLoopDelayMs.toFixed(1)} ms`),
        cell(load.loadAverage === undefined ? undefined : load.loadAverage.toFixed(2)),
        cell(load.rss === undefined ? undefined : fmtBytes(load.rss)),
        cell(status),
      );
      return tr;
    }),
  );
  const t = answer.totals;
  const parts = [`${t.nodes} node${t.nodes === 1 ? '' : 's'}`, `${t.connections} connections`, `${t.subscriptions} subscriptions`];
  if (t.draining) parts.push(`${t.draining} draining`);
  if (answer.registry === 'unavailable') parts.push('registry unavailable: this host only');
  if (answer.workers?.unanswered) parts.push(`${answer.workers.unanswered} worker(s) not answering`);
  $('nodes-summary').textContent = parts.join(' · ');
}

async function tick() {
  try {
    const [stats, cluster, metrics, channels] = await Promise.all([
      getJson('/api/stats'),
      getJson('/api/nodes'),
      fetch('/metrics', { headers, cache: 'no-store' }).then((r) => (r.ok ? r.text() : '')),
      getJson(`/api/channels?limit=1000${$('prefix').value ? `&prefix=${encodeURIComponent($('prefix').value)}` : ''}`),
    ]);
    const now = Date.now();
    const totals = cluster.totals;
    $('status').textContent = 'live';
    $('status').className = 'status ok';
    $('node').textContent = totals.nodes === 1 ? stats.node : `${totals.nodes} nodes`;
    $('node').title = `answered by ${stats.node}`;
    $('dev-mode').hidden = !stats.dev;
    $('uptime').textContent = fmtUptime(Math.max(stats.uptimeMs, ...cluster.nodes.map((n) => n.uptimeMs || 0)));
    $('connections').textContent = String(totals.connections);
    $('channels').textContent = String(stats.channels);
    $('subscriptions').textContent = String(totals.subscriptions);
    $('rss').textContent = fmtBytes(totals.rss || stats.memory.rss);
    const by = totals.connectionsByTransport || {};
    $('by-transport').replaceChildren(
      ...Object.entries(by).map(([t, n]) => {
        const li = document.createElement('li');
        li.dataset.transport = t;
        li.innerHTML = `<b></b> `;
        li.firstChild.textContent = t;
        li.append(String(n));
        return li;
      }),
    );
    for (const t of Object.keys(by)) if (!series.connections.has(t)) series.connections.set(t, new Array(series.published.length).fill(0));
    for (const [t, arr] of series.connections) push(arr, by[t] ?? 0);
    const im = imTotal(metrics);
    const rates = clusterRates(cluster.nodes, now);
    const imRate = prevIm ? Math.max(0, (im - prevIm.im) / ((now - prevIm.at) / 1000)) : 0;
    push(series.published, rates.published);
    push(series.delivered, rates.delivered);
    push(series.im, imRate);
    if (prevIm) {
      $('rate-published').textContent = rates.published.toFixed(1);
      $('rate-delivered').textContent = rates.delivered.toFixed(1);
      $('rate-im').textContent = imRate.toFixed(1);
    }
    $('im-total').textContent = String(im);
    prevIm = { at: now, im };
    const lat = latencyTotals(metrics);
    if (prevLatency && lat.count > prevLatency.count) {
      const ms = ((lat.sum - prevLatency.sum) / (lat.count - prevLatency.count)) * 1000;
      push(series.latency, ms);
      $('latency').textContent = `${ms.toFixed(2)} ms`;
    } else push(series.latency, series.latency.at(-1) ?? 0);
    prevLatency = lat;
    renderNodes(cluster);
    renderChannels(channels.channels);
    draw($('chart-connections'), [...series.connections.entries()].map(([name, data]) => ({ name, data })));
    draw($('chart-rate'), [{ name: 'published', data: series.published }, { name: 'delivered', data: series.delivered }, { name: 'IM', data: series.im }]);
    draw($('chart-latency'), [{ name: 'latency ms', data: series.latency }]);
    document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
  } catch (err) {
    $('status').textContent = err.message.includes('401') ? 'API key required' : `error: ${err.message}`;
    $('status').className = 'status bad';
  }
}

function renderChannels(list) {
  const rows = [...list].sort((a, b) => b.subscribers - a.subscribers || b.buffered - a.buffered).slice(0, 20);
  $('top-channels').replaceChildren(
    ...rows.map((c) => {
      const tr = document.createElement('tr');
      for (const v of [c.channel, c.subscribers, c.buffered, c.position]) tr.append(Object.assign(document.createElement('td'), { textContent: String(v) }));
      return tr;
    }),
  );
}

/** A small line chart: one line per series, shared y scale, legend top-left. */
function draw(canvas, lines) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...lines.flatMap((l) => l.data));
  // At least a minute wide, then the whole kept history.
  const span = Math.max(60, ...lines.map((l) => l.data.length));
  g.strokeStyle = '#334155';
  g.fillStyle = '#94a3b8';
  g.font = '11px system-ui';
  for (let i = 0; i <= 4; i++) {
    const y = 26 + ((h - 36) * i) / 4;
    g.beginPath();
    g.moveTo(40, y);
    g.lineTo(w, y);
    g.stroke();
    g.fillText(((max * (4 - i)) / 4).toFixed(max < 10 ? 1 : 0), 2, y + 4);
  }
  lines.forEach((l, i) => {
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 2;
    g.beginPath();
    l.data.forEach((v, j) => {
      const x = 40 + ((w - 40) * j) / (span - 1);
      const y = 26 + (h - 36) * (1 - v / max);
      if (j === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
    g.fillStyle = COLORS[i % COLORS.length];
    g.fillText(`■ ${l.name}`, 48 + i * 90, 12);
  });
}

void tick();
setInterval(() => void tick(), 1000);
