/*
 * ctbench: the reference measurements, taken with libnetfilter_conntrack
 * (the C library this project re-implements) and libmnl, so that the Rust
 * crates can be measured side by side on the same machine and the same data.
 *
 * Build:  cc -O2 -o ctbench ctbench.c $(pkg-config --cflags --libs libnetfilter_conntrack libmnl)
 * Needs:  Debian packages libnetfilter-conntrack-dev libmnl-dev pkg-config; root.
 * Run it inside a throwaway network namespace (ip netns add X; ip netns exec X ...)
 * so that the host's own conntrack table is never touched.
 *
 *   ctbench fill N          create N IPv4 TCP entries (one NFCT_Q_CREATE each)
 *   ctbench dump            NFCT_Q_DUMP of AF_INET through the library's callback
 *   ctbench rawdump         the same dump with libmnl, messages counted, not parsed
 *   ctbench capture FILE    the same dump, raw netlink bytes appended to FILE
 *   ctbench parse FILE K    parse every message of FILE with nfct_nlmsg_parse, K rounds
 *   ctbench format FILE K   parse and print every message of FILE with nfct_snprintf
 *                           (what `conntrack -L` prints per entry) into a buffer, K rounds
 *   ctbench build N         build N create messages with nfct_nlmsg_build
 *   ctbench flush           NFCT_Q_FLUSH
 *
 * Every mode prints one line: mode, count, seconds, rate per second.
 *
 * This is a copy of the project's yardstick (shared/anchors/ctbench.c) with one mode added,
 * `format`, for the Rust `ctbench format`; the other modes are unchanged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *mode, unsigned long n, double secs)
{
	printf("%s %lu %.6f %.0f\n", mode, n, secs, secs > 0 ? n / secs : 0.0);
}

static void set_tuple(struct nf_conntrack *ct, unsigned long i)
{
	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(0x0a000000 | (i >> 16)));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(0x0b000000 | (i & 0xffff)));
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(1024 + (i % 60000)));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(80));
	nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
	nfct_set_attr_u8(ct, ATTR_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600);
	nfct_set_attr_u32(ct, ATTR_MARK, (uint32_t)i);
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
}

static unsigned long counted;

static int count_cb(enum nf_conntrack_msg_type t, struct nf_conntrack *ct, void *d)
{
	(void)t; (void)ct; (void)d;
	counted++;
	return NFCT_CB_CONTINUE;
}

static int fill(unsigned long n)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	struct nf_conntrack *ct = nfct_new();
	unsigned long i, ok = 0;
	double t0;

	if (!h || !ct) { perror("nfct_open"); return 1; }
	t0 = now();
	for (i = 0; i < n; i++) {
		set_tuple(ct, i);
		if (nfct_query(h, NFCT_Q_CREATE, ct) == 0)
			ok++;
		else if (errno != EEXIST) { perror("create"); break; }
	}
	report("fill", ok, now() - t0);
	nfct_destroy(ct);
	nfct_close(h);
	return 0;
}

static int dump(void)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	uint32_t family = AF_UNSPEC;
	double t0;

	if (!h) { perror("nfct_open"); return 1; }
	nfct_callback_register(h, NFCT_T_ALL, count_cb, NULL);
	t0 = now();
	if (nfct_query(h, NFCT_Q_DUMP, &family) < 0) { perror("dump"); return 1; }
	report("dump", counted, now() - t0);
	nfct_close(h);
	return 0;
}

static FILE *capture_file;

static int raw_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh; (void)data;
	counted++;
	return MNL_CB_OK;
}

static int rawdump(const char *path)
{
	char buf[32768]; /* what libmnl >= 1.0.5 calls MNL_SOCKET_DUMP_SIZE */
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfh;
	unsigned int seq = time(NULL), portid;
	ssize_t ret;
	double t0;

	if (path && !(capture_file = fopen(path, "wb"))) { perror(path); return 1; }
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { perror("mnl"); return 1; }
	portid = mnl_socket_get_portid(nl);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;

	t0 = now();
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) { perror("send"); return 1; }
	while ((ret = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		if (capture_file)
			fwrite(buf, 1, ret, capture_file);
		ret = mnl_cb_run(buf, ret, seq, portid, raw_cb, NULL);
		if (ret <= MNL_CB_STOP)
			break;
	}
	if (ret < 0) { perror("recv"); return 1; }
	report(path ? "capture" : "rawdump", counted, now() - t0);
	if (capture_file)
		fclose(capture_file);
	mnl_socket_close(nl);
	return 0;
}

static int parse(const char *path, unsigned long rounds)
{
	FILE *f = fopen(path, "rb");
	struct nf_conntrack *ct = nfct_new();
	char *data;
	long len;
	unsigned long r, n = 0;
	double t0;

	if (!f || !ct) { perror(path); return 1; }
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	data = malloc(len);
	if (!data || fread(data, 1, len, f) != (size_t)len) { perror("read"); return 1; }
	fclose(f);

	t0 = now();
	for (r = 0; r < rounds; r++) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)data;
		int rest = len;
		while (mnl_nlmsg_ok(nlh, rest)) {
			if (nlh->nlmsg_type != NLMSG_DONE && nlh->nlmsg_type != NLMSG_ERROR) {
				nfct_nlmsg_parse(nlh, ct);
				n++;
			}
			nlh = mnl_nlmsg_next(nlh, &rest);
		}
	}
	report("parse", n, now() - t0);
	free(data);
	nfct_destroy(ct);
	return 0;
}

static int format(const char *path, unsigned long rounds)
{
	FILE *f = fopen(path, "rb");
	struct nf_conntrack *ct = nfct_new();
	char *data, line[1024];
	long len;
	unsigned long r, n = 0, bytes = 0;
	double t0;

	if (!f || !ct) { perror(path); return 1; }
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	data = malloc(len);
	if (!data || fread(data, 1, len, f) != (size_t)len) { perror("read"); return 1; }
	fclose(f);

	t0 = now();
	for (r = 0; r < rounds; r++) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)data;
		int rest = len;
		while (mnl_nlmsg_ok(nlh, rest)) {
			if (nlh->nlmsg_type != NLMSG_DONE && nlh->nlmsg_type != NLMSG_ERROR) {
				/* conntrack -L: a fresh object per entry, parsed, printed. */
				struct nf_conntrack *e = nfct_new();
				int w;
				nfct_nlmsg_parse(nlh, e);
				w = nfct_snprintf(line, sizeof(line), e, NFCT_T_UNKNOWN, NFCT_O_DEFAULT, 0);
				if (w > 0)
					bytes += w + 1;
				nfct_destroy(e);
				n++;
			}
			nlh = mnl_nlmsg_next(nlh, &rest);
		}
	}
	report("format", n, now() - t0);
	fprintf(stderr, "format: %lu bytes\n", bytes);
	free(data);
	nfct_destroy(ct);
	return 0;
}

static int build(unsigned long n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nf_conntrack *ct = nfct_new();
	unsigned long i, bytes = 0;
	double t0;

	if (!ct) return 1;
	t0 = now();
	for (i = 0; i < n; i++) {
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct nfgenmsg *nfh;

		nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK | NLM_F_EXCL;
		nlh->nlmsg_seq = i;
		nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
		nfh->nfgen_family = AF_INET;
		nfh->version = NFNETLINK_V0;
		nfh->res_id = 0;
		set_tuple(ct, i);
		nfct_nlmsg_build(nlh, ct);
		bytes += nlh->nlmsg_len;
	}
	report("build", n, now() - t0);
	fprintf(stderr, "built %lu bytes\n", bytes);
	nfct_destroy(ct);
	return 0;
}

static int flush(void)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	uint32_t family = AF_UNSPEC;
	double t0 = now();

	if (!h || nfct_query(h, NFCT_Q_FLUSH, &family) < 0) { perror("flush"); return 1; }
	report("flush", 0, now() - t0);
	nfct_close(h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "fill"))
		return fill(strtoul(argv[2], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "dump"))
		return dump();
	if (argc >= 2 && !strcmp(argv[1], "rawdump"))
		return rawdump(NULL);
	if (argc >= 3 && !strcmp(argv[1], "capture"))
		return rawdump(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "parse"))
		return parse(argv[2], strtoul(argv[3], NULL, 0));
	if (argc >= 4 && !strcmp(argv[1], "format"))
		return format(argv[2], strtoul(argv[3], NULL, 0));
	if (argc >= 3 && !strcmp(argv[1], "build"))
		return build(strtoul(argv[2], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "flush"))
		return flush();
	fprintf(stderr, "usage: ctbench fill N | dump | rawdump | capture FILE | parse FILE K | format FILE K | build N | flush\n");
	return 2;
}
