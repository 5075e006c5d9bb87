/*
 * The load client's subscribers during a throughput phase: read, keep, count.
 *
 * Usage: reader FIRST_SEQ FD...
 *
 * Reads the already-open WebSocket connections FD... (inherited from bench.throughput,
 * which stops reading them meanwhile). Every byte read is kept, unparsed, in the
 * connection's buffer; the bytes are only counted. Every delivered frame of a phase has
 * the same length, so a byte count divided by that length (taken from the first complete
 * frame) is a number of deliveries.
 *
 * Lines written to stdout:
 *   D <n>                  every connection has read the first n frames (n grew)
 *   S <bytes> <cpu_ns> <frame_len>
 *                          reply to "S": bytes read so far, this process's CPU time and
 *                          the frame length (0 until known)
 *   R <received> <lost> <duplicated> <reordered> <stray_bytes>
 *                          reply to "E <end_seq>": once every connection read up to
 *                          end_seq (or 10 s passed), the buffers are scanned for
 *                          sequence markers (see bench/deliveries.py); then it exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BATCH 300        /* bytes: wake for two messages or more (SO_RCVLOWAT) */
#define READ_ROOM (64 * 1024) /* free space offered to each read */
#define MARK_LEN 29           /* |SSSSSSSS:TTTTTTTTTTTTTTTTTTT */
#define MAX_EVENTS 1024

typedef struct {
    int fd;
    uint8_t *buf;
    size_t len, cap;
} Sub;

static Sub *subs;
static size_t nsubs;
static uint64_t frame_len; /* 0 until the first complete frame is read */
static uint64_t reported;  /* frames every connection has read, as last written */
static uint64_t target;    /* bytes a connection needs for reported + 1 frames */
static size_t lagging;     /* connections below target */
static uint64_t total;     /* bytes read by all connections */

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

static uint64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* Length of the unmasked frame at the start of buf; 0 until it is complete. */
static uint64_t first_frame_len(const uint8_t *buf, size_t len) {
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
    return len >= head + n ? head + n : 0;
}

/* Recount the connections below the next frame; write D when the minimum grew. */
static void recount(void) {
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < nsubs; i++)
        if (subs[i].len < low) low = subs[i].len;
    uint64_t frames = low / frame_len;
    if (frames > reported) {
        reported = frames;
        say("D %llu\n", frames, 0, 0);
    }
    target = (reported + 1) * frame_len;
    lagging = 0;
    for (size_t i = 0; i < nsubs; i++) lagging += subs[i].len < target;
}

static void read_sub(Sub *s) {
    if (s->cap - s->len < READ_ROOM) {
        s->cap = s->cap * 2 > s->len + READ_ROOM ? s->cap * 2 : s->len + READ_ROOM;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf) die("realloc");
    }
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        fprintf(stderr, "reader: connection fd %d closed\n", s->fd);
        exit(3);
    }
    size_t before = s->len;
    s->len += (size_t)n;
    total += (uint64_t)n;
    if (!frame_len) {
        frame_len = first_frame_len(s->buf, s->len);
        if (frame_len) recount();
    } else if (before < target && s->len >= target && --lagging == 0) {
        recount();
    }
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
    for (int i = 1; i < 9; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    return 1;
}

static void account(uint64_t first, uint64_t end) {
    uint64_t received = 0, lost = 0, duplicated = 0, reordered = 0, stray = 0;
    for (size_t i = 0; i < nsubs; i++) {
        Tracker t = {.expected = first};
        const uint8_t *buf = subs[i].buf;
        size_t len = subs[i].len, pos = 0;
        while (pos + MARK_LEN <= len) {
            const uint8_t *bar = memchr(buf + pos, '|', len - MARK_LEN + 1 - pos);
            if (!bar) break;
            pos = (size_t)(bar - buf);
            if (is_mark(bar)) {
                uint64_t seq = 0;
                for (int k = 1; k < 9; k++) seq = seq * 10 + (uint64_t)(bar[k] - '0');
                track(&t, seq);
                pos += MARK_LEN;
            } else {
                pos += 1;
            }
        }
        received += t.received;
        lost += t.nmissing + (end > t.expected ? end - t.expected : 0);
        duplicated += t.duplicated;
        reordered += t.reordered;
        stray += len - t.received * frame_len;
        free(t.missing);
        free(subs[i].buf);
    }
    char line[192];
    int n = snprintf(line, sizeof line, "R %llu %llu %llu %llu %llu\n",
                     (unsigned long long)received, (unsigned long long)lost,
                     (unsigned long long)duplicated, (unsigned long long)reordered,
                     (unsigned long long)stray);
    if (write(STDOUT_FILENO, line, (size_t)n) != n) die("write stdout");
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Handle one command line from stdin; returns 1 once the phase is over. */
static int command(const char *line, uint64_t *end) {
    if (line[0] == 'S') {
        say("S %llu %llu %llu\n", total, cpu_ns(), frame_len);
    } else if (line[0] == 'E') {
        *end = strtoull(line + 1, NULL, 10);
        int one = 1;
        for (size_t i = 0; i < nsubs; i++)
            setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: reader FIRST_SEQ FD...\n");
        return 2;
    }
    uint64_t first = strtoull(argv[1], NULL, 10), end = 0;
    nsubs = (size_t)(argc - 2);
    subs = calloc(nsubs, sizeof *subs);
    int ep = epoll_create1(0);
    if (!subs || ep < 0) die("setup");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) die("epoll stdin");
    int batch = READ_BATCH;
    for (size_t i = 0; i < nsubs; i++) {
        subs[i].fd = atoi(argv[i + 2]);
        setsockopt(subs[i].fd, SOL_SOCKET, SO_RCVLOWAT, &batch, sizeof batch);
        ev.data.u64 = i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev) < 0) die("epoll fd");
    }

    char cmd[256];
    size_t cmdlen = 0;
    int ending = 0;
    uint64_t deadline = 0;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        if (ending && ((frame_len && reported >= end - first) || now_ms() > deadline)) break;
        int n = epoll_wait(ep, events, MAX_EVENTS, ending ? 10 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            uint64_t i = events[k].data.u64;
            if (i != UINT64_MAX) {
                read_sub(&subs[i]);
                continue;
            }
            ssize_t got = read(STDIN_FILENO, cmd + cmdlen, sizeof cmd - 1 - cmdlen);
            if (got <= 0) return 0; /* the bench went away */
            cmdlen += (size_t)got;
            char *nl;
            while ((nl = memchr(cmd, '\n', cmdlen)) != NULL) {
                *nl = 0;
                if (command(cmd, &end)) {
                    ending = 1;
                    deadline = now_ms() + 10000;
                }
                cmdlen -= (size_t)(nl + 1 - cmd);
                memmove(cmd, nl + 1, cmdlen);
            }
        }
    }
    account(first, end);
    return 0;
}
