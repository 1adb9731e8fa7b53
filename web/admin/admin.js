// Herald admin dashboard: polls /api/stats, /api/channels and /metrics once a second and plots
// connections by transport, messages per second and delivery latency over the last minutes.
const $ = (id) => document.getElementById(id);
// No key here: the browser sends the HttpOnly admin session cookie with these same-origin reads.
const headers = {};
const HISTORY = 180;
const COLORS = ['#818cf8', '#34d399', '#fbbf24', '#f87171', '#38bdf8', '#e879f9'];
const series = { connections: new Map(), published: [], delivered: [], im: [], latency: [] };
let prev;
let prevLatency;
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
const fmtUptime = (ms) => {
  const s = Math.floor(ms / 1000);
  return `up ${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ${s % 60}s`;
};

async function tick() {
  try {
    const [stats, metrics, channels] = await Promise.all([
      getJson('/api/stats'),
      fetch('/metrics', { headers, cache: 'no-store' }).then((r) => (r.ok ? r.text() : '')),
      getJson(`/api/channels?limit=1000${$('prefix').value ? `&prefix=${encodeURIComponent($('prefix').value)}` : ''}`),
    ]);
    const now = Date.now();
    $('status').textContent = 'live';
    $('status').className = 'status ok';
    $('node').textContent = stats.node;
    $('dev-mode').hidden = !stats.dev;
    $('uptime').textContent = fmtUptime(stats.uptimeMs);
    $('connections').textContent = String(stats.connections);
    $('channels').textContent = String(stats.channels);
    $('subscriptions').textContent = String(stats.subscriptions);
    $('rss').textContent = fmtBytes(stats.memory.rss);
    const by = stats.connectionsByTransport || {};
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
    if (prev) {
      const dt = (now - prev.at) / 1000;
      const pub = Math.max(0, (stats.published - prev.published) / dt);
      const del = Math.max(0, (stats.delivered - prev.delivered) / dt);
      const imRate = Math.max(0, (im - prev.im) / dt);
      push(series.published, pub);
      push(series.delivered, del);
      push(series.im, imRate);
      $('rate-published').textContent = pub.toFixed(1);
      $('rate-delivered').textContent = del.toFixed(1);
      $('rate-im').textContent = imRate.toFixed(1);
    } else {
      push(series.published, 0);
      push(series.delivered, 0);
      push(series.im, 0);
    }
    $('im-total').textContent = String(im);
    prev = { at: now, published: stats.published, delivered: stats.delivered, im };
    const lat = latencyTotals(metrics);
    if (prevLatency && lat.count > prevLatency.count) {
      const ms = ((lat.sum - prevLatency.sum) / (lat.count - prevLatency.count)) * 1000;
      push(series.latency, ms);
      $('latency').textContent = `${ms.toFixed(2)} ms`;
    } else push(series.latency, series.latency.at(-1) ?? 0);
    prevLatency = lat;
    $('nodes').replaceChildren(Object.assign(document.createElement('li'), { textContent: `${stats.node} (this node) · ${stats.connections} connections` }));
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
