/*
 * loadgen — a cheap-per-connection WebSocket load client for Herald's benchmarks.
 *
 * One process, one thread, epoll, non-blocking sockets. It opens N WebSocket
 * connections (hand-written client handshake, masked client frames), spreading
 * them over loopback source addresses 127.0.0.x so the ephemeral port range is no
 * limit, runs a small per-connection setup script (frames sent in lock step with
 * the server's replies, e.g. connect + 2 subscribes), then holds them idle while
 * counting deliveries. A delivery is any text frame that contains the marker
 * (default `"bt":`); the integer after the marker is the publisher's send time in
 * microseconds since the epoch, which gives publish→deliver latency.
 *
 * Control is line based on stdin, answers are JSON lines on stdout:
 *   stats       counters (+ latency percentiles) as one JSON line
 *   hist        same, plus the non-empty latency histogram buckets (for merging)
 *   reset       zero delivery counters and the latency histogram
 *   quit        close everything and exit
 * When every connection is ready (or has failed for good) it prints one
 * {"event":"ready",...} line by itself. It exits on its own after --max-secs, on
 * stdin EOF, and on quit. Every loop is bounded.
 *
 * --mode longpoll: HTTP long-poll subscribers instead of WebSocket (Nchan's long-poll
 * protocol). Each connection sends a keep-alive `GET <path>`; after every response it
 * re-issues the request with `If-Modified-Since: <Last-Modified>` and `If-None-Match: <Etag>`
 * of the last 200. Each 200 body is one delivery (latency from the marker as above); 304 and
 * 408 (subscriber timeout) are re-issued unchanged; any other status, chunked bodies and
 * closed connections are errors. A connection is ready once its first request was written.
 *
 * Build: cc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SEND 16
#define MAX_RETRIES 3
#define HIST_RES_US 50          /* bucket width */
#define HIST_BUCKETS 1200001    /* 50 µs buckets up to 60 s; the last one collects the rest */
#define STDIN_TAG 0xffffffffu
#define RBUF_SIZE (256 * 1024)
#define MAX_PENDING_IN (4 * 1024 * 1024)

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_SETUP, ST_READY, ST_DEAD };

typedef struct {
  int fd;
  uint8_t state;
  uint8_t retries;
  uint8_t sent;       /* setup frames sent */
  uint8_t got;        /* setup replies received */
  uint8_t in_frag;    /* inside a fragmented message: 0 none, 1 delivery, 2 other */
  uint32_t in_len, in_cap;
  uint32_t out_len, out_off;
  uint8_t *in;        /* partial input kept between reads (NULL most of the time) */
  uint8_t *out;       /* pending output when the socket was full (NULL most of the time) */
  char lp_lm[40];     /* long-poll: Last-Modified of the last 200 ("" before the first) */
  char lp_etag[40];   /* long-poll: Etag of the last 200 */
} conn_t;

/* options */
static const char *o_host = "127.0.0.1";
static int o_port = 0;
static const char *o_path = "/";
static uint32_t o_conns = 1;
static uint32_t o_id_base = 0;
static uint32_t o_src_base = 2;
static uint32_t o_per_src = 15000;
static uint32_t o_concurrency = 256;
static int o_pre = 0;
static const char *o_send[MAX_SEND];
static int o_nsend = 0;
static int o_pipeline = 0; /* 1: send every setup frame at once instead of in lock step */
static const char *o_ping = NULL, *o_pong = NULL;
static const char *o_marker = "\"bt\":";
static double o_max_secs = 600;
static uint32_t o_sample = 1;
static const char *o_label = "loadgen";
static int o_longpoll = 0;

/* state */
static conn_t *conns;
static int ep;
static uint32_t next_new = 0, inflight = 0;
static uint32_t *retry_q; static uint32_t rq_head = 0, rq_tail = 0;
static uint64_t n_connected = 0, n_ready = 0, n_failed = 0, n_dropped = 0, n_retries = 0;
static uint64_t t_start = 0, t_connected = 0, t_ready = 0;
static uint64_t deliveries = 0, other_frames = 0, pings = 0, bytes_in = 0;
static uint64_t first_del = 0, last_del = 0;
static uint32_t *hist; static uint64_t lat_count = 0, lat_max = 0;
static size_t marker_len;
static uint8_t rbuf[RBUF_SIZE];
static char errbuf[256] = "";
static int announced = 0, quitting = 0;

static uint64_t now_us(void) {
  struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Copy s into dst replacing every "%d" with the connection's global index. */
static size_t subst(char *dst, size_t cap, const char *s, uint32_t idx) {
  size_t n = 0;
  for (const char *p = s; *p && n + 12 < cap; p++) {
    if (p[0] == '%' && p[1] == 'd') { n += (size_t)snprintf(dst + n, cap - n, "%u", idx); p++; }
    else dst[n++] = *p;
  }
  dst[n] = 0; return n;
}

static void close_conn(uint32_t i, int failed_before_ready) {
  conn_t *c = &conns[i];
  if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
  free(c->in); c->in = NULL; c->in_len = c->in_cap = 0;
  free(c->out); c->out = NULL; c->out_len = c->out_off = 0;
  if (failed_before_ready) {
    if (c->state == ST_HANDSHAKE || c->state == ST_SETUP || c->state == ST_CONNECTING) inflight--;
    if (c->state == ST_SETUP) n_connected--;
    if (c->retries < MAX_RETRIES) { c->retries++; n_retries++; c->state = ST_IDLE; retry_q[rq_tail++ % o_conns] = i; }
    else { c->state = ST_DEAD; n_failed++; }
  } else {
    c->state = ST_DEAD;
  }
}

static void fail(uint32_t i, const char *why) {
  conn_t *c = &conns[i];
  if (!errbuf[0]) snprintf(errbuf, sizeof errbuf, "%s (errno %d %s)", why, errno, strerror(errno));
  if (c->state == ST_READY) { n_dropped++; close_conn(i, 0); }
  else close_conn(i, 1);
}

/* Write bytes, keeping what the kernel would not take. Returns -1 on error. */
static int send_bytes(uint32_t i, const uint8_t *b, size_t len) {
  conn_t *c = &conns[i];
  if (c->out_len == c->out_off) {
    ssize_t w = write(c->fd, b, len);
    if (w == (ssize_t)len) return 0;
    if (w < 0) { if (errno != EAGAIN) return -1; w = 0; }
    b += w; len -= (size_t)w;
  }
  uint8_t *nb = realloc(c->out, c->out_len + len);
  if (!nb) return -1;
  c->out = nb; memcpy(c->out + c->out_len, b, len); c->out_len += (uint32_t)len;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = i };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  return 0;
}

/* Build a masked client frame (RFC 6455 §5.3) into f (room for len + 14 bytes); returns its size. */
static size_t build_frame(uint8_t *f, int opcode, const char *payload, size_t len) {
  size_t h = 0;
  f[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) f[h++] = (uint8_t)(0x80 | len);
  else if (len < 65536) { f[h++] = 0x80 | 126; f[h++] = (uint8_t)(len >> 8); f[h++] = (uint8_t)len; }
  else { f[h++] = 0x80 | 127; for (int k = 7; k >= 0; k--) f[h++] = (uint8_t)(len >> (8 * k)); }
  uint32_t r = (uint32_t)rand(); uint8_t mask[4] = { (uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24) };
  memcpy(f + h, mask, 4); h += 4;
  for (size_t k = 0; k < len; k++) f[h + k] = (uint8_t)payload[k] ^ mask[k & 3];
  return h + len;
}

/* Masked client frame, written at once. */
static int send_frame(uint32_t i, int opcode, const char *payload, size_t len) {
  uint8_t fb[4096]; uint8_t *f = fb;
  if (len + 14 > sizeof fb) { f = malloc(len + 14); if (!f) return -1; }
  int rc = send_bytes(i, f, build_frame(f, opcode, payload, len));
  if (f != fb) free(f);
  return rc;
}

static void check_ready_all(void) {
  if (!announced && n_ready + n_failed >= o_conns) {
    announced = 1; t_ready = now_us();
    printf("{\"event\":\"ready\",\"label\":\"%s\",\"conns\":%u,\"connected\":%llu,\"ready\":%llu,\"failed\":%llu,"
           "\"retries\":%llu,\"t_start_us\":%llu,\"t_connected_us\":%llu,\"t_ready_us\":%llu,\"error\":\"%s\"}\n",
           o_label, o_conns, (unsigned long long)n_connected, (unsigned long long)n_ready, (unsigned long long)n_failed,
           (unsigned long long)n_retries, (unsigned long long)t_start, (unsigned long long)t_connected,
           (unsigned long long)t_ready, errbuf);
    fflush(stdout);
  }
}

/*
 * Send the next setup frames allowed by the replies seen so far: in lock step (each after the
 * previous one's reply), or with --pipeline all of them in one write once the --pre frames arrived.
 */
static int advance_setup(uint32_t i) {
  conn_t *c = &conns[i]; char buf[2048];
  if (o_pipeline && c->sent == 0 && o_nsend > 0 && c->got >= o_pre) {
    uint8_t out[MAX_SEND * (sizeof buf + 14)]; size_t len = 0;
    for (int k = 0; k < o_nsend; k++) {
      size_t n = subst(buf, sizeof buf, o_send[k], o_id_base + i);
      len += build_frame(out + len, 1, buf, n);
    }
    if (send_bytes(i, out, len) < 0) return -1;
    c->sent = o_nsend;
  }
  while (c->sent < o_nsend && c->got >= o_pre + c->sent) {
    size_t n = subst(buf, sizeof buf, o_send[c->sent], o_id_base + i);
    if (send_frame(i, 1, buf, n) < 0) return -1;
    c->sent++;
    if (c->got < o_pre + c->sent) break; /* wait for its reply */
  }
  if (c->got >= o_pre + o_nsend && c->sent == o_nsend) {
    c->state = ST_READY; inflight--; n_ready++;
    check_ready_all();
  }
  return 0;
}

static void record_delivery(uint32_t i, const uint8_t *p, size_t len) {
  uint64_t t = now_us();
  deliveries++;
  if (!first_del) first_del = t;
  last_del = t;
  if ((o_id_base + i) % o_sample) return;
  const uint8_t *m = memmem(p, len, o_marker, marker_len);
  if (!m) return;
  const uint8_t *q = m + marker_len, *e = p + len; uint64_t v = 0; int nd = 0;
  while (q < e && (*q == ' ' || *q == '"')) q++;
  while (q < e && *q >= '0' && *q <= '9' && nd < 20) { v = v * 10 + (uint64_t)(*q - '0'); q++; nd++; }
  if (!nd) return;
  uint64_t lat = t > v ? t - v : 0;
  uint64_t b = lat / HIST_RES_US; if (b >= HIST_BUCKETS) b = HIST_BUCKETS - 1;
  hist[b]++; lat_count++; if (lat > lat_max) lat_max = lat;
}

/* Handle one complete (or first-fragment) server frame. Returns -1 to close. */
static int on_frame(uint32_t i, int fin, int opcode, const uint8_t *p, size_t len) {
  conn_t *c = &conns[i];
  switch (opcode) {
  case 0: /* continuation: classified by its first fragment */
    if (fin) c->in_frag = 0;
    return 0;
  case 1: case 2: {
    int is_del = memmem(p, len, o_marker, marker_len) != NULL;
    if (!fin) c->in_frag = is_del ? 1 : 2;
    if (is_del) { record_delivery(i, p, len); return 0; }
    if (o_ping && len == strlen(o_ping) && memcmp(p, o_ping, len) == 0) {
      pings++;
      return o_pong ? send_frame(i, 1, o_pong, strlen(o_pong)) : 0;
    }
    if (c->state == ST_SETUP) { c->got++; return advance_setup(i); }
    other_frames++;
    return 0;
  }
  case 8:
    errno = ECONNRESET;
    if (!errbuf[0]) {
      snprintf(errbuf, sizeof errbuf, "server close frame %u %.*s", len >= 2 ? (unsigned)(p[0] << 8 | p[1]) : 0,
               (int)(len > 2 ? (len - 2 > 100 ? 100 : len - 2) : 0), len > 2 ? (const char *)p + 2 : "");
      for (char *q = errbuf; *q; q++) if (*q == '"' || *q == '\\' || *q < 32) *q = ' ';
    }
    return -1;
  case 9: pings++; return send_frame(i, 10, (const char *)p, len);
  default: return 0;
  }
}

/* Parse frames from buf; returns bytes consumed or -1. */
static long parse_frames(uint32_t i, const uint8_t *buf, size_t len) {
  size_t off = 0;
  for (int guard = 0; guard < 1000000; guard++) {
    if (len - off < 2) break;
    const uint8_t *b = buf + off;
    int fin = b[0] & 0x80, opcode = b[0] & 0x0f, masked = b[1] & 0x80;
    uint64_t plen = b[1] & 0x7f; size_t h = 2;
    if (plen == 126) { if (len - off < 4) break; plen = ((uint64_t)b[2] << 8) | b[3]; h = 4; }
    else if (plen == 127) { if (len - off < 10) break; plen = 0; for (int k = 0; k < 8; k++) plen = (plen << 8) | b[2 + k]; h = 10; }
    if (masked) h += 4;
    if (plen > MAX_PENDING_IN) { errno = EMSGSIZE; return -1; }
    if (len - off < h + plen) break;
    if (masked) { uint8_t *pp = (uint8_t *)b + h; const uint8_t *mk = b + h - 4; for (uint64_t k = 0; k < plen; k++) pp[k] ^= mk[k & 3]; }
    if (on_frame(i, fin, opcode, b + h, (size_t)plen) < 0) return -1;
    if (conns[i].fd < 0) return -1;
    off += h + (size_t)plen;
  }
  return (long)off;
}

static int keep_input(conn_t *c, const uint8_t *b, size_t n) {
  if (c->in_len + n > MAX_PENDING_IN) { errno = EMSGSIZE; return -1; }
  if (c->in_len + n > c->in_cap) {
    uint32_t cap = c->in_cap ? c->in_cap : 512; while (cap < c->in_len + n) cap *= 2;
    uint8_t *nb = realloc(c->in, cap); if (!nb) return -1; c->in = nb; c->in_cap = cap;
  }
  memmove(c->in + c->in_len, b, n); c->in_len += (uint32_t)n; return 0;
}

/* Process bytes (from rbuf, or the connection's kept input). */
static int consume(uint32_t i, const uint8_t *data, size_t n) {
  conn_t *c = &conns[i];
  const uint8_t *buf = data; size_t len = n;
  if (c->in_len) { if (keep_input(c, data, n) < 0) return -1; buf = c->in; len = c->in_len; }
  size_t off = 0;
  if (c->state == ST_HANDSHAKE) {
    const uint8_t *e = memmem(buf, len, "\r\n\r\n", 4);
    if (!e) {
      if (buf != c->in) return keep_input(c, buf, len);
      return 0;
    }
    if (len < 12 || memcmp(buf + 9, "101", 3) != 0) {
      errno = EPROTO;
      if (!errbuf[0]) snprintf(errbuf, sizeof errbuf, "handshake refused: %.*s", (int)(len < 40 ? len : 40), (const char *)buf);
      for (char *q = errbuf; *q; q++) if (*q == '"' || *q == '\\' || *q < 32) *q = ' ';
      return -1;
    }
    off = (size_t)(e + 4 - buf);
    c->state = ST_SETUP; n_connected++;
    if (n_connected == o_conns) t_connected = now_us();
    if (advance_setup(i) < 0) return -1;
  }
  long used = parse_frames(i, buf + off, len - off);
  if (used < 0) return -1;
  off += (size_t)used;
  size_t rest = len - off;
  if (buf == c->in) {
    if (rest) memmove(c->in, c->in + off, rest);
    c->in_len = (uint32_t)rest;
    if (!rest) { free(c->in); c->in = NULL; c->in_cap = 0; }
  } else if (rest) {
    return keep_input(c, buf + off, rest);
  }
  return 0;
}

/* Long-poll: (re-)issue the GET with the last message id. */
static int lp_request(uint32_t i) {
  conn_t *c = &conns[i];
  char path[1024], req[1600];
  subst(path, sizeof path, o_path, o_id_base + i);
  int n;
  if (c->lp_lm[0])
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\nIf-Modified-Since: %s\r\nIf-None-Match: %s\r\n\r\n",
                 path, o_host, o_port, c->lp_lm, c->lp_etag);
  else
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n", path, o_host, o_port);
  return send_bytes(i, (const uint8_t *)req, (size_t)n);
}

/* Copy a header value (trimmed) into dst. */
static void hdr_value(char *dst, size_t cap, const uint8_t *v, const uint8_t *e) {
  while (v < e && (*v == ' ' || *v == '\t')) v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
  size_t n = (size_t)(e - v); if (n >= cap) n = cap - 1;
  memcpy(dst, v, n); dst[n] = 0;
}

/* Long-poll responses: parse every complete one, count 200s, re-issue. */
static int consume_lp(uint32_t i, const uint8_t *data, size_t n) {
  conn_t *c = &conns[i];
  const uint8_t *buf = data; size_t len = n;
  if (c->in_len) { if (keep_input(c, data, n) < 0) return -1; buf = c->in; len = c->in_len; }
  size_t off = 0;
  for (int guard = 0; guard < 100000; guard++) {
    const uint8_t *b = buf + off; size_t rem = len - off;
    const uint8_t *e = memmem(b, rem, "\r\n\r\n", 4);
    if (!e) break;
    size_t hlen = (size_t)(e + 4 - b);
    if (rem < 12 || memcmp(b, "HTTP/1.", 7) != 0) { errno = EPROTO; snprintf(errbuf, sizeof errbuf, "long-poll: not an HTTP response"); return -1; }
    int status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    size_t clen = 0; char lm[40] = "", etag[40] = "";
    const uint8_t *l = memmem(b, hlen, "\r\n", 2) + 2;
    for (int g2 = 0; g2 < 200 && l < e; g2++) {
      const uint8_t *le = memmem(l, (size_t)(e + 2 - l), "\r\n", 2);
      if (!le) break;
      const uint8_t *colon = memchr(l, ':', (size_t)(le - l));
      if (colon) {
        size_t kl = (size_t)(colon - l);
        if (kl == 14 && !strncasecmp((const char *)l, "content-length", 14)) clen = strtoul((const char *)colon + 1, NULL, 10);
        else if (kl == 13 && !strncasecmp((const char *)l, "last-modified", 13)) hdr_value(lm, sizeof lm, colon + 1, le);
        else if (kl == 4 && !strncasecmp((const char *)l, "etag", 4)) hdr_value(etag, sizeof etag, colon + 1, le);
        else if (kl == 17 && !strncasecmp((const char *)l, "transfer-encoding", 17)) {
          errno = EPROTO; snprintf(errbuf, sizeof errbuf, "long-poll: chunked response not supported"); return -1;
        }
      }
      l = le + 2;
    }
    if (clen > MAX_PENDING_IN) { errno = EMSGSIZE; return -1; }
    if (rem < hlen + clen) break;
    if (status == 200) {
      if (lm[0]) { memcpy(c->lp_lm, lm, sizeof lm); memcpy(c->lp_etag, etag, sizeof etag); }
      record_delivery(i, b + hlen, clen);
    } else if (status == 304 || status == 408) {
      other_frames++;
    } else {
      errno = EPROTO;
      if (!errbuf[0]) snprintf(errbuf, sizeof errbuf, "long-poll: status %d", status);
      return -1;
    }
    off += hlen + clen;
    if (lp_request(i) < 0) return -1;
  }
  size_t rest = len - off;
  if (buf == c->in) {
    if (rest) memmove(c->in, c->in + off, rest);
    c->in_len = (uint32_t)rest;
    if (!rest) { free(c->in); c->in = NULL; c->in_cap = 0; }
  } else if (rest) {
    return keep_input(c, buf + off, rest);
  }
  return 0;
}

static void start_conn(uint32_t i) {
  conn_t *c = &conns[i];
  uint32_t g = o_id_base + i;
  uint32_t k = o_src_base + g / o_per_src;
  struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = 0 };
  src.sin_addr.s_addr = htonl((127u << 24) | ((k >> 8 & 0xff) << 8) | (k & 0xff));
  struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o_port) };
  inet_pton(AF_INET, o_host, &dst.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  c->state = ST_CONNECTING; c->sent = c->got = 0; c->in_frag = 0; inflight++;
  if (fd < 0) { c->fd = -1; fail(i, "socket"); return; }
  c->fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { fail(i, "bind"); return; }
  if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) { fail(i, "connect"); return; }
  struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = i };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { fail(i, "epoll_ctl"); return; }
}

static void on_writable(uint32_t i) {
  conn_t *c = &conns[i];
  if (c->state == ST_CONNECTING) {
    int err = 0; socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) { errno = err; fail(i, "connect"); return; }
    if (o_longpoll) {
      c->lp_lm[0] = c->lp_etag[0] = 0;
      struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      if (lp_request(i) < 0) { fail(i, "write request"); return; }
      c->state = ST_READY; inflight--; n_connected++; n_ready++;
      if (n_connected == o_conns) t_connected = now_us();
      check_ready_all();
      return;
    }
    char path[1024], req[1400];
    subst(path, sizeof path, o_path, o_id_base + i);
    int n = snprintf(req, sizeof req,
      "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, o_host, o_port);
    c->state = ST_HANDSHAKE;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    if (send_bytes(i, (const uint8_t *)req, (size_t)n) < 0) fail(i, "write handshake");
    return;
  }
  if (c->out_len > c->out_off) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) { if (errno != EAGAIN) fail(i, "write"); return; }
    c->out_off += (uint32_t)w;
  }
  if (c->out_off == c->out_len) {
    free(c->out); c->out = NULL; c->out_len = c->out_off = 0;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
}

static void on_readable(uint32_t i) {
  conn_t *c = &conns[i];
  ssize_t r = read(c->fd, rbuf, sizeof rbuf);
  if (r == 0) { errno = ECONNRESET; fail(i, "server closed"); return; }
  if (r < 0) { if (errno != EAGAIN && errno != EINTR) fail(i, "read"); return; }
  bytes_in += (uint64_t)r;
  if ((o_longpoll ? consume_lp(i, rbuf, (size_t)r) : consume(i, rbuf, (size_t)r)) < 0 && c->fd >= 0) fail(i, "protocol");
}

static void print_stats(int with_hist) {
  uint64_t p50 = 0, p99 = 0, p999 = 0, acc = 0; int g50 = 0, g99 = 0, g999 = 0;
  for (uint32_t b = 0; b < HIST_BUCKETS && lat_count; b++) {
    if (!hist[b]) continue;
    acc += hist[b];
    if (!g50 && acc * 100 >= lat_count * 50) { p50 = (uint64_t)b * HIST_RES_US; g50 = 1; }
    if (!g99 && acc * 100 >= lat_count * 99) { p99 = (uint64_t)b * HIST_RES_US; g99 = 1; }
    if (!g999 && acc * 1000 >= lat_count * 999) { p999 = (uint64_t)b * HIST_RES_US; g999 = 1; break; }
  }
  printf("{\"event\":\"stats\",\"label\":\"%s\",\"conns\":%u,\"connected\":%llu,\"ready\":%llu,\"failed\":%llu,"
         "\"dropped\":%llu,\"retries\":%llu,\"t_start_us\":%llu,\"t_connected_us\":%llu,\"t_ready_us\":%llu,"
         "\"deliveries\":%llu,\"other_frames\":%llu,\"pings\":%llu,\"bytes_in\":%llu,\"first_delivery_us\":%llu,"
         "\"last_delivery_us\":%llu,\"lat_count\":%llu,\"lat_p50_us\":%llu,\"lat_p99_us\":%llu,\"lat_p999_us\":%llu,"
         "\"lat_max_us\":%llu,\"now_us\":%llu,\"error\":\"%s\"",
         o_label, o_conns, (unsigned long long)n_connected, (unsigned long long)n_ready, (unsigned long long)n_failed,
         (unsigned long long)n_dropped, (unsigned long long)n_retries, (unsigned long long)t_start,
         (unsigned long long)t_connected, (unsigned long long)t_ready, (unsigned long long)deliveries,
         (unsigned long long)other_frames, (unsigned long long)pings, (unsigned long long)bytes_in,
         (unsigned long long)first_del, (unsigned long long)last_del, (unsigned long long)lat_count,
         (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999, (unsigned long long)lat_max,
         (unsigned long long)now_us(), errbuf);
  if (with_hist) {
    printf(",\"hist_res_us\":%d,\"hist\":[", HIST_RES_US); int first = 1;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) if (hist[b]) { printf("%s[%u,%u]", first ? "" : ",", b, hist[b]); first = 0; }
    printf("]");
  }
  printf("}\n"); fflush(stdout);
}

static char linebuf[4096]; static size_t linelen = 0;
static void on_stdin(void) {
  ssize_t r = read(0, linebuf + linelen, sizeof linebuf - 1 - linelen);
  if (r == 0) { quitting = 1; return; }
  if (r < 0) { if (errno != EAGAIN) quitting = 1; return; }
  linelen += (size_t)r;
  char *nl;
  while ((nl = memchr(linebuf, '\n', linelen)) != NULL) {
    *nl = 0;
    if (!strcmp(linebuf, "stats")) print_stats(0);
    else if (!strcmp(linebuf, "hist")) print_stats(1);
    else if (!strcmp(linebuf, "reset")) {
      deliveries = other_frames = 0; first_del = last_del = 0; lat_count = lat_max = 0;
      memset(hist, 0, sizeof(uint32_t) * HIST_BUCKETS);
      printf("{\"event\":\"reset\",\"label\":\"%s\"}\n", o_label); fflush(stdout);
    } else if (!strcmp(linebuf, "quit")) quitting = 1;
    size_t used = (size_t)(nl - linebuf) + 1;
    memmove(linebuf, linebuf + used, linelen - used); linelen -= used;
  }
  if (linelen >= sizeof linebuf - 1) linelen = 0;
}

static void usage(void) {
  fprintf(stderr,
    "usage: loadgen --port P [--host 127.0.0.1] [--path /ws/%%d] [--conns N] [--id-base B]\n"
    "  [--src-base K] [--per-src 15000] [--concurrency 256] [--pre N] [--send FRAME]... \n"
    "  [--ping TEXT --pong TEXT] [--marker '\"bt\":'] [--sample K] [--max-secs S] [--label L]\n"
    "  [--mode websocket|longpoll] [--pipeline 0|1]\n"
    "  %%d in --path and --send is replaced by the connection's global index (id-base + i).\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int a = 1; a < argc; a++) {
    const char *k = argv[a]; const char *v = a + 1 < argc ? argv[a + 1] : NULL;
    if (!v) usage();
    a++;
    if (!strcmp(k, "--host")) o_host = v;
    else if (!strcmp(k, "--port")) o_port = atoi(v);
    else if (!strcmp(k, "--path")) o_path = v;
    else if (!strcmp(k, "--conns")) o_conns = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(k, "--id-base")) o_id_base = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(k, "--src-base")) o_src_base = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(k, "--per-src")) o_per_src = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(k, "--concurrency")) o_concurrency = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(k, "--pre")) o_pre = atoi(v);
    else if (!strcmp(k, "--pipeline")) o_pipeline = atoi(v);
    else if (!strcmp(k, "--send")) { if (o_nsend == MAX_SEND) usage(); o_send[o_nsend++] = v; }
    else if (!strcmp(k, "--ping")) o_ping = v;
    else if (!strcmp(k, "--pong")) o_pong = v;
    else if (!strcmp(k, "--marker")) o_marker = v;
    else if (!strcmp(k, "--sample")) o_sample = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(k, "--max-secs")) o_max_secs = atof(v);
    else if (!strcmp(k, "--label")) o_label = v;
    else if (!strcmp(k, "--mode")) { if (!strcmp(v, "longpoll")) o_longpoll = 1; else if (strcmp(v, "websocket")) usage(); }
    else usage();
  }
  if (!o_port || !o_conns || !o_per_src || !o_concurrency || !o_sample) usage();
  struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  if (o_conns + 16 > rl.rlim_cur) { fprintf(stderr, "loadgen: %u connections need more than the %lu open files allowed\n", o_conns, (unsigned long)rl.rlim_cur); return 2; }
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)now_us());
  marker_len = strlen(o_marker);
  conns = calloc(o_conns, sizeof(conn_t));
  retry_q = calloc(o_conns, sizeof(uint32_t));
  hist = calloc(HIST_BUCKETS, sizeof(uint32_t));
  if (!conns || !retry_q || !hist) { perror("calloc"); return 1; }
  for (uint32_t i = 0; i < o_conns; i++) conns[i].fd = -1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event sev = { .events = EPOLLIN, .data.u32 = STDIN_TAG };
  int have_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) == 0;
  uint64_t t0 = now_us(), deadline = t0 + (uint64_t)(o_max_secs * 1e6);
  t_start = t0;
  static struct epoll_event evs[1024];
  while (!quitting) {
    /* launch: retries first, then new connections, within the in-flight budget */
    for (uint32_t guard = 0; inflight < o_concurrency && guard < o_concurrency; guard++) {
      if (rq_head != rq_tail) start_conn(retry_q[rq_head++ % o_conns]);
      else if (next_new < o_conns) start_conn(next_new++);
      else break;
    }
    int n = epoll_wait(ep, evs, 1024, 20);
    for (int e = 0; e < n; e++) {
      uint32_t i = evs[e].data.u32;
      if (i == STDIN_TAG) { on_stdin(); continue; }
      conn_t *c = &conns[i];
      if (c->fd < 0) continue;
      if (evs[e].events & EPOLLOUT) on_writable(i);
      if (c->fd >= 0 && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        if (c->state == ST_CONNECTING) on_writable(i); else on_readable(i);
      }
    }
    check_ready_all();
    if (now_us() > deadline) { fprintf(stderr, "loadgen %s: --max-secs reached\n", o_label); break; }
    if (!have_stdin && announced && o_max_secs <= 0) break;
  }
  print_stats(0);
  return 0;
}
