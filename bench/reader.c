/*
 * The load client's subscribers during a phase: read, keep, count (and stamp).
 *
 * Usage: reader count|stamp FIRST_SEQ RESERVE PINGS NSUBS FD...
 *
 * Reads the already-open WebSocket connections FD... (inherited from bench/reader.py,
 * which stops reading them meanwhile). Every byte read is kept, unparsed, in the
 * connection's buffer; the bytes are only counted. Every delivered frame of a phase has
 * the same length, so a byte count divided by that length (taken from the first complete
 * frame) is a number of deliveries. In ``count`` mode a connection is woken for two
 * messages or more (throughput). In ``stamp`` mode (latency) every read's arrival time
 * (CLOCK_MONOTONIC, as Python's time.monotonic_ns) is kept too, and the reader polls
 * without sleeping: waking a sleeping reader would add its wake-up to every latency and
 * bill the server's CPU for it, which a client on another machine would not.
 * RESERVE bytes per connection are allocated and touched before reading starts, so that
 * growing buffers (which happens to every connection at once) does not stall a
 * measurement; 0 lets them grow as needed. The first NSUBS descriptors are subscribers;
 * any after them are only watched for pings. With PINGS = 1 (stamp mode only) frames are
 * parsed as they arrive: each JSON ping is answered with a JSON pong and noted, protocol
 * frames are set aside, and deliveries are counted as frames instead of bytes.
 *
 * Lines written to stdout:
 *   ready                  every connection is being read
 *   D <n>                  every subscriber has read the first n deliveries (n grew)
 *   S <bytes> <frame_len>  reply to "S": bytes read so far and the frame length (0
 *                          until known)
 *   P <pings> <connections pinged> <fewest pings on one> <median gap ns> <max gap ns>
 *     <connections closed>
 *                          with PINGS = 1, written just before R
 *   R <received> <lost> <duplicated> <reordered> <stray_bytes>
 *                          reply to "E <end_seq> <timeout_ms>": once every subscriber
 *                          read up to end_seq (or the timeout passed), its whole frames
 *                          are scanned for sequence markers (see bench/deliveries.py);
 *                          then it exits.
 *                          In stamp mode the line ends with a sample count n, and n
 *                          native int64 latencies in ns (arrival - send) follow it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BATCH 300        /* bytes: wake for two messages or more (SO_RCVLOWAT) */
#define READ_ROOM (16 * 1024) /* free space offered to each read */
#define MARK_LEN 29           /* |SSSSSSSS:TTTTTTTTTTTTTTTTTTT */
#define MAX_EVENTS 1024

typedef struct {
    uint64_t end; /* buffer length after the read */
    uint64_t ns;  /* when the read returned */
} Stamp;

typedef struct {
    int fd;
    int closed;
    uint8_t *buf;
    size_t len, cap;
    Stamp *stamps;
    size_t nstamps, capstamps;
    /* PINGS = 1: frames parsed so far, and what they held besides deliveries */
    size_t parsed;
    uint64_t delivered, other_bytes;
    uint64_t *pings; /* when each JSON ping arrived */
    size_t npings, cappings;
} Sub;

static int stamping; /* stamp mode */
static int pinging;  /* PINGS = 1 */

static Sub *subs;          /* subscribers, then connections only watched for pings */
static size_t nsubs, nall; /* subscribers; all connections */
static uint64_t frame_len; /* 0 until the first complete delivery is read */
static uint64_t reported;  /* deliveries every subscriber has read, as last written */
static uint64_t target;    /* reported + 1 */
static size_t lagging;     /* subscribers below target */
static uint64_t total;     /* bytes read by all connections */

static const uint8_t PING_TEXT[] = "{\"type\":\"ping\"}";
static const uint8_t PONG_FRAME[] = "\x81\x8f\0\0\0\0{\"type\":\"pong\"}"; /* zero mask */

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void say(const char *fmt, unsigned long long a, unsigned long long b,
                unsigned long long c) {
    char line[128];
    int n = snprintf(line, sizeof line, fmt, a, b, c);
    if (write(STDOUT_FILENO, line, (size_t)n) != n) die("write stdout");
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Length of the unmasked frame at buf (its header's in *head); 0 until complete. */
static uint64_t frame_at(const uint8_t *buf, size_t len, uint64_t *headp) {
    if (len < 2) return 0;
    uint64_t n = buf[1] & 0x7f, head = 2;
    if (n == 126) {
        if (len < 4) return 0;
        n = ((uint64_t)buf[2] << 8) | buf[3];
        head = 4;
    } else if (n == 127) {
        if (len < 10) return 0;
        n = 0;
        for (int i = 2; i < 10; i++) n = (n << 8) | buf[i];
        head = 10;
    }
    *headp = head;
    return n <= len && len - n >= head ? head + n : 0; /* no overflow for huge n */
}

/* Length of the unmasked frame at the start of buf; 0 until it is complete. */
static uint64_t first_frame_len(const uint8_t *buf, size_t len) {
    uint64_t head;
    return frame_at(buf, len, &head);
}

/* Deliveries a subscriber has read. */
static uint64_t deliveries(const Sub *s) {
    return pinging ? s->delivered : frame_len ? s->len / frame_len : 0;
}

/* Recount the subscribers below the next delivery; write D when the minimum grew. */
static void recount(void) {
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < nsubs; i++)
        if (deliveries(&subs[i]) < low) low = deliveries(&subs[i]);
    if (low > reported) {
        reported = low;
        say("D %llu\n", low, 0, 0);
    }
    target = reported + 1;
    lagging = 0;
    for (size_t i = 0; i < nsubs; i++) lagging += deliveries(&subs[i]) < target;
}

/* PINGS = 1: walk the frames read since the last call; answer and note JSON pings. */
static void walk(Sub *s) {
    for (;;) {
        uint64_t head, n = frame_at(s->buf + s->parsed, s->len - s->parsed, &head);
        if (!n) return;
        const uint8_t *frame = s->buf + s->parsed;
        s->parsed += n;
        int opcode = frame[0] & 0x0f, text = opcode == 1;
        if (opcode == 8) s->closed = 1; /* the server's close frame: evicted */
        if (text && n - head == sizeof PING_TEXT - 1 &&
            memcmp(frame + head, PING_TEXT, n - head) == 0) {
            if (send(s->fd, PONG_FRAME, sizeof PONG_FRAME - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                fprintf(stderr, "reader: pong not sent on fd %d\n", s->fd);
            if (s->npings == s->cappings) {
                s->cappings = s->cappings ? s->cappings * 2 : 16;
                s->pings = realloc(s->pings, s->cappings * sizeof *s->pings);
                if (!s->pings) die("realloc");
            }
            s->pings[s->npings++] = now_ns();
            s->other_bytes += n;
        } else if (text && s < subs + nsubs) {
            if (!frame_len) frame_len = n;
            s->delivered++;
        } else {
            s->other_bytes += n; /* the heartbeat's protocol PING, say */
        }
    }
}

static void read_sub(Sub *s, int ep) {
    if (s->cap - s->len < READ_ROOM) {
        s->cap = s->cap * 2 > s->len + READ_ROOM ? s->cap * 2 : s->len + READ_ROOM;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf) die("realloc");
    }
    ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len, MSG_DONTWAIT);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        s->closed = 1; /* the server closed it: counted, no longer read */
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        return;
    }
    int counted = s < subs + nsubs;
    uint64_t before = counted ? deliveries(s) : 0;
    s->len += (size_t)n;
    total += (uint64_t)n;
    if (pinging) walk(s);
    if (!counted) return;
    if (stamping) {
        if (s->nstamps == s->capstamps) {
            s->capstamps = s->capstamps ? s->capstamps * 2 : 64;
            s->stamps = realloc(s->stamps, s->capstamps * sizeof *s->stamps);
            if (!s->stamps) die("realloc");
        }
        s->stamps[s->nstamps++] = (Stamp){.end = s->len, .ns = now_ns()};
    }
    if (!frame_len && !pinging) frame_len = first_frame_len(s->buf, s->len);
    if (!frame_len) return;
    if (!target || (before < target && deliveries(s) >= target && --lagging == 0)) recount();
}

/* Sequence accounting of one connection, as bench.deliveries.SeqTracker. */
typedef struct {
    uint64_t expected, received, duplicated, reordered;
    uint64_t *missing;
    size_t nmissing, capmissing;
} Tracker;

static void track(Tracker *t, uint64_t seq) {
    t->received++;
    if (seq == t->expected) {
        t->expected++;
    } else if (seq > t->expected) {
        for (uint64_t m = t->expected; m < seq; m++) {
            if (t->nmissing == t->capmissing) {
                t->capmissing = t->capmissing ? t->capmissing * 2 : 64;
                t->missing = realloc(t->missing, t->capmissing * sizeof *t->missing);
                if (!t->missing) die("realloc");
            }
            t->missing[t->nmissing++] = m;
        }
        t->expected = seq + 1;
    } else {
        for (size_t i = 0; i < t->nmissing; i++)
            if (t->missing[i] == seq) {
                t->missing[i] = t->missing[--t->nmissing];
                t->reordered++;
                return;
            }
        t->duplicated++;
    }
}

static int is_mark(const uint8_t *p) {
    if (p[9] != ':') return 0;
    for (int i = 1; i < MARK_LEN; i++)
        if (i != 9 && (p[i] < '0' || p[i] > '9')) return 0;
    return 1;
}

static int64_t *samples;
static size_t nsamples, capsamples;

/* Latency of the marker at buf[pos]: when the read holding its last byte returned. */
static void sample(const Sub *s, size_t *stamp, size_t pos) {
    const uint8_t *p = s->buf + pos + 10;
    uint64_t sent = 0;
    for (int k = 0; k < 19; k++) sent = sent * 10 + (uint64_t)(p[k] - '0');
    while (*stamp < s->nstamps && s->stamps[*stamp].end < pos + MARK_LEN) (*stamp)++;
    if (*stamp == s->nstamps) return;
    if (nsamples == capsamples) {
        capsamples = capsamples ? capsamples * 2 : 4096;
        samples = realloc(samples, capsamples * sizeof *samples);
        if (!samples) die("realloc");
    }
    samples[nsamples++] = (int64_t)(s->stamps[*stamp].ns - sent);
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The P line: how the pings reached every connection. */
static void ping_summary(void) {
    uint64_t pings = 0, pinged = 0, fewest = UINT64_MAX, closed = 0;
    size_t ngaps = 0;
    for (size_t i = 0; i < nall; i++) ngaps += subs[i].npings ? subs[i].npings - 1 : 0;
    uint64_t *gaps = malloc((ngaps + 1) * sizeof *gaps);
    if (!gaps) die("malloc");
    ngaps = 0;
    for (size_t i = 0; i < nall; i++) {
        const Sub *s = &subs[i];
        pings += s->npings;
        pinged += s->npings > 0;
        closed += (uint64_t)s->closed;
        if (s->npings < fewest) fewest = s->npings;
        for (size_t k = 1; k < s->npings; k++) gaps[ngaps++] = s->pings[k] - s->pings[k - 1];
    }
    qsort(gaps, ngaps, sizeof *gaps, by_value);
    char line[256];
    int n = snprintf(line, sizeof line, "P %llu %llu %llu %llu %llu %llu\n",
                     (unsigned long long)pings, (unsigned long long)pinged,
                     (unsigned long long)(nall ? fewest : 0),
                     (unsigned long long)(ngaps ? gaps[ngaps / 2] : 0),
                     (unsigned long long)(ngaps ? gaps[ngaps - 1] : 0),
                     (unsigned long long)closed);
    if (write(STDOUT_FILENO, line, (size_t)n) != n) die("write stdout");
    free(gaps);
}

static void account(uint64_t first, uint64_t end) {
    uint64_t received = 0, lost = 0, duplicated = 0, reordered = 0;
    int64_t stray = 0;
    for (size_t i = 0; i < nsubs; i++) {
        Tracker t = {.expected = first};
        const uint8_t *buf = subs[i].buf;
        /* Only whole frames are scanned: a frame cut short by the timeout is not received. */
        size_t len = pinging ? subs[i].parsed : frame_len ? subs[i].len - subs[i].len % frame_len : 0;
        size_t pos = 0, stamp = 0;
        while (pos + MARK_LEN <= len) {
            const uint8_t *bar = memchr(buf + pos, '|', len - MARK_LEN + 1 - pos);
            if (!bar) break;
            pos = (size_t)(bar - buf);
            if (is_mark(bar)) {
                uint64_t seq = 0;
                for (int k = 1; k < 9; k++) seq = seq * 10 + (uint64_t)(bar[k] - '0');
                if (seq >= first && seq < end) { /* others are no delivery of this phase */
                    track(&t, seq);
                    if (stamping) sample(&subs[i], &stamp, pos);
                }
                pos += MARK_LEN;
            } else {
                pos += 1;
            }
        }
        received += t.received;
        lost += t.nmissing + (end > t.expected ? end - t.expected : 0);
        duplicated += t.duplicated;
        reordered += t.reordered;
        stray += (int64_t)subs[i].len - (int64_t)(t.received * frame_len + subs[i].other_bytes);
        free(t.missing);
        free(subs[i].buf);
        free(subs[i].stamps);
    }
    if (pinging) ping_summary();
    char line[192];
    int n = snprintf(line, sizeof line, "R %llu %llu %llu %llu %lld",
                     (unsigned long long)received, (unsigned long long)lost,
                     (unsigned long long)duplicated, (unsigned long long)reordered,
                     (long long)stray);
    if (stamping) n += snprintf(line + n, sizeof line - (size_t)n, " %zu", nsamples);
    line[n++] = '\n';
    if (write(STDOUT_FILENO, line, (size_t)n) != n) die("write stdout");
    const char *out = (const char *)samples;
    size_t left = nsamples * sizeof *samples;
    while (left) {
        ssize_t w = write(STDOUT_FILENO, out, left);
        if (w <= 0) die("write stdout");
        out += w;
        left -= (size_t)w;
    }
}

/* Handle one command line from stdin; returns 1 once the phase is over. */
static int command(const char *line, uint64_t *end, uint64_t *deadline) {
    if (line[0] == 'S') {
        say("S %llu %llu\n", total, frame_len, 0);
    } else if (line[0] == 'E') {
        char *rest;
        *end = strtoull(line + 1, &rest, 10);
        *deadline = now_ns() + strtoull(rest, NULL, 10) * 1000000ull;
        int one = 1;
        for (size_t i = 0; i < nsubs; i++)
            setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7 || (strcmp(argv[1], "count") && strcmp(argv[1], "stamp"))) {
        fprintf(stderr, "usage: reader count|stamp FIRST_SEQ RESERVE PINGS NSUBS FD...\n");
        return 2;
    }
    stamping = argv[1][0] == 's';
    uint64_t first = strtoull(argv[2], NULL, 10), end = 0;
    size_t reserve = strtoull(argv[3], NULL, 10);
    pinging = stamping && atoi(argv[4]) == 1;
    nall = (size_t)(argc - 6);
    nsubs = strtoull(argv[5], NULL, 10);
    if (nsubs > nall) nsubs = nall;
    subs = calloc(nall, sizeof *subs);
    int ep = epoll_create1(0);
    if (!subs || ep < 0) die("setup");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) die("epoll stdin");
    int batch = stamping ? 1 : READ_BATCH;
    for (size_t i = 0; i < nall; i++) {
        subs[i].fd = atoi(argv[i + 6]);
        if (reserve && i < nsubs) {
            subs[i].cap = reserve + READ_ROOM;
            subs[i].buf = malloc(subs[i].cap);
            subs[i].capstamps = reserve / 64 + 64;
            subs[i].stamps = malloc(subs[i].capstamps * sizeof *subs[i].stamps);
            if (!subs[i].buf || !subs[i].stamps) die("malloc");
            memset(subs[i].buf, 0, subs[i].cap);
            memset(subs[i].stamps, 0, subs[i].capstamps * sizeof *subs[i].stamps);
        }
        setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVLOWAT, &batch, sizeof batch);
        ev.data.u64 = i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev) < 0) die("epoll fd");
    }

    say("ready\n", 0, 0, 0);
    char cmd[256];
    size_t cmdlen = 0;
    int ending = 0;
    uint64_t deadline = 0;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        if (ending && (end <= first || (frame_len && reported >= end - first) ||
                       now_ns() > deadline))
            break;
        int n = epoll_wait(ep, events, MAX_EVENTS, stamping ? 0 : ending ? 10 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            uint64_t i = events[k].data.u64;
            if (i != UINT64_MAX) {
                read_sub(&subs[i], ep);
                continue;
            }
            ssize_t got = read(STDIN_FILENO, cmd + cmdlen, sizeof cmd - 1 - cmdlen);
            if (got <= 0) return 0; /* the bench went away */
            cmdlen += (size_t)got;
            char *nl;
            while ((nl = memchr(cmd, '\n', cmdlen)) != NULL) {
                *nl = 0;
                if (command(cmd, &end, &deadline)) ending = 1;
                cmdlen -= (size_t)(nl + 1 - cmd);
                memmove(cmd, nl + 1, cmdlen);
            }
        }
    }
    account(first, end);
    return 0;
}
