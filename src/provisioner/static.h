/*
 * static.h - private: the host entry syntax of the static provisioner,
 * declared apart so that the unit tests can check the parser alone
 * (connecting needs a real sshd, which the ssh suite has).
 */
#ifndef ATEX_PROVISIONER_STATIC_H
#define ATEX_PROVISIONER_STATIC_H

/* One parsed "[user@]host[:port]" entry; strings are malloc'ed. */
struct atex_static_host {
	char *user; /* NULL when the entry names none */
	char *host; /* without the brackets of an IPv6 address */
	int port;   /* 0 when the entry names none */
};

/*
 * Parses "[user@]host[:port]"; an IPv6 address goes in brackets, with or
 * without a port ("[::1]", "root@[::1]:2222"). Empty parts, a port that is
 * not 1-65535, a bare IPv6 address, whitespace, and a user or host
 * starting with '-' (ssh would read it as an option) are refused.
 * Returns 0, ATEX_EINVAL quoting the entry, or ATEX_ENOMEM.
 */
int atex_static_host_parse(struct atex_static_host *out, const char *entry);

/* Frees the strings of a parsed entry (not the struct). */
void atex_static_host_clear(struct atex_static_host *h);

#endif /* ATEX_PROVISIONER_STATIC_H */
