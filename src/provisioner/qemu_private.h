/*
 * qemu_private.h - private: the pure parts of the QEMU provisioner
 * (qemu.c), the QEMU command line, the cloud-init seed texts and the
 * parsing of QMP's "info usernet", exposed for the unit tests. Nothing
 * here boots or runs anything.
 */
#ifndef ATEX_PROVISIONER_QEMU_PRIVATE_H
#define ATEX_PROVISIONER_QEMU_PRIVATE_H

#include <stdbool.h>

#include "atex/provisioner.h"
#include "util/util.h"

/* What one QEMU command line is made of; strings are not owned. */
struct atex_qemu_cmd {
	const char *program; /* qemu-system-x86_64 */
	const char *dir;     /* the VM's directory on the host */
	const char *name;    /* atex-vm-XXXXXXXX */
	bool kvm;	     /* else TCG */
	int memory_mib;
	int cpus;
	const char *ovmf_code; /* UEFI firmware code; NULL: BIOS */
	const char *kernel;    /* direct boot; NULL: boot the disk */
	const char *initrd;
	const char *cmdline;
	/* The public key ("TYPE BASE64") as root's systemd credential;
	 * NULL: none. */
	const char *credential_key;
	bool seed; /* DIR/seed.iso as a CD-ROM */
	bool disk; /* DIR/overlay.qcow2 (false: the accelerator probe) */
	bool net;  /* user network with ssh forwarded */
	bool no_reboot;
	const char *const *extra; /* NULL-terminated; NULL: none */
};

/* Appends the command line (copies, owned by `out`: free with
 * atex_vec_free_all(out, free)); no NULL terminator. 0 or ATEX_ENOMEM. */
int atex_qemu_argv(struct atex_vec *out, const struct atex_qemu_cmd *cmd);

/* The NoCloud seed's user-data: root (and `user` when it is another
 * login) get `key`; root logins allowed. Caller frees; NULL: ENOMEM. */
char *atex_qemu_user_data(const char *user, const char *key);
/* The seed's meta-data for a VM called `name`. Caller frees. */
char *atex_qemu_meta_data(const char *name);

/* The host port forwarded to the guest's port 22, from the text of
 * `info usernet` (the TCP[HOST_FORWARD] line). 0 or ATEX_ENOTFOUND. */
int atex_qemu_usernet_port(int *port, const char *info);

/* The "TYPE BASE64" part of an OpenSSH public key line (its comment
 * dropped): a new string, or NULL with ATEX_EINVAL set when the text is
 * no public key. */
char *atex_qemu_key_text(const char *pub);

/* Checks the options as atex_qemu_provisioner_new does: 0 or ATEX_EINVAL
 * naming the option. */
int atex_qemu_options_check(const struct atex_qemu_provisioner_options *o);

/* The end of a serial console, readable in an error message: of the raw
 * bytes `raw` (len of them, no NUL needed), escape sequences (ANSI
 * colours, cursor moves) and control characters but newlines dropped
 * (\r, backspaces...; tabs become spaces, bytes that are no UTF-8 '?'),
 * then the last `lines` lines holding more than blanks, each cut at
 * `width` characters (" [...]" marks a cut), joined with "\n". "" when
 * no such line is left. Caller frees; NULL: ATEX_ENOMEM. */
char *atex_qemu_console_clean(const char *raw, size_t len, int lines,
			      int width);

/* Removes TMP/atex-qemu-XXXXXX directories of the current user that
 * their owner (a killed atex) left behind: their lock is free (or they
 * have no lock file and are a day old). start() does this before making
 * its own. Returns how many it removed. */
int atex_qemu_sweep_tmp(const char *tmp);

#endif /* ATEX_PROVISIONER_QEMU_PRIVATE_H */
