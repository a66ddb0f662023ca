/* The floor of timestamp fidelity on this machine: a minimal C sender and
 * reflector doing what otwamp's do, with nothing else in the way (bench/cfloor.py).
 *
 *   cfloor send HOST PORT COUNT INTERVAL_S
 *     COUNT datagrams of 41 octets on a connected UDP socket, one every
 *     INTERVAL_S seconds (absolute clock_nanosleep); each carries the wall
 *     clock read just before send(2) as an NTP Timestamp at octets 4-11, where
 *     an unauthenticated TWAMP-Test packet has it (RFC 5357 §4.1.2). Prints
 *     that time (Unix ns) per datagram.
 *   cfloor reflect HOST PORT COUNT
 *     Binds HOST:PORT (0: any port) and prints "ready PORT". Receives COUNT datagrams with their kernel receive time (SO_TIMESTAMPNS,
 *     blocking recvmsg(2)), writes the wall clock into octets 4-11 and sends
 *     each back at once (RFC 5357 §4.2.1's Timestamp at the same offset of an
 *     unauthenticated reply). Prints "T2 T3" (Unix ns) per datagram.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define NTP_UNIX_OFFSET 2208988800ULL /* 1900 to 1970, RFC 5905 §6 */
#define NS 1000000000LL

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * NS + (uint64_t)t.tv_nsec;
}

static void put_ntp(unsigned char *at, uint64_t unix_ns) {
    uint64_t secs = unix_ns / NS + NTP_UNIX_OFFSET;
    uint64_t frac = ((unix_ns % NS) << 32) / NS;
    uint64_t ntp = (secs << 32) | frac;
    for (int k = 0; k < 8; k++) at[k] = (unsigned char)(ntp >> (56 - 8 * k));
}

static int udp_socket(const char *host, int port, struct sockaddr_in *address) {
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &address->sin_addr) != 1) return -1;
    return socket(AF_INET, SOCK_DGRAM, 0);
}

static int send_all(const char *host, int port, long count, double interval) {
    struct sockaddr_in peer;
    int sock = udp_socket(host, port, &peer);
    if (sock < 0 || connect(sock, (struct sockaddr *)&peer, sizeof peer) < 0) return 1;
    unsigned char packet[41] = {0};
    struct timespec began;
    clock_gettime(CLOCK_MONOTONIC, &began);
    for (long seq = 0; seq < count; seq++) {
        long long due = began.tv_sec * NS + began.tv_nsec + (long long)(seq * interval * NS);
        struct timespec at = {.tv_sec = due / NS, .tv_nsec = due % NS};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
        }
        uint64_t t1 = now_ns();
        put_ntp(packet + 4, t1);
        if (send(sock, packet, sizeof packet, 0) < 0) return 1;
        printf("%llu\n", (unsigned long long)t1);
    }
    return 0;
}

static int reflect_all(const char *host, int port, long count) {
    struct sockaddr_in local;
    int sock = udp_socket(host, port, &local);
    int on = 1;
    if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0 ||
        bind(sock, (struct sockaddr *)&local, sizeof local) < 0)
        return 1;
    socklen_t length = sizeof local;
    if (getsockname(sock, (struct sockaddr *)&local, &length) < 0) return 1;
    printf("ready %d\n", ntohs(local.sin_port));
    fflush(stdout);
    unsigned char packet[2048], control[256];
    for (long seq = 0; seq < count; seq++) {
        struct sockaddr_in source;
        struct iovec data = {.iov_base = packet, .iov_len = sizeof packet};
        struct msghdr message = {.msg_name = &source, .msg_namelen = sizeof source,
                                 .msg_iov = &data, .msg_iovlen = 1,
                                 .msg_control = control, .msg_controllen = sizeof control};
        ssize_t size = recvmsg(sock, &message, 0);
        if (size < 12) return 1;
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        if (header == NULL || header->cmsg_type != SO_TIMESTAMPNS) return 1;
        struct timespec t2;
        memcpy(&t2, CMSG_DATA(header), sizeof t2);
        uint64_t t3 = now_ns();
        put_ntp(packet + 4, t3);
        if (sendto(sock, packet, (size_t)size, 0, (struct sockaddr *)&source, sizeof source) < 0)
            return 1;
        printf("%llu %llu\n", (unsigned long long)(t2.tv_sec * NS + t2.tv_nsec),
               (unsigned long long)t3);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "send") == 0)
        return send_all(argv[2], atoi(argv[3]), atol(argv[4]), atof(argv[5]));
    if (argc == 5 && strcmp(argv[1], "reflect") == 0)
        return reflect_all(argv[2], atoi(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: cfloor send HOST PORT COUNT INTERVAL_S | reflect HOST PORT COUNT\n");
    return 2;
}
